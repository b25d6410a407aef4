//! Outbound delivery of partner postbacks and tenant callbacks: the SSRF-guarded HTTP client,
//! Standard Webhooks signing, and the worker that drains the delivery queue.

pub mod client;
pub mod signing;
pub mod ssrf;
pub mod worker;

pub use client::{Attempt, Method, OutboundClient, OutboundRequest};
pub use worker::{Worker, WorkerConfig};
