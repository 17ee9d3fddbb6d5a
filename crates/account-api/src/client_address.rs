//! The caller's address, for audit rows and logs: the TCP peer, unless the peer is a trusted
//! proxy, in which case the right-most address of `X-Forwarded-For` that is not itself a
//! trusted proxy. A client can put anything in `X-Forwarded-For`, so the header is believed
//! only as far as the proxies we trust wrote it: each proxy appends the address it saw, and the
//! right-most untrusted one is the last hop no trusted proxy can vouch past.
//!
//! [`serve`](crate::serve) records the peer; a host serving [`router`](crate::router) itself
//! does so with axum's `into_make_service_with_connect_info::<SocketAddr>()`, or its audit rows
//! carry no address.

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The proxies whose `X-Forwarded-For` is believed: IP addresses and CIDR ranges
/// (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`). Empty by default: the peer is the client.
///
/// ```
/// use account_api::TrustedProxies;
///
/// let proxies: TrustedProxies = "10.0.0.0/8, 192.0.2.7".parse()?;
/// assert!(proxies.contains("10.1.2.3".parse()?));
/// assert!(!proxies.contains("192.0.2.8".parse()?));
/// assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// An entry of a trusted-proxy list that is neither an IP address nor a CIDR range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR range (e.g. 10.0.0.0/8 or 192.0.2.7)")]
pub struct TrustedProxyError(String);

impl TrustedProxies {
    /// Whether `address` is one of the trusted proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxyError;

    /// A comma-separated list; blank entries are skipped.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| TrustedProxyError(entry.chars().take(64).collect()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// An IPv4 peer reached over an IPv6 socket (`::ffff:10.0.0.1`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The client's address for the request in `parts`: `None` when the server did not record the
/// TCP peer (a host serving the router without `ConnectInfo`), since a header alone proves
/// nothing.
pub(crate) fn client_address(parts: &Parts, trusted: &TrustedProxies) -> Option<IpAddr> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    let peer = canonical(peer.ip());
    if !trusted.contains(peer) {
        return Some(peer);
    }
    // Every `X-Forwarded-For` header, in order, as one list; right to left, the first hop that
    // is not a trusted proxy. An unparsable hop stops the walk: nothing left of it is vouched for.
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = address;
        if !trusted.contains(address) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn from(peer: &str, forwarded: &[&str], trusted: &str) -> Option<IpAddr> {
        let mut request = Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        client_address(&parts, &trusted.parse().unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        assert_eq!(from("127.0.0.1:1", &["203.0.113.9"], ""), ip("127.0.0.1"));
        assert_eq!(
            from("127.0.0.1:1", &["203.0.113.9"], "10.0.0.0/8"),
            ip("127.0.0.1")
        );
        assert_eq!(
            from("10.0.0.2:1", &["203.0.113.9"], "10.0.0.0/8"),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = "10.0.0.0/8";
        // The client wrote the first entry itself; the proxies appended the rest.
        let spoofed = ["1.1.1.1, 198.51.100.4, 10.0.0.9"];
        assert_eq!(from("10.0.0.2:1", &spoofed, trusted), ip("198.51.100.4"));
        let split = ["1.1.1.1", "198.51.100.4", "10.0.0.9"];
        assert_eq!(from("10.0.0.2:1", &split, trusted), ip("198.51.100.4"));
        // All hops trusted: the left-most is as far as the chain goes.
        assert_eq!(from("10.0.0.2:1", &["10.0.0.7"], trusted), ip("10.0.0.7"));
        // No header, or garbage right of the proxies: the last address vouched for.
        assert_eq!(from("10.0.0.2:1", &[], trusted), ip("10.0.0.2"));
        assert_eq!(
            from("10.0.0.2:1", &["1.1.1.1, junk"], trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            from("[::ffff:10.0.0.2]:1", &["192.0.2.1"], trusted),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn no_recorded_peer_means_no_address() {
        let (parts, ()) = Request::builder()
            .header("x-forwarded-for", "203.0.113.9")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(client_address(&parts, &TrustedProxies::default()), None);
    }
}
