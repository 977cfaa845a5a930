//! Which addresses outbound HTTP may reach: never the cloud metadata endpoints, whatever the
//! allowlist says; in a runtime pool never loopback and internal addresses only through a
//! literal rule.
//!
//! Why the metadata rule is separate from the allowlist: a function that reaches
//! 169.254.169.254 gets the *node's* IAM role, which defeats per-function IRSA. So the check is
//! on IP addresses after every way of spelling them (decimal, hex, octal, IPv4-mapped IPv6,
//! NAT64) and after DNS resolution, and the connection goes to the address that was checked,
//! so a DNS answer cannot change between check and connect.
//!
//! In a runtime pool pod (`OutboundPolicy::in_pool`) every resolved address is also classified
//! ([`address_class`]) and put to the policy: loopback is the pool pod itself (its management
//! API, its siblings' functions without the gateway) and is never reachable; internal
//! addresses (private ranges, the pod and service CIDRs) only through a literal rule.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;

use faas_api::network::{AddressClass, OutboundPolicy};

use crate::Refused;

/// True for addresses no function may ever reach: the link-local range that hosts the EC2
/// instance metadata service, ECS/EKS Pod Identity credential agents and friends
/// (169.254.0.0/16), and the IPv6 metadata range (fd00:ec2::/32).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_forbidden_v4(v4);
            }
            let s = v6.segments();
            // fd00:ec2::/32 (IMDS at fd00:ec2::254, Pod Identity at fd00:ec2::23), and
            // link-local fe80::/10 for the same reason as 169.254/16.
            (s[0] == 0xfd00 && s[1] == 0x0ec2) || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// True for addresses inside the platform's own networks: loopback, private ranges (RFC
/// 1918, CGNAT 100.64/10, ULA fc00::/7), unspecified, and everything [`is_forbidden_ip`]
/// refuses.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    if is_forbidden_ip(ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            // ULA fc00::/7, site-local fec0::/10 (deprecated, still routed by some stacks),
            // multicast ff00::/8.
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfec0
                || (first & 0xff00) == 0xff00
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_unspecified()
        || (a == 100 && (64..128).contains(&b))
        || a == 0
        // IETF protocol assignments 192.0.0.0/24, benchmarking 198.18.0.0/15, multicast
        // 224.0.0.0/4, reserved 240.0.0.0/4 and broadcast: never a public service.
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 224
}

/// True for the host itself: 127.0.0.0/8 and ::1, in every spelling (IPv4-mapped included).
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || embedded_v4(v6).is_some_and(|v4| v4.is_loopback()),
    }
}

/// How the outbound policy sees an address (see [`OutboundPolicy::admits`]).
pub fn address_class(ip: IpAddr) -> AddressClass {
    if is_loopback_ip(ip) {
        AddressClass::Loopback
    } else if is_internal_ip(ip) {
        AddressClass::Internal
    } else {
        AddressClass::Public
    }
}

fn is_forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_link_local() || v4.is_unspecified()
}

/// IPv4 addresses hidden inside IPv6 ones: `::ffff:a.b.c.d` (mapped), `::a.b.c.d` (compatible,
/// deprecated but still routed by some stacks) and `64:ff9b::a.b.c.d` (NAT64 well-known prefix).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0]
        && tail != Ipv4Addr::UNSPECIFIED
        && tail != Ipv4Addr::new(0, 0, 0, 1)
    {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    None
}

/// Parses a host the way `inet_aton` and URL parsers do, so that every spelling of an address
/// is recognised: `169.254.169.254`, `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376`,
/// `169.254.43518`, `[fd00:ec2::254]`. Returns `None` for real host names.
pub fn parse_host_ip(host: &str) -> Option<IpAddr> {
    let host = host.trim_end_matches('.');
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    parse_loose_v4(host).map(IpAddr::V4)
}

fn parse_loose_v4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for part in &parts {
        nums.push(parse_number(part)?);
    }
    // inet_aton: the last part fills all remaining bytes.
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let remaining_bytes = 4 - init.len() as u32;
    if remaining_bytes < 4 && *last >= 1u64 << (8 * remaining_bytes) {
        return None;
    }
    if *last > u64::from(u32::MAX) {
        return None;
    }
    let mut value: u32 = 0;
    for (i, n) in init.iter().enumerate() {
        value |= (*n as u32) << (8 * (3 - i as u32));
    }
    value |= *last as u32;
    Some(Ipv4Addr::from(value))
}

