//! The gokart binary's library half: settings, the server composition root and the commands, so
//! that integration tests start exactly what `gokart serve` starts.

pub mod cli;
pub mod demo;
pub mod server;
pub mod settings;
pub mod simulate;

pub use server::{serve, Server};
pub use settings::Settings;
