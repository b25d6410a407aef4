//! Outbound deliveries (partner postbacks and tenant callbacks), their attempts and settings.

/// The delivery queue, its attempts, and the partner postback and callback settings.
#[async_trait::async_trait]
pub trait DeliveryTx: Send {}
