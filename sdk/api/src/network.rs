//! Outbound host rules (`spec.network.allowedOutboundHosts`): parsing and matching.
//!
//! Pure string logic. The runtime resolves names and checks the resolved addresses separately
//! (private ranges, the instance metadata endpoint); this module only answers "does the policy
//! name this scheme, host and port".
//!
//! Rule syntax: `scheme://host[:port]`
//! - scheme: `http`, `https` or `*`;
//! - host: a DNS name, `*` (any host), `*.domain` (any subdomain of `domain`, at any depth, but
//!   not `domain` itself), an IPv4 literal, or a bracketed IPv6 literal `[2001:db8::1]`;
//! - port: a number or `*`. Absent, it is the scheme's default port (80 for `http`, 443 for
//!   `https`; 80 or 443 for `*`).
//!
//! Paths, query strings, fragments and user info are refused; a single trailing `/` is tolerated.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::validate::{ValidationErrors, is_dns_name};

/// The scheme part of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemePattern {
    Http,
    Https,
    /// `*`: any scheme.
    Any,
}

impl SchemePattern {
    fn matches(self, scheme: &str) -> bool {
        match self {
            SchemePattern::Http => scheme.eq_ignore_ascii_case("http"),
            SchemePattern::Https => scheme.eq_ignore_ascii_case("https"),
            SchemePattern::Any => true,
        }
    }
}

impl fmt::Display for SchemePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemePattern::Http => "http",
            SchemePattern::Https => "https",
            SchemePattern::Any => "*",
        })
    }
}

/// The host part of a rule. Names are stored lowercase, without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: any host, names and addresses alike.
    Any,
    /// Exactly this DNS name.
    Name(String),
    /// `*.domain`: any name ending in `.domain` (the string held is `domain`).
    Subdomains(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl HostPattern {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Name(n), Host::Name(h)) => n == h,
            (HostPattern::Subdomains(d), Host::Name(h)) => h
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            (HostPattern::Ipv4(a), Host::Ip(IpAddr::V4(b))) => a == b,
            (HostPattern::Ipv4(a), Host::Ip(IpAddr::V6(b))) => b.to_ipv4_mapped() == Some(*a),
            (HostPattern::Ipv6(a), Host::Ip(IpAddr::V6(b))) => a == b,
            _ => false,
        }
    }
}

impl HostPattern {
    /// An exact IP address or DNS name, not a wildcard.
    fn is_literal(&self) -> bool {
        matches!(
            self,
            HostPattern::Name(_) | HostPattern::Ipv4(_) | HostPattern::Ipv6(_)
        )
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Subdomains(d) => write!(f, "*.{d}"),
            HostPattern::Ipv4(a) => write!(f, "{a}"),
            HostPattern::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// The port part of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortPattern {
    /// `*`: any port.
    Any,
    /// Exactly this port (written, or the default of an `http`/`https` rule).
    Port(u16),
    /// No port written in a `*://` rule: 80 or 443.
    WebDefaults,
}

impl PortPattern {
    fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Port(p) => p == port,
            PortPattern::WebDefaults => port == 80 || port == 443,
        }
    }
}

/// One parsed `scheme://host[:port]` rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostRule {
    pub scheme: SchemePattern,
    pub host: HostPattern,
    pub port: PortPattern,
}

impl HostRule {
    /// Whether this rule allows a connection. `host` may be a name (any case, trailing dot
    /// ignored), an IPv4 literal, or an IPv6 literal with or without brackets.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let Some(host) = Host::parse(host) else {
            return false;
        };
        self.scheme.matches(scheme) && self.port.matches(port) && self.host.matches(&host)
    }
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match (self.scheme, self.port) {
            (_, PortPattern::Any) => f.write_str(":*"),
            (SchemePattern::Http, PortPattern::Port(80))
            | (SchemePattern::Https, PortPattern::Port(443))
            | (_, PortPattern::WebDefaults) => Ok(()),
            (_, PortPattern::Port(p)) => write!(f, ":{p}"),
        }
    }
}

