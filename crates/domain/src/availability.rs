//! Whether an offer takes clicks today (PRODUCT.md §6): not paused, launched, not expired.

use chrono::NaiveDate;

use crate::offer::{Offer, OfferStatus};

/// Why an offer takes no clicks; `Display` is meant for the end user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("This offer is paused at the moment. Please try again later.")]
    Paused,
    #[error("This offer is not available yet.")]
    NotLaunched,
    #[error("This offer has ended.")]
    Expired,
    /// Not decided here: budgets need the conversion totals, which live in storage.
    #[error("This offer has reached its budget and is no longer available.")]
    OutOfBudget,
}

/// Checks status and dates. Launch and expiry dates are inclusive: an offer expiring on
/// 2026-11-22 still takes clicks that day.
pub fn check_availability(offer: &Offer, today: NaiveDate) -> Result<(), Unavailable> {
    match offer.status {
        OfferStatus::Pending => return Err(Unavailable::Paused),
        OfferStatus::Expired => return Err(Unavailable::Expired),
        OfferStatus::Active => {}
    }
    if offer.spec.launch_date.is_some_and(|launch| today < launch) {
        return Err(Unavailable::NotLaunched);
    }
    if offer.spec.expiry_date.is_some_and(|expiry| today > expiry) {
        return Err(Unavailable::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::offer::{OfferSpec, OfferType, TrackingSystem};

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn offer(status: OfferStatus, launch: Option<&str>, expiry: Option<&str>) -> Offer {
        let spec: OfferSpec = serde_json::from_value(serde_json::json!({
            "name": "Pet the Dogs iOS",
            "offerType": OfferType::SingleEvent,
            "trackingSystem": TrackingSystem::Adjust,
            "trackingSystemLink": "https://app.adjust.com/abc123",
        }))
        .unwrap();
        Offer {
            id: Uuid::nil(),
            status,
            partner_id: None,
            shared_at: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            spec: OfferSpec {
                launch_date: launch.map(date),
                expiry_date: expiry.map(date),
                ..spec
            },
        }
    }

    #[test]
    fn active_offer_without_dates_is_available() {
        let offer = offer(OfferStatus::Active, None, None);
        assert_eq!(check_availability(&offer, date("2026-11-22")), Ok(()));
    }

    #[test]
    fn paused_and_expired_statuses_refuse() {
        let today = date("2026-11-22");
        let paused = offer(OfferStatus::Pending, None, None);
        assert_eq!(check_availability(&paused, today), Err(Unavailable::Paused));
        let expired = offer(OfferStatus::Expired, None, None);
        assert_eq!(check_availability(&expired, today), Err(Unavailable::Expired));
    }

    #[test]
    fn dates_are_inclusive() {
        let offer = offer(OfferStatus::Active, Some("2026-11-01"), Some("2026-11-30"));
        for today in ["2026-11-01", "2026-11-15", "2026-11-30"] {
            assert_eq!(check_availability(&offer, date(today)), Ok(()), "{today}");
        }
        assert_eq!(check_availability(&offer, date("2026-10-31")), Err(Unavailable::NotLaunched));
        assert_eq!(check_availability(&offer, date("2026-12-01")), Err(Unavailable::Expired));
    }

    #[test]
    fn messages_are_plain_sentences() {
        assert_eq!(Unavailable::Expired.to_string(), "This offer has ended.");
        assert!(Unavailable::OutOfBudget.to_string().contains("budget"));
    }
}