fn parse_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let lower = part.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        if hex.is_empty() {
            return Some(0);
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return u64::from_str_radix(&lower[1..], 8).ok();
    }
    lower.parse::<u64>().ok()
}

/// A lookup of a host name's addresses in progress.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Where host names are looked up. The rules above apply to whatever the resolver answers, so
/// the resolver is a seam: the system's in production ([`SystemResolver`]), a fixed table in
/// tests, which can then show a name resolving to the metadata endpoint being refused without
/// DNS, a network namespace or any chance of a packet leaving.
pub trait Resolve: Send + Sync {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;
}

/// The operating system's resolver (`getaddrinfo` on a blocking thread, through tokio).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Resolves `host:port` with the system's resolver and refuses if any answer is a forbidden
/// address. Literal addresses in any spelling skip DNS.
pub async fn resolve_allowed(host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
    resolve_allowed_by(&SystemResolver, host, port).await
}

/// [`resolve_allowed`] with the names looked up by `resolver`.
pub async fn resolve_allowed_by(
    resolver: &dyn Resolve,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Refused> {
    let addrs: Vec<SocketAddr> = match parse_host_ip(host) {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => resolver
            .lookup(host, port)
            .await
            .map_err(|_| Refused::DestinationNotFound)?,
    };
    if addrs.is_empty() {
        return Err(Refused::DestinationNotFound);
    }
    if addrs.iter().any(|a| is_forbidden_ip(a.ip())) {
        return Err(Refused::DestinationIpProhibited);
    }
    Ok(addrs)
}

/// Where an outgoing request goes: scheme (default `https`), host and port (default by
/// scheme).
pub struct Target {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    uri: http::Uri,
    resolver: &'static dyn Resolve,
}

impl Target {
    pub fn of(uri: &http::Uri) -> Result<Target, Refused> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().ok_or(Refused::UriInvalid)?.to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        Ok(Target {
            scheme,
            host,
            port,
            uri: uri.clone(),
            resolver: &SystemResolver,
        })
    }

    /// The same target with its host looked up by `resolver` instead of the system's.
    pub fn resolved_by(self, resolver: &'static dyn Resolve) -> Target {
        Target { resolver, ..self }
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, Refused> {
        resolve_allowed_by(self.resolver, &self.host, self.port).await
    }

    /// [`Target::checked_uri`], also refusing loopback, private (RFC 1918, CGNAT, ULA) and
    /// unspecified addresses unless `internal` is allowed: what a URL given by an anonymous
    /// caller (an async call's callback) may reach.
    pub async fn checked_public_uri(&self, internal: bool) -> Result<http::Uri, Refused> {
        let addrs = self.resolve().await?;
        if !internal && addrs.iter().any(|a| is_internal_ip(a.ip())) {
            return Err(Refused::DestinationIpProhibited);
        }
        self.uri_to(&addrs)
    }

    /// Resolves the host under the metadata-address rule ([`resolve_allowed`]) and gives the
    /// URI to send to. Plain HTTP connects to the address that was checked, not to a name
    /// that could resolve differently a second time; HTTPS keeps the name for SNI and
    /// certificate checks (see ARCHITECTURE.md for the remaining re-resolution window).
    pub async fn checked_uri(&self) -> Result<http::Uri, Refused> {
        let addrs = self.resolve().await?;
        self.uri_to(&addrs)
    }

    /// [`Target::checked_uri`], also asking `policy` about every address the host resolved
    /// to ([`OutboundPolicy::admits`]: in a pool, no loopback and no internal address
    /// without a literal rule). Every answer must pass, so a name that resolves to a public
    /// and an internal address is refused rather than left to the connector's choice.
    pub async fn admitted_uri(&self, policy: &OutboundPolicy) -> Result<http::Uri, Refused> {
        let addrs = self.resolve().await?;
        let refused = addrs.iter().find(|a| {
            let ip = a.ip();
            !policy.admits(&self.scheme, &self.host, self.port, ip, address_class(ip))
        });
        if let Some(addr) = refused {
            tracing::debug!(host = %self.host, address = %addr.ip(), "outbound address refused by the pool rule");
            return Err(Refused::DestinationIpProhibited);
        }
        self.uri_to(&addrs)
    }

    /// The URI to send to once `addrs` (never empty) were checked.
    fn uri_to(&self, addrs: &[SocketAddr]) -> Result<http::Uri, Refused> {
        if self.scheme != "http" {
            return Ok(self.uri.clone());
        }
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        format!("http://{}{path}", addrs[0])
            .parse()
            .map_err(|_| Refused::UriInvalid)
    }
}

#[cfg(test)]
mod internal_tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "169.254.169.254",
            "::1",
            "fd12::1",
            "::ffff:10.0.0.1",
            "fd00:ec2::254",
        ] {
            let ip: IpAddr = internal.parse().expect("an address");
            assert!(is_internal_ip(ip), "{internal}");
        }
        for public in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "2001:4860::8888"] {
            let ip: IpAddr = public.parse().expect("an address");
            assert!(!is_internal_ip(ip), "{public}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(host: &str) -> bool {
        parse_host_ip(host).is_some_and(is_forbidden_ip)
    }

    #[test]
    fn every_spelling_of_the_metadata_endpoint_is_forbidden() {
        for host in [
            "169.254.169.254",
            "169.254.169.254.",
            "2852039166",
            "0xa9fea9fe",
            "0xA9FEA9FE",
            "0251.0376.0251.0376",
            "0xa9.0xfe.0xa9.0xfe",
            "169.254.43518",
            "169.16689662",
            "0251.254.169.254",
            "[fd00:ec2::254]",
            "fd00:ec2::254",
            "[FD00:0EC2:0000:0000:0000:0000:0000:0254]",
            "[::ffff:169.254.169.254]",
            "[::ffff:a9fe:a9fe]",
            "[::169.254.169.254]",
            "[64:ff9b::169.254.169.254]",
            "169.254.170.2",
            "169.254.170.23",
            "[fd00:ec2::23]",
            "[fe80::1]",
            "0.0.0.0",
            "0",
        ] {
            assert!(forbidden(host), "{host} must be forbidden");
        }
    }

    #[test]
    fn ordinary_addresses_and_names_are_not_forbidden() {
        for host in [
            "127.0.0.1",
            "10.0.0.1",
            "8.8.8.8",
            "[::1]",
            "2001:db8::1",
            "169.253.1.1",
        ] {
            assert!(!forbidden(host), "{host} must not be forbidden");
        }
        for name in [
            "example.com",
            "api.example.com",
            "169.254.169.254.nip.io",
            "1.2.3.4.5",
        ] {
            assert_eq!(
                parse_host_ip(name),
                None,
                "{name} is a name, not an address"
            );
        }
    }

    #[test]
    fn loose_ipv4_forms_parse_like_inet_aton() {
        assert_eq!(
            parse_host_ip("127.1"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(
            parse_host_ip("0x7f.1"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(
            parse_host_ip("017700000001"),
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(parse_host_ip("256.1.1.1"), None);
        assert_eq!(parse_host_ip("1.2.3.256"), None);
        assert_eq!(parse_host_ip("4294967296"), None);
    }

    #[tokio::test]
    async fn resolution_refuses_metadata_literals_without_any_lookup() {
        assert!(matches!(
            resolve_allowed("0xa9fea9fe", 80).await,
            Err(Refused::DestinationIpProhibited)
        ));
        let ok = resolve_allowed("127.0.0.1", 8080)
            .await
            .expect("loopback allowed");
        assert_eq!(ok, vec!["127.0.0.1:8080".parse().expect("addr")]);
    }

    #[tokio::test]
    async fn in_a_pool_only_literal_rules_reach_internal_addresses_and_never_loopback() {
        // Address literals only: nothing here resolves or connects.
        let hosts: Vec<String> = ["*://*:*", "http://10.0.0.5:8080", "http://127.0.0.1:*"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let pool = OutboundPolicy::from_spec(&hosts).expect("valid").in_pool();
        let local = OutboundPolicy::from_spec(&hosts).expect("valid");
        let uri = |s: &str| s.parse::<http::Uri>().expect("uri");
        let admitted = |policy: &OutboundPolicy, url: &str| {
            let target = Target::of(&uri(url)).expect("target");
            let policy = policy.clone();
            async move { target.admitted_uri(&policy).await.ok() }
        };
        assert_eq!(
            admitted(&pool, "http://10.0.0.5:8080/x").await,
            Some(uri("http://10.0.0.5:8080/x")),
            "listed literally"
        );
        for refused in [
            "http://10.0.0.6:8080/",
            "http://172.16.0.1/",
            "http://100.100.0.1/",
            "http://[fd00::1]/",
            "http://198.18.0.1/",
            "http://127.0.0.1:8080/",
            "http://0x7f000001:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[::1]:8080/",
        ] {
            assert_eq!(admitted(&pool, refused).await, None, "{refused}");
        }
        assert!(admitted(&local, "http://127.0.0.1:8080/").await.is_some());
        assert!(admitted(&local, "http://10.0.0.6:8080/").await.is_some());
        assert_eq!(
            address_class("8.8.8.8".parse().expect("ip")),
            AddressClass::Public
        );
    }

    /// A resolver answering from a table: no DNS, no socket.
    struct Table(&'static [(&'static str, &'static [&'static str])]);

    impl Resolve for Table {
        fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
            let found = self
                .0
                .iter()
                .find(|(name, _)| *name == host)
                .map(|(_, ips)| {
                    ips.iter()
                        .map(|ip| SocketAddr::new(ip.parse().expect("an address"), port))
                        .collect()
                });
            Box::pin(async move {
                found.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such name")
                })
            })
        }
    }

    static NAMES: Table = Table(&[
        ("metadata.test", &["169.254.169.254"]),
        ("metadata6.test", &["fd00:ec2::254"]),
        ("pod-identity.test", &["fd00:ec2::23"]),
        ("mapped.test", &["::ffff:169.254.169.254"]),
        ("nat64.test", &["64:ff9b::a9fe:a9fe"]),
        // One good answer does not launder a bad one: the connector could pick either.
        ("mixed.test", &["203.0.113.7", "169.254.169.254"]),
        ("public.test", &["203.0.113.7", "2001:db8::7"]),
        ("private.test", &["10.0.0.9"]),
        ("empty.test", &[]),
    ]);

    fn target(url: &str) -> Target {
        Target::of(&url.parse().expect("uri"))
            .expect("target")
            .resolved_by(&NAMES)
    }

    #[tokio::test]
    async fn a_name_resolving_to_the_metadata_endpoint_is_refused() {
        for name in [
            "metadata.test",
            "metadata6.test",
            "pod-identity.test",
            "mapped.test",
            "nat64.test",
            "mixed.test",
        ] {
            assert_eq!(
                resolve_allowed_by(&NAMES, name, 80).await,
                Err(Refused::DestinationIpProhibited),
                "{name}"
            );
            let url = format!("http://{name}/latest/meta-data/");
            let all = OutboundPolicy::from_spec(&["*://*:*".to_owned()]).expect("valid");
            assert_eq!(
                target(&url).checked_uri().await,
                Err(Refused::DestinationIpProhibited),
                "{url}"
            );
            assert_eq!(
                target(&url).checked_public_uri(true).await,
                Err(Refused::DestinationIpProhibited),
                "{url}"
            );
            assert_eq!(
                target(&url).admitted_uri(&all).await,
                Err(Refused::DestinationIpProhibited),
                "{url}: allowlisted"
            );
        }
        for gone in ["unknown.test", "empty.test"] {
            assert_eq!(
                resolve_allowed_by(&NAMES, gone, 80).await,
                Err(Refused::DestinationNotFound),
                "{gone}"
            );
        }
    }

    #[tokio::test]
    async fn plain_http_goes_to_the_address_that_was_checked_and_https_keeps_the_name() {
        assert_eq!(
            target("http://public.test:8080/a?b=1").checked_uri().await,
            Ok("http://203.0.113.7:8080/a?b=1".parse().expect("uri"))
        );
        assert_eq!(
            target("https://public.test/a").checked_uri().await,
            Ok("https://public.test/a".parse().expect("uri"))
        );
        assert_eq!(
            target("http://private.test/cb")
                .checked_public_uri(false)
                .await,
            Err(Refused::DestinationIpProhibited),
            "a callback URL may not name an internal address"
        );
        assert!(
            target("http://private.test/cb")
                .checked_public_uri(true)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_system_resolver_answers_localhost_from_the_hosts_file() {
        // /etc/hosts only: no DNS server is asked.
        let ok = resolve_allowed("localhost", 80)
            .await
            .expect("localhost resolves");
        assert!(ok.iter().all(|a| a.ip().is_loopback()));
    }
}
