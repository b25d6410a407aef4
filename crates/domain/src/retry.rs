//! When an outbound delivery is tried again: a pure function of the attempt that just ran.
//!
//! A 2xx is delivered. Timeouts, connection errors, 408, 429 and 5xx are retried with exponential
//! backoff and ±20 % jitter until `give_up_after` has passed since the first attempt; everything
//! else fails at once. The random jitter comes in as an argument so the policy stays testable.

use chrono::Duration;

/// What one delivery attempt produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The destination answered with this HTTP status.
    Status(u16),
    Timeout,
    ConnectError,
    /// Never sent: the URL is invalid or its destination is forbidden (SSRF protection).
    Refused,
}

/// What to do with the delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryAfter(Duration),
    /// Terminal, with a reason fit for the delivery's `failureReason`.
    Failed(String),
}

/// Exponential backoff: `first_delay`, doubling after each failure up to `max_delay` per step,
/// until `give_up_after` has elapsed since the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub give_up_after: Duration,
}

/// Delays are spread over ±20 % so that deliveries failing together do not retry together.
const JITTER_SPREAD: f64 = 0.2;

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::minutes(2),
            max_delay: Duration::hours(6),
            give_up_after: Duration::hours(24),
        }
    }
}

/// How an attempt's result is treated, before the schedule is consulted.
enum Outcome {
    Success,
    Transient(String),
    Permanent(String),
}

impl RetryPolicy {
    /// Decides the fate of a delivery after attempt `attempt_number` (1-based) ran,
    /// `elapsed_since_first_attempt` after the first one began. `jitter` is uniform in `[0, 1)`.
    pub fn decide(
        &self,
        result: &AttemptResult,
        attempt_number: u32,
        elapsed_since_first_attempt: Duration,
        jitter: f64,
    ) -> Verdict {
        match classify(result) {
            Outcome::Success => Verdict::Delivered,
            Outcome::Permanent(reason) => Verdict::Failed(reason),
            Outcome::Transient(last) if elapsed_since_first_attempt >= self.give_up_after => {
                Verdict::Failed(format!(
                    "retries exhausted after {attempt_number} attempts (last: {last})"
                ))
            }
            Outcome::Transient(_) => Verdict::RetryAfter(self.delay(attempt_number, jitter)),
        }
    }

    /// The wait after failed attempt `attempt_number`: the backoff step scaled by a jitter factor
    /// in `[0.8, 1.2)`. Always at least one millisecond.
    pub fn delay(&self, attempt_number: u32, jitter: f64) -> Duration {
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.5 };
        let factor = 1.0 - JITTER_SPREAD + 2.0 * JITTER_SPREAD * jitter;
        // Steps are capped at `max_delay`, far below the range where f64 loses milliseconds.
        let millis = (self.step_millis(attempt_number) as f64 * factor).round() as i64;
        Duration::milliseconds(millis.max(1))
    }

    /// `first_delay × 2^(attempt_number − 1)`, capped at `max_delay`, in milliseconds.
    fn step_millis(&self, attempt_number: u32) -> i64 {
        let first = self.first_delay.num_milliseconds().max(1);
        let max = self.max_delay.num_milliseconds().max(first);
        let doublings = attempt_number.saturating_sub(1);
        2_i64
            .checked_pow(doublings)
            .and_then(|multiplier| first.checked_mul(multiplier))
            .map_or(max, |millis| millis.min(max))
    }
}

