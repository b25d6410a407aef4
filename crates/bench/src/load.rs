//! A small HTTP/1.1 load generator on hyper: closed loop for the maximum rate, open loop (fixed
//! schedule, latency measured from the scheduled time) for latency at a given rate.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client(connections: usize) -> HttpClient {
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(connections).build_http()
}

/// Builds the n-th request of a run.
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;
/// Sees each successful answer (status and headers), e.g. to collect click ids.
pub type OnResponse = Arc<dyn Fn(&Response<hyper::body::Incoming>) + Send + Sync>;

pub fn get(addr: SocketAddr, host: &str, path_and_query: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}{path_and_query}"))
        .header(hyper::header::HOST, host)
        .body(Full::new(Bytes::new()))
        .expect("valid request")
}

pub struct RunStats {
    /// Requests sent, measured or not (an open loop's warm-up is sent but not measured).
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// Open loop only: from each request's send to its answer, however late it was sent (in a
    /// closed loop that is `latency` itself, so it is not kept twice).
    pub from_send: Histogram<u64>,
    /// CPU time the server process used during the run (set by the caller; zero if unknown).
    pub server_cpu: Duration,
}

impl RunStats {
    /// Nothing counted yet.
    fn empty() -> Self {
        RunStats {
            sent: 0,
            ok: 0,
            failed: 0,
            elapsed: Duration::ZERO,
            latency: histogram(),
            from_send: histogram(),
            server_cpu: Duration::ZERO,
        }
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency quantile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// Quantile of the time from send to answer, in milliseconds.
    pub fn ms_from_send(&self, quantile: f64) -> f64 {
        self.from_send.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// Adds `other`'s counts, time and latencies to these (two runs as one).
    pub fn pool(&mut self, other: RunStats) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed += other.failed;
        self.elapsed += other.elapsed;
        self.server_cpu += other.server_cpu;
        let _ = self.latency.add(&other.latency);
        let _ = self.from_send.add(&other.from_send);
    }

    /// Server CPU time per answered request, in microseconds: a figure that the VM's noise
    /// moves far less than a rate, for comparing two builds.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

async fn send_one(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    on_response: &Option<OnResponse>,
) -> bool {
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let good = status.is_success() || status.is_redirection();
            if good {
                if let Some(callback) = on_response {
                    callback(&response);
                }
            }
            let body = response.into_body().collect().await;
            if !good {
                let body = body.map(|body| body.to_bytes()).unwrap_or_default();
                tell_failure(&format!("{status} {}", String::from_utf8_lossy(&body)));
            }
            good
        }
        Err(error) => {
            tell_failure(&error.to_string());
            false
        }
    }
}

/// Prints the first few failures of the whole run, so that a failed request says why.
fn tell_failure(what: &str) {
    static TOLD: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    if TOLD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        eprintln!("   failed: {}", what.chars().take(300).collect::<String>());
    }
}

/// When a closed loop stops sending.
#[derive(Clone, Copy)]
pub enum Until {
    /// The measured duration is over.
    Elapsed(Duration),
    /// This many requests were sent (the instruction count's phases).
    Sent(u64),
}

/// `connections` loops, each sending its next request as soon as the previous one is answered,
/// `until` the run is over.
pub async fn closed_loop(
    client: &HttpClient,
    connections: usize,
    until: Until,
    make: MakeRequest,
    on_response: Option<OnResponse>,
) -> RunStats {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, make, on_response, counter) =
            (client.clone(), make.clone(), on_response.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats = RunStats::empty();
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let over = match until {
                    Until::Elapsed(duration) => started.elapsed() >= duration,
                    Until::Sent(count) => n >= count,
                };
                if over {
                    break;
                }
                let sent = Instant::now();
                stats.sent += 1;
                if send_one(&client, make(n), &on_response).await {
                    stats.ok += 1;
                    let _ = stats.latency.record(sent.elapsed().as_micros() as u64);
                } else {
                    stats.failed += 1;
                }
            }
            stats
        }));
    }
    collect(tasks, started).await
}

/// Sends `rate` requests per second on a fixed schedule for `warm_up` and then `duration`,
/// and measures the requests scheduled after the warm-up: the first moments of a new load
/// (every connection's first request at once, caches and the WAL cold from the phase before)
/// are its start, not its steady state, and at 1 % of a few seconds' requests they alone made
/// the 99th percentile (wrk2 leaves its calibration period out alike). Failures count
/// throughout. A request that waited for its connection (the previous answer came after its
/// scheduled time) counts from the scheduled time, so a stall is not hidden (no coordinated
/// omission); one sent late only by the generator itself (tokio's timers round up to the next
/// millisecond) counts from its send.
pub async fn open_loop(
    client: &HttpClient,
    connections: usize,
    rate: f64,
    (warm_up, duration): (Duration, Duration),
    make: MakeRequest,
    on_response: Option<OnResponse>,
) -> RunStats {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let measured_from = started + warm_up;
    let per_task = Duration::from_secs_f64(connections as f64 / rate.max(1.0));
    let total = (rate * (warm_up + duration).as_secs_f64()) as u64;
    let mut tasks = Vec::new();
    for task in 0..connections {
        let (client, make, on_response, counter) =
            (client.clone(), make.clone(), on_response.clone(), counter.clone());
        let offset = per_task.mul_f64(task as f64 / connections as f64);
        tasks.push(tokio::spawn(async move {
            let mut stats = RunStats::empty();
            let (mut due, mut free_since) = (started + offset, started);
            loop {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let counted_from = if free_since > due { due } else { sent };
                let measured = due >= measured_from;
                stats.sent += 1;
                if send_one(&client, make(n), &on_response).await {
                    if measured {
                        stats.ok += 1;
                        let _ = stats.latency.record(counted_from.elapsed().as_micros() as u64);
                        let _ = stats.from_send.record(sent.elapsed().as_micros() as u64);
                    }
                } else {
                    stats.failed += 1;
                }
                free_since = Instant::now();
                due += per_task;
            }
            stats
        }));
    }
    collect(tasks, measured_from).await
}

/// The connections' counts as one run, over the time since `started` (or now, if later).
async fn collect(tasks: Vec<tokio::task::JoinHandle<RunStats>>, started: Instant) -> RunStats {
    let mut stats = RunStats::empty();
    for task in tasks {
        if let Ok(counted) = task.await {
            stats.pool(counted);
        }
    }
    stats.elapsed = Instant::now().saturating_duration_since(started);
    stats
}
