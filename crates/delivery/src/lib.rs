//! Outbound delivery of partner postbacks and tenant callbacks: the SSRF-guarded HTTP client
//! and Standard Webhooks signing.

pub mod client;
pub mod signing;
pub mod ssrf;

pub use client::{Attempt, Method, OutboundClient, OutboundRequest};
