//! gokart's domain: the model and the rules, as pure functions. No IO, no async, no clock: time
//! and randomness come in as arguments.

pub mod error;
pub mod money;
pub mod offer;
pub mod retry;
pub mod tenant;
pub mod time;

pub use error::FieldError;
pub use money::Money;