impl std::str::FromStr for HostRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A host a connection goes to, normalised for comparison.
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    fn parse(host: &str) -> Option<Host> {
        let h = host.strip_suffix('.').unwrap_or(host);
        if h.is_empty() {
            return None;
        }
        if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse::<Ipv6Addr>()
                .ok()
                .map(|a| Host::Ip(IpAddr::V6(a)));
        }
        if let Ok(ip) = h.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        Some(Host::Name(h.to_ascii_lowercase()))
    }
}

/// Parses one `scheme://host[:port]` rule. The error names the rule and what is wrong.
pub fn parse(s: &str) -> Result<HostRule, String> {
    let err = |why: String| format!("{s:?}: {why}");
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(err(
            "expected scheme://host[:port] with scheme http, https or *".into(),
        ));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => SchemePattern::Http,
        "https" => SchemePattern::Https,
        "*" => SchemePattern::Any,
        other => {
            return Err(err(format!(
                "unsupported scheme {other:?} (expected http, https or *)"
            )));
        }
    };
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("must not contain whitespace".into()));
    }
    if rest.contains('?') {
        return Err(err(
            "query strings are not allowed, only scheme://host[:port]".into(),
        ));
    }
    if rest.contains('#') {
        return Err(err(
            "fragments are not allowed, only scheme://host[:port]".into()
        ));
    }
    let authority = match rest.find('/') {
        Some(i) if &rest[i..] == "/" => &rest[..i],
        Some(i) => {
            return Err(err(format!(
                "paths are not allowed, only scheme://host[:port] (got path {:?})",
                &rest[i..]
            )));
        }
        None => rest,
    };
    if authority.contains('@') {
        return Err(err(
            "user info is not allowed, only scheme://host[:port]".into()
        ));
    }
    if authority.is_empty() {
        return Err(err("missing host".into()));
    }

    // Split host and port, minding IPv6 brackets.
    let (host_text, port_text) = if let Some(after) = authority.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return Err(err("unclosed '[' in IPv6 address".into()));
        };
        let inner = &after[..close];
        let tail = &after[close + 1..];
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(err(format!("unexpected {t:?} after IPv6 address"))),
            },
        };
        let ip = inner
            .parse::<Ipv6Addr>()
            .map_err(|_| err(format!("invalid IPv6 address {inner:?}")))?;
        (HostText::V6(ip), port)
    } else {
        if authority.matches(':').count() > 1 {
            return Err(err(
                "IPv6 addresses must be written in brackets, e.g. http://[2001:db8::1]:8080".into(),
            ));
        }
        match authority.split_once(':') {
            Some((h, p)) => (HostText::Other(h), Some(p)),
            None => (HostText::Other(authority), None),
        }
    };

    let host = match host_text {
        HostText::V6(ip) => HostPattern::Ipv6(ip),
        HostText::Other(h) => parse_host(h).map_err(err)?,
    };

    let port = match port_text {
        None => match scheme {
            SchemePattern::Http => PortPattern::Port(80),
            SchemePattern::Https => PortPattern::Port(443),
            SchemePattern::Any => PortPattern::WebDefaults,
        },
        Some("*") => PortPattern::Any,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => PortPattern::Port(n),
            _ => {
                return Err(err(format!("invalid port {p:?} (expected 1-65535 or *)")));
            }
        },
    };
    Ok(HostRule { scheme, host, port })
}

enum HostText<'a> {
    V6(Ipv6Addr),
    Other(&'a str),
}

