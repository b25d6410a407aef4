//! gokart's domain: the model and the rules, as pure functions. No IO, no async, no clock: time
//! and randomness come in as arguments.

pub mod availability;
pub mod error;
pub mod json;
pub mod macros;
pub mod money;
pub mod offer;
pub mod params;
pub mod retry;
pub mod targeting;
pub mod tenant;
pub mod time;
pub mod validate;

pub use error::FieldError;
pub use money::Money;
