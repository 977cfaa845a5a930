//! `faas-outbound`: where HTTP leaving the platform may go.
//!
//! - [`address`]: the address rules (never the cloud metadata endpoints, in any spelling and
//!   after DNS; in a pool, no loopback and internal addresses only through a literal rule) and
//!   [`Target`], the checked destination of one request.
//! - [`post`]: the platform's own POSTs (run notifications, async-call callbacks) under those
//!   rules.
//!
//! Guests' `wasi:http` requests go through the same rules in `faas-runtime`'s outbound hooks;
//! this crate has no executor in it, so the controller's scheduler can notify without wasmtime.

pub mod address;
pub mod post;

pub use address::{
    Lookup, Resolve, SystemResolver, Target, address_class, is_forbidden_ip, is_internal_ip,
    is_loopback_ip, parse_host_ip, resolve_allowed, resolve_allowed_by,
};
pub use post::{PostError, post, post_to};

/// Why a destination was refused or could not be resolved. The messages are those guests have
/// always seen for the same refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The name did not resolve to any address.
    #[error("destination not found")]
    DestinationNotFound,
    /// An address the rules never allow (metadata, and in a pool loopback or internal).
    #[error("destination IP address is prohibited")]
    DestinationIpProhibited,
    /// The URI has no host, or the checked one could not be rebuilt.
    #[error("invalid HTTP request URI")]
    UriInvalid,
}