fn parse_host(h: &str) -> Result<HostPattern, String> {
    if h == "*" {
        return Ok(HostPattern::Any);
    }
    if h.is_empty() {
        return Err("missing host".into());
    }
    let name = h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase();
    if let Some(domain) = name.strip_prefix("*.") {
        if domain.contains('*') {
            return Err(format!(
                "invalid host {h:?}: a wildcard is only allowed as a leading \"*.\""
            ));
        }
        if !is_dns_name(domain) {
            return Err(format!("invalid host {h:?}: {domain:?} is not a DNS name"));
        }
        return Ok(HostPattern::Subdomains(domain.to_string()));
    }
    if name.contains('*') {
        return Err(format!(
            "invalid host {h:?}: a wildcard is only allowed as a leading \"*.\" or as the whole host"
        ));
    }
    // Anything that looks numeric must be a valid IPv4 address, not a DNS name.
    let last_label = name.rsplit('.').next().unwrap_or_default();
    if !last_label.is_empty() && last_label.bytes().all(|b| b.is_ascii_digit()) {
        return name
            .parse::<Ipv4Addr>()
            .map(HostPattern::Ipv4)
            .map_err(|_| format!("invalid IPv4 address {h:?}"));
    }
    if !is_dns_name(&name) {
        return Err(format!(
            "invalid host {h:?} (expected a DNS name, *, *.domain, an IPv4 address or [IPv6])"
        ));
    }
    Ok(HostPattern::Name(name))
}

/// What kind of address a connection resolved to, as the runtime classified it (it owns the
/// address rules: every spelling, IPv4 embedded in IPv6, the metadata ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    /// Anything else: the internet.
    Public,
    /// The platform's own networks: private ranges (RFC 1918, CGNAT, ULA), link-local, the
    /// pod and service CIDRs, unspecified and reserved ranges.
    Internal,
    /// 127.0.0.0/8, ::1: the host (or, in a pod, the pod) itself.
    Loopback,
}

/// The outbound policy of one function: connections allowed by at least one rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    rules: Vec<HostRule>,
    /// Set for functions that share a runtime pool pod with other tenants: internal
    /// addresses need a literal rule, loopback is never reachable (see [`OutboundPolicy::admits`]).
    in_pool: bool,
    /// The cluster's own ranges that are not private by their address (pod or service
    /// CIDRs of a VPC with public addresses): internal too, in a pool.
    internal: Vec<Cidr>,
}

/// An address range, `10.0.0.0/8` or `fd00::/8` (a bare address is its own /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: expected an address range like 10.0.0.0/8 or fd00::/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("{s:?}: prefix length must be 0-{max}")),
            },
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl OutboundPolicy {
    /// Parses `spec.network.allowedOutboundHosts`. Every bad entry is reported, at
    /// `spec.network.allowedOutboundHosts[i]`.
    pub fn from_spec(hosts: &[String]) -> Result<OutboundPolicy, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut rules = Vec::with_capacity(hosts.len());
        for (i, h) in hosts.iter().enumerate() {
            match parse(h) {
                Ok(r) => rules.push(r),
                Err(m) => errs.push(format!("spec.network.allowedOutboundHosts[{i}]"), m),
            }
        }
        errs.into_result().map(|()| OutboundPolicy {
            rules,
            in_pool: false,
            internal: Vec::new(),
        })
    }

    /// No outbound connection at all (a function without `spec.network`).
    pub fn deny_all() -> OutboundPolicy {
        OutboundPolicy::default()
    }

    /// This policy for a function running in a shared runtime pool pod.
    pub fn in_pool(mut self) -> OutboundPolicy {
        self.in_pool = true;
        self
    }

    /// [`OutboundPolicy::in_pool`], with the cluster's own ranges (pod and service CIDRs)
    /// that are not private by their address.
    pub fn in_pool_with(mut self, internal: &[Cidr]) -> OutboundPolicy {
        self.in_pool = true;
        self.internal = internal.to_vec();
        self
    }

    /// Whether this policy is for a function in a shared runtime pool pod.
    pub fn is_in_pool(&self) -> bool {
        self.in_pool
    }

    /// Whether a connection that [`OutboundPolicy::allows`] may go to `ip`, of `class`, that
    /// `host` resolved to (or is).
    ///
    /// Outside pools every allowed host may reach what it resolves to (local mode calls local
    /// services). In a pool, the pod's network is shared by every tenant and holds the
    /// platform's own listeners, so:
    /// - loopback is never reachable, whatever the rules say: it is the pool pod itself (its
    ///   management API answers loopback clients);
    /// - an internal address (private ranges, the pod and service CIDRs) is reachable only
    ///   through a rule naming that host literally (an exact IP address or an exact DNS
    ///   name, any port pattern): `*` and `*.domain` open the internet, never the cluster.
    pub fn admits(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        ip: IpAddr,
        class: AddressClass,
    ) -> bool {
        if !self.in_pool {
            return true;
        }
        let class = match class {
            AddressClass::Public if self.internal.iter().any(|c| c.contains(ip)) => {
                AddressClass::Internal
            }
            class => class,
        };
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback => false,
            AddressClass::Internal => {
                let Some(h) = Host::parse(host) else {
                    return false;
                };
                self.rules.iter().any(|r| {
                    r.host.is_literal()
                        && r.scheme.matches(scheme)
                        && r.port.matches(port)
                        && r.host.matches(&h)
                })
            }
        }
    }

    /// Whether a connection to `scheme://host:port` is allowed. `host` compares case-insensitively,
    /// ignoring a trailing dot; IPv6 literals (bracketed or not) compare as addresses.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let Some(h) = Host::parse(host) else {
            return false;
        };
        self.rules
            .iter()
            .any(|r| r.scheme.matches(scheme) && r.port.matches(port) && r.host.matches(&h))
    }

    /// The parsed rules, in spec order.
    pub fn rules(&self) -> &[HostRule] {
        &self.rules
    }

    /// True when nothing is allowed.
    pub fn is_deny_all(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Where a NetworkPolicy egress rule lets a container function's pods connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EgressPeer {
    /// Any address but the instance metadata ranges ([`METADATA_V4`], [`METADATA_V6`]).
    Anywhere,
    /// Exactly this address (a `/32` or `/128` block).
    Address(IpAddr),
}

