//! Settings: flags, each with a `GOKART_*` environment variable, with the defaults of PRODUCT.md §1.

use std::net::SocketAddr;

use clap::{ArgAction, Args};

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "GOKART_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `postgres://...`.
    #[arg(long, env = "GOKART_DATABASE_URL", default_value = "sqlite://gokart-data/gokart.db")]
    pub database_url: String,
    /// Tenants are served at `api.<tenant>.<base-domain>` and `app.<tenant>.<base-domain>`.
    #[arg(long, env = "GOKART_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,
    /// The origin users reach when gokart runs behind a proxy, e.g. `https://gk.example.com`.
    #[arg(long, env = "GOKART_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,
    /// Allow outbound postbacks to private, loopback and link-local addresses (off: SSRF guard).
    #[arg(long, env = "GOKART_ALLOW_PRIVATE_DESTINATIONS", action = ArgAction::SetTrue)]
    pub allow_private_destinations: bool,
    /// Do not run the delivery worker in this process.
    #[arg(long, action = ArgAction::SetTrue)]
    pub no_worker: bool,
    /// How long a claimed delivery stays with its worker before another may take it (a worker
    /// that died mid-send). Above the 10 s send timeout.
    #[arg(long, env = "GOKART_DELIVERY_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(i64).range(11..=3600))]
    pub delivery_lease_seconds: i64,
    /// Where uploaded creatives are stored.
    #[arg(long, env = "GOKART_DATA_DIR", default_value = "gokart-data")]
    pub data_dir: std::path::PathBuf,
}

impl Settings {
    pub fn public_urls(&self) -> gokart_engine::PublicUrls {
        gokart_engine::PublicUrls::new(
            &self.base_domain,
            self.listen.port(),
            self.public_origin.as_deref(),
        )
    }
}
