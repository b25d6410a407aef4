//! The conversion engine: deciding conversion events, pending approval, status overrides.
