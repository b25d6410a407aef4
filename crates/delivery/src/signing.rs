//! Standard Webhooks signatures for tenant callbacks: `webhook-signature: v1,<base64>`, an
//! HMAC-SHA256 of `"{webhook-id}.{webhook-timestamp}.{body}"` keyed with the tenant's secret.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";
/// The spec asks for 24 to 64 random bytes.
const SECRET_BYTES: usize = 32;
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// The secret is not `whsec_` followed by base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing secret must be \"whsec_\" followed by base64")]
pub struct InvalidSecret;

/// A fresh random secret, shown to the tenant as `whsec_<base64>`.
pub fn new_secret() -> String {
    let mut key = [0_u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header value for one message.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, InvalidSecret> {
    let tag = mac(secret, msg_id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("{VERSION},{}", STANDARD.encode(tag)))
}

/// Whether any `v1` entry of a space-separated `webhook-signature` header matches, compared in
/// constant time. Checking the timestamp's freshness is left to the caller.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(expected) = mac(secret, msg_id, timestamp, body) else {
        return false;
    };
    header
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == VERSION)
        .filter_map(|(_, signature)| STANDARD.decode(signature).ok())
        .any(|signature| expected.clone().verify_slice(&signature).is_ok())
}

fn mac(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<HmacSha256, InvalidSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| InvalidSecret)?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| InvalidSecret)?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, BODY).as_deref(), Ok(SIGNATURE));
    }

    #[test]
    fn verifies_the_test_vector_among_rotated_signatures() {
        let header = format!("v1,bm90IHRoaXMgb25l {SIGNATURE} v1a,ignored");
        assert!(verify(SECRET, MSG_ID, TIMESTAMP, BODY, &header));
    }

    #[test]
    fn rejects_any_change_to_the_signed_content() {
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, SIGNATURE));
        assert!(!verify(SECRET, "msg_other", TIMESTAMP, BODY, SIGNATURE));
        assert!(!verify(SECRET, MSG_ID, TIMESTAMP, b"{}", SIGNATURE));
        assert!(!verify(&new_secret(), MSG_ID, TIMESTAMP, BODY, SIGNATURE));
        assert!(!verify(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
    }

    #[test]
    fn new_secrets_are_random_and_usable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let key =
            STANDARD.decode(a.strip_prefix(SECRET_PREFIX).expect("prefixed")).expect("base64");
        assert!(key.len() >= 24);
        let signature = sign(&a, MSG_ID, TIMESTAMP, BODY).expect("own secrets are valid");
        assert!(verify(&a, MSG_ID, TIMESTAMP, BODY, &signature));
    }

    #[test]
    fn malformed_secrets_are_rejected() {
        assert_eq!(
            sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MSG_ID, TIMESTAMP, BODY),
            Err(InvalidSecret)
        );
        assert_eq!(sign("whsec_not base64!", MSG_ID, TIMESTAMP, BODY), Err(InvalidSecret));
    }
}
