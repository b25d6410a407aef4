//! Which destinations outbound requests may reach.
//!
//! Postback and callback URLs are user input, so without a check they could reach the
//! machine's own services, the private network or a cloud metadata endpoint. The check runs in
//! the DNS resolver handed to reqwest: the addresses it returns are the only ones reqwest
//! connects to, so a name cannot pass the check and then be re-resolved (DNS rebinding) to a
//! private address. reqwest never asks the resolver about IP-literal hosts, so those are checked
//! with [`check_url_host`] before sending.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The destination is in a range outbound requests may not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("destination address is private/loopback (SSRF protection)")]
pub struct ForbiddenDestination;

/// Whether `ip` is outside the public internet: loopback, private, link-local (cloud metadata),
/// shared, multicast, broadcast, unspecified, documentation, benchmarking or reserved space,
/// including IPv6 forms that embed such an IPv4 address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT shared space, incl. 100.100.100.200
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_forbidden_v4(v4);
    }
    let s = ip.segments();
    // Only global unicast (2000::/3) is routed on the internet. Outside it lie `::`, `::1`,
    // unique-local fc00::/7 (incl. AWS metadata fd00:ec2::254), link-local fe80::/10,
    // multicast, discard-only and local-use NAT64.
    (s[0] & 0xe000) != 0x2000
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: tunnels to an IPv4 peer
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation (3fff::/20)
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address, which
/// is the host actually reached through it.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // `::` and `::1` are themselves, not IPv4-compatible addresses.
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(low),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, high, low16, ..] => {
            Some(Ipv4Addr::new((high >> 8) as u8, high as u8, (low16 >> 8) as u8, low16 as u8))
        }
        _ => None,
    }
}

/// Refuses URLs whose host is a forbidden IP literal, which reqwest connects to without asking
/// the resolver. Host names are left to [`GuardedResolver`].
pub fn check_url_host(url: &Url, allow_private: bool) -> Result<(), ForbiddenDestination> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) | None => return Ok(()),
    };
    if !allow_private && is_forbidden(ip) {
        return Err(ForbiddenDestination);
    }
    Ok(())
}

/// Turns a host name into addresses. The system resolver in production, a stub in tests.
#[async_trait]
pub trait Lookup: Send + Sync + 'static {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, 0)).await?;
        Ok(addrs.map(|addr| addr.ip()).collect())
    }
}

/// A reqwest resolver that drops forbidden addresses from every answer, unless private
/// destinations are allowed. If nothing is left the connection fails with
/// [`ForbiddenDestination`].
#[derive(Clone)]
pub struct GuardedResolver {
    lookup: Arc<dyn Lookup>,
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(lookup: Arc<dyn Lookup>, allow_private: bool) -> Self {
        Self { lookup, allow_private }
    }