/// The ports of one egress rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EgressPorts {
    /// Every port and protocol.
    Any,
    /// These TCP ports.
    Tcp(Vec<u16>),
}

/// One `allowedOutboundHosts` entry as a NetworkPolicy can enforce it: at layer 4, so the
/// scheme is not (an `http://` rule opens its TCP port to whatever protocol).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EgressRule {
    pub to: EgressPeer,
    pub ports: EgressPorts,
}

/// The instance metadata range of IPv4 (all of link-local: IMDS, the ECS and EKS Pod Identity
/// credential endpoints live there).
pub const METADATA_V4: &str = "169.254.0.0/16";
/// The instance metadata range of IPv6 (Nitro instances' `fd00:ec2::254` and friends).
pub const METADATA_V6: &str = "fd00:ec2::/32";

/// Whether `ip` is in [`METADATA_V4`] or [`METADATA_V6`] (IPv4-mapped addresses included).
pub fn is_metadata_range(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => v6.segments()[..2] == [0xfd00, 0x0ec2],
        },
    }
}

/// `spec.network.allowedOutboundHosts` of a container function as NetworkPolicy egress
/// rules, or why it cannot be one. A NetworkPolicy matches addresses and ports, never names:
/// a host name or `*.domain` is refused (it would otherwise be silently ignored), and so is an
/// address in the instance metadata ranges (the runtime denies them whatever the list says;
/// a NetworkPolicy allowing them would not). Every bad entry is reported at
/// `spec.network.allowedOutboundHosts[i]`.
pub fn egress_rules_for_networkpolicy(
    hosts: &[String],
) -> Result<Vec<EgressRule>, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let mut rules = Vec::with_capacity(hosts.len());
    for (i, h) in hosts.iter().enumerate() {
        let path = format!("spec.network.allowedOutboundHosts[{i}]");
        let rule = match parse(h) {
            Ok(r) => r,
            Err(m) => {
                errs.push(path, m);
                continue;
            }
        };
        let to = match rule.host {
            HostPattern::Any => EgressPeer::Anywhere,
            HostPattern::Ipv4(a) => EgressPeer::Address(IpAddr::V4(a)),
            HostPattern::Ipv6(a) => EgressPeer::Address(IpAddr::V6(a)),
            HostPattern::Name(_) | HostPattern::Subdomains(_) => {
                errs.push(
                    path,
                    format!(
                        "{h:?} names a host, and a container function's outbound traffic is \
                         enforced in a cluster by a NetworkPolicy, which matches addresses, \
                         not names: write the address (e.g. \"https://203.0.113.7\") or allow \
                         a port on any host (e.g. \"*://*:443\")"
                    ),
                );
                continue;
            }
        };
        if let EgressPeer::Address(ip) = to
            && is_metadata_range(ip)
        {
            errs.push(
                path,
                format!(
                    "{h:?} is in the instance metadata range ({METADATA_V4}, {METADATA_V6}), \
                     which function pods never reach"
                ),
            );
            continue;
        }
        let ports = match rule.port {
            PortPattern::Any => EgressPorts::Any,
            PortPattern::Port(p) => EgressPorts::Tcp(vec![p]),
            PortPattern::WebDefaults => EgressPorts::Tcp(vec![80, 443]),
        };
        rules.push(EgressRule { to, ports });
    }
    errs.into_result().map(|()| rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> OutboundPolicy {
        let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
        OutboundPolicy::from_spec(&hosts).expect("valid policy")
    }

    #[test]
    fn parses_rules() {
        let cases: &[(&str, SchemePattern, HostPattern, PortPattern)] = &[
            (
                "https://api.example.com",
                SchemePattern::Https,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Port(443),
            ),
            (
                "http://api.example.com",
                SchemePattern::Http,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Port(80),
            ),
            (
                "HTTPS://API.Example.COM.:8443",
                SchemePattern::Https,
                HostPattern::Name("api.example.com".into()),
                PortPattern::Port(8443),
            ),
            (
                "*://*.example.com:*",
                SchemePattern::Any,
                HostPattern::Subdomains("example.com".into()),
                PortPattern::Any,
            ),
            (
                "*://*",
                SchemePattern::Any,
                HostPattern::Any,
                PortPattern::WebDefaults,
            ),
            (
                "http://10.0.0.1:8080",
                SchemePattern::Http,
                HostPattern::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
                PortPattern::Port(8080),
            ),
            (
                "https://[2001:DB8:0:0::1]",
                SchemePattern::Https,
                HostPattern::Ipv6("2001:db8::1".parse().expect("ip")),
                PortPattern::Port(443),
            ),
            (
                "http://[::1]:*",
                SchemePattern::Http,
                HostPattern::Ipv6(Ipv6Addr::LOCALHOST),
                PortPattern::Any,
            ),
            (
                "https://localhost/",
                SchemePattern::Https,
                HostPattern::Name("localhost".into()),
                PortPattern::Port(443),
            ),
        ];
        for (s, scheme, host, port) in cases {
            let r = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                r,
                HostRule {
                    scheme: *scheme,
                    host: host.clone(),
                    port: *port
                },
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_bad_rules() {
        let cases = [
            ("api.example.com", "expected scheme://host[:port]"),
            ("ftp://example.com", "unsupported scheme \"ftp\""),
            ("https://api.example.com/v1", "paths are not allowed"),
            ("https://api.example.com/v1/", "paths are not allowed"),
            (
                "https://api.example.com?x=1",
                "query strings are not allowed",
            ),
            ("https://api.example.com/#x", "fragments are not allowed"),
            (
                "https://user:pw@api.example.com",
                "user info is not allowed",
            ),
            ("https://user@api.example.com", "user info is not allowed"),
            ("https://", "missing host"),
            ("https://:443", "missing host"),
            ("https://api.example.com:0", "invalid port \"0\""),
            ("https://api.example.com:65536", "invalid port"),
            ("https://api.example.com:+1", "invalid port"),
            ("https://api.example.com:", "invalid port \"\""),
            ("https://api.example.com:http", "invalid port"),
            ("https://api.*.com", "wildcard"),
            ("https://*api.example.com", "wildcard"),
            ("https://*.*.example.com", "wildcard"),
            ("https://*.", "invalid host"),
            ("https://exa mple.com", "whitespace"),
            ("https://exa_mple.com", "invalid host"),
            ("https://-example.com", "invalid host"),
            ("https://example..com", "invalid host"),
            ("https://1.2.3.256", "invalid IPv4 address"),
            ("https://1.2.3", "invalid IPv4 address"),
            ("https://::1", "must be written in brackets"),
            ("https://[::1", "unclosed"),
            ("https://[::g]", "invalid IPv6 address"),
            ("https://[fe80::1%eth0]", "invalid IPv6 address"),
            ("https://[::1]x", "unexpected \"x\""),
            ("https://[::1]:0", "invalid port"),
        ];
        for (s, want) in cases {
            let e = parse(s).expect_err(s);
            assert!(e.starts_with(&format!("{s:?}: ")), "{e}");
            assert!(e.contains(want), "{s}: {e:?} should contain {want:?}");
        }
    }

    #[test]
    fn exact_host_and_default_port() {
        let p = policy(&["https://api.example.com"]);
        assert!(p.allows("https", "api.example.com", 443));
        assert!(p.allows("HTTPS", "API.EXAMPLE.COM", 443));
        assert!(p.allows("https", "api.example.com.", 443));
        assert!(!p.allows("http", "api.example.com", 443));
        assert!(!p.allows("https", "api.example.com", 80));
        assert!(!p.allows("https", "api.example.com", 8443));
        assert!(!p.allows("https", "x.api.example.com", 443));
        assert!(!p.allows("https", "example.com", 443));
        assert!(!p.allows("https", "api.example.com.evil.com", 443));
        assert!(!p.allows("https", "", 443));
        assert!(!p.allows("https", ".", 443));
    }

    #[test]
    fn wildcards() {
        let p = policy(&["https://*.example.com"]);
        assert!(p.allows("https", "a.example.com", 443));
        assert!(p.allows("https", "a.b.c.example.com", 443));
        assert!(p.allows("https", "A.Example.Com.", 443));
        assert!(!p.allows("https", "example.com", 443));
        assert!(!p.allows("https", "notexample.com", 443));
        assert!(!p.allows("https", ".example.com", 443));
        assert!(!p.allows("https", "example.com.evil.org", 443));
        assert!(!p.allows("http", "a.example.com", 80));

        let any = policy(&["*://*:*"]);
        assert!(any.allows("http", "anything.test", 1));
        assert!(any.allows("https", "10.1.2.3", 65535));
        assert!(any.allows("https", "[::1]", 443));

        let web = policy(&["*://*"]);
        assert!(web.allows("http", "x.test", 80));
        assert!(web.allows("https", "x.test", 443));
        assert!(web.allows("http", "x.test", 443));
        assert!(!web.allows("http", "x.test", 8080));

        let any_port = policy(&["http://svc.local:*"]);
        assert!(any_port.allows("http", "svc.local", 1234));
        assert!(!any_port.allows("https", "svc.local", 1234));
    }

    #[test]
    fn explicit_port_and_scheme_wildcard() {
        let p = policy(&["*://cache.internal:6379", "http://api.test:8080"]);
        assert!(p.allows("http", "cache.internal", 6379));
        assert!(p.allows("https", "cache.internal", 6379));
        assert!(!p.allows("http", "cache.internal", 80));
        assert!(p.allows("http", "api.test", 8080));
        assert!(!p.allows("http", "api.test", 80));
    }

    #[test]
    fn ip_literals() {
        let p = policy(&["http://10.0.0.1:8080", "https://[2001:db8::1]"]);
        assert!(p.allows("http", "10.0.0.1", 8080));
        assert!(!p.allows("http", "10.0.0.2", 8080));
        assert!(!p.allows("http", "10.0.0.1", 80));
        assert!(p.allows("http", "::ffff:10.0.0.1", 8080));
        assert!(p.allows("http", "[::ffff:10.0.0.1]", 8080));
        assert!(p.allows("https", "2001:db8::1", 443));
        assert!(p.allows("https", "[2001:0DB8:0000:0000:0000:0000:0000:0001]", 443));
        assert!(p.allows("https", "2001:db8:0::0:1", 443));
        assert!(!p.allows("https", "2001:db8::2", 443));
        assert!(!p.allows("https", "[2001:db8::1", 443));

        // Names do not match address rules and vice versa; wildcards do not match addresses.
        let names = policy(&["https://*.0.0.1", "https://localhost"]);
        assert!(!names.allows("https", "127.0.0.1", 443));
        assert!(!names.allows("https", "::1", 443));
        let sub = policy(&["https://*.example.com"]);
        assert!(!sub.allows("https", "10.0.0.1", 443));
    }

    #[test]
    fn deny_all_and_errors() {
        let d = OutboundPolicy::deny_all();
        assert!(d.is_deny_all());
        assert!(!d.allows("https", "example.com", 443));
        assert_eq!(d, OutboundPolicy::default());
        assert!(policy(&[]).is_deny_all());

        let hosts: Vec<String> = ["https://ok.test", "ok.test", "https://x.test/p"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = OutboundPolicy::from_spec(&hosts).expect_err("invalid");
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.network.allowedOutboundHosts[1]",
                "spec.network.allowedOutboundHosts[2]"
            ]
        );
    }

    #[test]
    fn pools_reach_internal_addresses_only_through_literal_rules_and_never_loopback() {
        let hosts = [
            "*://*:*",
            "http://10.0.0.5:*",
            "http://orders.shop.svc.cluster.local",
            "https://*.internal.example",
            "http://127.0.0.1:*",
            "http://[::1]:*",
        ];
        // The address a host stands for: itself when it is one, else an internal one.
        let admits = |p: &OutboundPolicy, scheme: &str, host: &str, port: u16, class| {
            let ip = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 100, 0, 10)));
            p.admits(scheme, host, port, ip, class)
        };
        let local = policy(&hosts);
        let pool = policy(&hosts).in_pool();
        assert!(pool.is_in_pool() && !local.is_in_pool());
        for class in [
            AddressClass::Public,
            AddressClass::Internal,
            AddressClass::Loopback,
        ] {
            assert!(admits(&local, "http", "10.9.9.9", 80, class), "{class:?}");
        }
        // Wildcards reach the internet from a pool, never internal addresses.
        assert!(admits(
            &pool,
            "https",
            "api.example.com",
            443,
            AddressClass::Public
        ));
        assert!(!admits(
            &pool,
            "http",
            "10.9.9.9",
            80,
            AddressClass::Internal
        ));
        assert!(!admits(
            &pool,
            "https",
            "db.internal.example",
            443,
            AddressClass::Internal
        ));
        // A literal address or name opens exactly that host, on the rule's ports.
        assert!(admits(
            &pool,
            "http",
            "10.0.0.5",
            8080,
            AddressClass::Internal
        ));
        assert!(admits(
            &pool,
            "http",
            "[::ffff:10.0.0.5]",
            8080,
            AddressClass::Internal
        ));
        assert!(!admits(
            &pool,
            "http",
            "10.0.0.6",
            8080,
            AddressClass::Internal
        ));
        assert!(admits(
            &pool,
            "http",
            "orders.shop.svc.cluster.local",
            80,
            AddressClass::Internal
        ));
        assert!(!admits(
            &pool,
            "http",
            "orders.shop.svc.cluster.local",
            8080,
            AddressClass::Internal
        ));
        // Loopback: never, even listed literally.
        for host in ["127.0.0.1", "[::1]", "localhost"] {
            assert!(
                !admits(&pool, "http", host, 80, AddressClass::Loopback),
                "{host}"
            );
        }
        // The cluster's own public-looking ranges count as internal in a pool.
        let vpc: Vec<Cidr> = ["203.0.113.0/24", "2001:db8::/32"]
            .iter()
            .map(|c| c.parse().expect("a range"))
            .collect();
        let pool = policy(&["*://*:*"]).in_pool_with(&vpc);
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        let public = AddressClass::Public;
        assert!(!pool.admits("http", "x.test", 80, ip("203.0.113.7"), public));
        assert!(!pool.admits("http", "x.test", 80, ip("::ffff:203.0.113.7"), public));
        assert!(!pool.admits("http", "x.test", 80, ip("2001:db8::1"), public));
        assert!(pool.admits("http", "x.test", 80, ip("203.0.114.1"), public));
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.100.0.0/16".parse().expect("valid");
        assert!(c.contains("10.100.255.1".parse().expect("ip")));
        assert!(!c.contains("10.101.0.1".parse().expect("ip")));
        assert_eq!(c.to_string(), "10.100.0.0/16");
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains("8.8.8.8".parse().expect("ip")));
        assert!(!all.contains("::1".parse().expect("ip")));
        let one: Cidr = "fd00::1".parse().expect("valid");
        assert!(one.contains("fd00::1".parse().expect("ip")));
        assert!(!one.contains("fd00::2".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "x/8", "10.0.0.0/+8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "https://api.example.com",
            "http://api.example.com:8080",
            "*://*.example.com:*",
            "*://*",
            "http://10.0.0.1",
            "https://[2001:db8::1]:8443",
            "https://x.test:80",
        ] {
            let r = parse(s).expect("valid");
            assert_eq!(r.to_string(), s);
            assert_eq!(parse(&r.to_string()), Ok(r.clone()));
            assert_eq!(s.parse::<HostRule>(), Ok(r));
        }
    }

    #[test]
    fn addresses_and_ports_become_egress_rules() {
        let hosts: Vec<String> = [
            "https://203.0.113.7",
            "*://[2001:db8::1]:5432",
            "*://*:443",
            "http://198.51.100.2:*",
            "*://192.0.2.1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let rules = egress_rules_for_networkpolicy(&hosts).expect("all expressible");
        let ip = |s: &str| EgressPeer::Address(s.parse().expect("an address"));
        assert_eq!(
            rules,
            [
                EgressRule {
                    to: ip("203.0.113.7"),
                    ports: EgressPorts::Tcp(vec![443])
                },
                EgressRule {
                    to: ip("2001:db8::1"),
                    ports: EgressPorts::Tcp(vec![5432])
                },
                EgressRule {
                    to: EgressPeer::Anywhere,
                    ports: EgressPorts::Tcp(vec![443])
                },
                EgressRule {
                    to: ip("198.51.100.2"),
                    ports: EgressPorts::Any
                },
                EgressRule {
                    to: ip("192.0.2.1"),
                    ports: EgressPorts::Tcp(vec![80, 443])
                },
            ]
        );
    }

    #[test]
    fn host_names_and_metadata_addresses_are_refused_at_their_index() {
        let hosts: Vec<String> = [
            "https://203.0.113.7",
            "https://api.example.com",
            "https://*.example.com",
            "http://169.254.169.254",
            "*://[fd00:ec2::254]:80",
            "*://[::ffff:169.254.170.2]:80",
            "ftp://x",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let errs = egress_rules_for_networkpolicy(&hosts).expect_err("refused");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.network.allowedOutboundHosts[1]",
                "spec.network.allowedOutboundHosts[2]",
                "spec.network.allowedOutboundHosts[3]",
                "spec.network.allowedOutboundHosts[4]",
                "spec.network.allowedOutboundHosts[5]",
                "spec.network.allowedOutboundHosts[6]",
            ]
        );
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(messages[0].contains("not names"), "{}", messages[0]);
        assert!(messages[0].contains("api.example.com"), "{}", messages[0]);
        assert!(messages[2].contains("instance metadata"), "{}", messages[2]);
    }
}
