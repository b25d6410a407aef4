//! Clicks on partner tracking links.