fn classify(result: &AttemptResult) -> Outcome {
    match *result {
        AttemptResult::Status(200..=299) => Outcome::Success,
        AttemptResult::Status(code @ (408 | 429 | 500..=599)) => {
            Outcome::Transient(format!("HTTP {code}"))
        }
        AttemptResult::Status(code @ 300..=399) => {
            Outcome::Permanent(format!("redirects are not followed (HTTP {code})"))
        }
        AttemptResult::Status(code @ 100..=199) => {
            Outcome::Permanent(format!("unexpected informational response (HTTP {code})"))
        }
        AttemptResult::Status(code) => Outcome::Permanent(format!("HTTP {code}")),
        AttemptResult::Timeout => Outcome::Transient("timeout".to_owned()),
        AttemptResult::ConnectError => Outcome::Transient("connection error".to_owned()),
        AttemptResult::Refused => {
            Outcome::Permanent("destination refused (invalid URL or private address)".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
    }

    fn retry_delay(verdict: Verdict) -> Duration {
        match verdict {
            Verdict::RetryAfter(delay) => delay,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    fn retryable_result() -> impl Strategy<Value = AttemptResult> {
        prop_oneof![
            Just(AttemptResult::Timeout),
            Just(AttemptResult::ConnectError),
            Just(AttemptResult::Status(408)),
            Just(AttemptResult::Status(429)),
            (500_u16..600).prop_map(AttemptResult::Status),
        ]
    }

    fn non_retryable_status() -> impl Strategy<Value = u16> {
        prop_oneof![100_u16..200, 300_u16..408, 409_u16..429, 430_u16..500, 600_u16..1000]
    }

    #[test]
    fn reasons_name_the_status() {
        let p = policy();
        let zero = Duration::zero();
        assert_eq!(
            p.decide(&AttemptResult::Status(404), 1, zero, 0.5),
            Verdict::Failed("HTTP 404".to_owned())
        );
        assert_eq!(
            p.decide(&AttemptResult::Status(302), 1, zero, 0.5),
            Verdict::Failed("redirects are not followed (HTTP 302)".to_owned())
        );
        assert!(matches!(p.decide(&AttemptResult::Refused, 1, zero, 0.5), Verdict::Failed(_)));
    }

    #[test]
    fn default_schedule_doubles_from_two_minutes_to_a_six_hour_cap() {
        let steps: Vec<i64> = (1..=10).map(|n| policy().delay(n, 0.5).num_seconds()).collect();
        assert_eq!(steps, [120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600]);
    }

    #[test]
    fn exhaustion_is_reported_with_the_last_error() {
        let verdict = policy().decide(&AttemptResult::Status(503), 12, Duration::hours(25), 0.5);
        assert_eq!(
            verdict,
            Verdict::Failed("retries exhausted after 12 attempts (last: HTTP 503)".to_owned())
        );
    }

    #[test]
    fn absurd_inputs_still_give_a_bounded_positive_delay() {
        let p = policy();
        for jitter in [f64::NAN, f64::INFINITY, -3.0, 7.0] {
            let delay = p.delay(u32::MAX, jitter);
            assert!(delay > Duration::zero() && delay <= Duration::hours(8));
        }
        assert_eq!(p.delay(0, 0.5), p.delay(1, 0.5));
    }

    proptest! {
        #[test]
        fn delays_are_positive(result in retryable_result(), n in 1_u32..1000, jitter in 0.0..1.0_f64) {
            let delay = retry_delay(policy().decide(&result, n, Duration::zero(), jitter));
            prop_assert!(delay > Duration::zero());
        }

        #[test]
        fn delays_never_shrink_for_a_fixed_jitter(n in 1_u32..100, jitter in 0.0..1.0_f64) {
            let p = policy();
            prop_assert!(p.delay(n + 1, jitter) >= p.delay(n, jitter));
        }

        #[test]
        fn first_retry_is_two_minutes_give_or_take_a_fifth(result in retryable_result(), jitter in 0.0..1.0_f64) {
            let delay = retry_delay(policy().decide(&result, 1, Duration::zero(), jitter));
            prop_assert!(delay >= Duration::seconds(96) && delay <= Duration::seconds(144));
        }

        #[test]
        fn retries_cover_a_day_then_stop(
            result in retryable_result(),
            jitters in prop::collection::vec(0.0..1.0_f64, 64),
        ) {
            let p = policy();
            let mut elapsed = Duration::zero();
            for (n, jitter) in (1_u32..).zip(jitters) {
                match p.decide(&result, n, elapsed, jitter) {
                    Verdict::RetryAfter(delay) => elapsed += delay,
                    Verdict::Failed(reason) => {
                        prop_assert!(reason.starts_with("retries exhausted"), "{}", reason);
                        prop_assert!(elapsed >= p.give_up_after);
                        return Ok(());
                    }
                    Verdict::Delivered => prop_assert!(false, "a failure was delivered"),
                }
            }
            prop_assert!(false, "still retrying after 64 attempts");
        }

        #[test]
        fn a_2xx_is_always_delivered(code in 200_u16..300, n in 1_u32..1000, hours in 0_i64..1000, jitter in 0.0..1.0_f64) {
            let verdict = policy().decide(&AttemptResult::Status(code), n, Duration::hours(hours), jitter);
            prop_assert_eq!(verdict, Verdict::Delivered);
        }

        #[test]
        fn a_non_retryable_status_is_never_retried(code in non_retryable_status(), n in 1_u32..1000, jitter in 0.0..1.0_f64) {
            let verdict = policy().decide(&AttemptResult::Status(code), n, Duration::zero(), jitter);
            prop_assert!(matches!(verdict, Verdict::Failed(_)), "{:?}", verdict);
        }
    }
}