    /// The permitted addresses for `host`, in the order the lookup gave them.
    pub async fn permitted(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found = self.lookup.lookup(host).await.map_err(ResolveError::Lookup)?;
        if found.is_empty() {
            return Err(ResolveError::NoAddress);
        }
        let permitted: Vec<IpAddr> =
            found.into_iter().filter(|ip| self.allow_private || !is_forbidden(*ip)).collect();
        if permitted.is_empty() {
            return Err(ResolveError::Forbidden(ForbiddenDestination));
        }
        Ok(permitted)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let ips = resolver.permitted(name.as_str()).await?;
            // Port 0 is replaced by the URL's port (or the scheme's default) by reqwest.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Why a host name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("DNS lookup failed: {0}")]
    Lookup(#[source] io::Error),
    #[error("DNS lookup returned no address")]
    NoAddress,
    #[error(transparent)]
    Forbidden(#[from] ForbiddenDestination),
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;

    fn forbidden(ip: &str) -> bool {
        is_forbidden(ip.parse().expect("test IPs are valid"))
    }

    const FORBIDDEN_V4: &[&str] = &[
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "10.255.255.255",
        "100.64.0.1",
        "100.127.255.254",
        "100.100.100.200", // Alibaba Cloud metadata
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.169.254", // AWS/GCP/Azure metadata
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
    ];

    const PUBLIC_V4: &[&str] = &[
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.1",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
    ];

    const FORBIDDEN_V6: &[&str] = &[
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fd00:ec2::254", // AWS metadata over IPv6
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "ff05::2",
        "100::1",
        "64:ff9b:1::1",
        "2001::1",
        "2001:2::1",
        "2001:db8::1",
        "3fff::1",
        "3fff:fff:ffff::1",
        "fe00::1",
        "fbff::1",
        "4000::1",
    ];

    const PUBLIC_V6: &[&str] =
        &["2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001::1", "3ffe::1"];

    #[test]
    fn forbidden_ipv4_ranges() {
        for ip in FORBIDDEN_V4 {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_ipv4_neighbours_of_forbidden_ranges_pass() {
        for ip in PUBLIC_V4 {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn forbidden_ipv6_ranges() {
        for ip in FORBIDDEN_V6 {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_ipv6_passes() {
        for ip in PUBLIC_V6 {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn ipv6_forms_embedding_ipv4_follow_the_ipv4_verdict() {
        for ip in FORBIDDEN_V4 {
            for form in ["::ffff:", "::", "64:ff9b::"] {
                assert!(forbidden(&format!("{form}{ip}")), "{form}{ip}");
            }
        }
        assert!(forbidden("2002:a9fe:a9fe::1"), "6to4 of 169.254.169.254");
        assert!(forbidden("2002:7f00:1::"), "6to4 of 127.0.0.1");
        assert!(!forbidden("::ffff:8.8.8.8"));
        assert!(!forbidden("64:ff9b::1.1.1.1"));
        assert!(!forbidden("2002:808:808::1"));
    }

    proptest! {
        #[test]
        fn mapped_form_has_the_same_verdict(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            prop_assert_eq!(
                is_forbidden(IpAddr::V6(v4.to_ipv6_mapped())),
                is_forbidden(IpAddr::V4(v4))
            );
        }
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/", // 127.0.0.1 as one number
            "http://0x7f.1/",
            "http://[::1]:8080/",
            "https://[::ffff:169.254.169.254]/latest/meta-data",
            "http://169.254.169.254/",
        ] {
            let url = Url::parse(url).expect("valid URL");
            assert_eq!(check_url_host(&url, false), Err(ForbiddenDestination), "{url}");
            assert_eq!(check_url_host(&url, true), Ok(()), "{url}");
        }
        for url in ["http://8.8.8.8/", "https://partner.example/pb?x=1"] {
            let url = Url::parse(url).expect("valid URL");
            assert_eq!(check_url_host(&url, false), Ok(()), "{url}");
        }
    }

    /// Answers every name with a fixed list, never touching the network.
    struct Stub(Vec<IpAddr>);

    #[async_trait]
    impl Lookup for Stub {
        async fn lookup(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
            Ok(self.0.clone())
        }
    }

    fn resolver(answer: &[&str], allow_private: bool) -> GuardedResolver {
        let ips = answer.iter().map(|ip| ip.parse().expect("valid IP")).collect();
        GuardedResolver::new(Arc::new(Stub(ips)), allow_private)
    }

    async fn resolve(resolver: &GuardedResolver) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_str("partner.example").expect("valid name");
        match resolver.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn a_name_resolving_only_to_private_addresses_is_refused() {
        let err = resolve(&resolver(&["10.0.0.1", "::ffff:127.0.0.1"], false))
            .await
            .expect_err("must be refused");
        assert_eq!(err, "destination address is private/loopback (SSRF protection)");
    }

    #[tokio::test]
    async fn private_answers_are_dropped_and_public_ones_kept() {
        let addrs = resolve(&resolver(&["93.184.215.14", "127.0.0.1"], false))
            .await
            .expect("a public address remains");
        assert_eq!(addrs, ["93.184.215.14:0".parse().expect("valid")]);
    }

    #[tokio::test]
    async fn allow_private_keeps_everything() {
        let addrs = resolve(&resolver(&["10.0.0.1", "127.0.0.1"], true)).await.expect("allowed");
        assert_eq!(addrs.len(), 2);
    }

    #[tokio::test]
    async fn an_empty_answer_is_an_error() {
        let err = resolve(&resolver(&[], false)).await.expect_err("no address");
        assert_eq!(err, "DNS lookup returned no address");
    }
}
