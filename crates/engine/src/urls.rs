//! The absolute URLs gokart shows: tracking links, the postback URL, dashboard links.

/// How users reach this gokart: `http://api.<tenant>.<base-domain>:<port>` by default, or under
/// `GOKART_PUBLIC_ORIGIN` (`https://gokart.example.com` → `https://api.<tenant>.gokart.example.com`)
/// behind a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrls {
    scheme: String,
    host_suffix: String,
    /// `:8080`, or empty for the scheme's default port.
    port: String,
}

impl PublicUrls {
    pub fn new(base_domain: &str, listen_port: u16, public_origin: Option<&str>) -> Self {
        if let Some(origin) = public_origin.and_then(|o| url::Url::parse(o).ok()) {
            return PublicUrls {
                scheme: origin.scheme().to_owned(),
                host_suffix: origin.host_str().unwrap_or(base_domain).to_owned(),
                port: origin.port().map(|p| format!(":{p}")).unwrap_or_default(),
            };
        }
        let port = if listen_port == 80 { String::new() } else { format!(":{listen_port}") };
        PublicUrls { scheme: "http".into(), host_suffix: base_domain.to_owned(), port }
    }

    pub fn base_domain(&self) -> &str {
        &self.host_suffix
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    pub fn api_origin(&self, tenant_slug: &str) -> String {
        format!("{}://api.{tenant_slug}.{}{}", self.scheme, self.host_suffix, self.port)
    }

    pub fn app_origin(&self, tenant_slug: &str) -> String {
        format!("{}://app.{tenant_slug}.{}{}", self.scheme, self.host_suffix, self.port)
    }

    pub fn tracking_link(&self, tenant_slug: &str, offer_id: uuid::Uuid) -> String {
        format!("{}/api/v1/offer-link/redirect/{offer_id}", self.api_origin(tenant_slug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_proxy_origin() {
        let urls = PublicUrls::new("localhost", 8080, None);
        assert_eq!(urls.api_origin("brownboots"), "http://api.brownboots.localhost:8080");
        let urls = PublicUrls::new("localhost", 8080, Some("https://gk.example.com"));
        assert_eq!(urls.app_origin("brownboots"), "https://app.brownboots.gk.example.com");
    }
}
