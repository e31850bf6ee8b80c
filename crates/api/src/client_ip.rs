//! The client's address: the TCP peer, or the address a trusted reverse proxy reports in
//! `X-Forwarded-For`. A header from anyone else is ignored, so a client cannot choose the
//! address that lockout, throttling and the audit trail will see.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The TCP peer of a connection, inserted by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client address a request is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An IP network in CIDR form (`10.1.2.0/24`, `::1/128`, or a bare address): the same
/// type as the policies' network zones.
pub use phivault_policy::Cidr as IpNet;

/// Walks `X-Forwarded-For` from the right while the hop is a trusted proxy; the first
/// untrusted hop is the client. Without a trusted peer, the peer is the client.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidr_matching() {
        let net: IpNet = "10.1.2.0/24".parse().expect("net");
        assert!(net.contains(ip("10.1.2.200")));
        assert!(!net.contains(ip("10.1.3.1")));
        assert!(!net.contains(ip("::1")));
        assert!("::1".parse::<IpNet>().expect("v6").contains(ip("::1")));
        assert!("0.0.0.0/0".parse::<IpNet>().expect("all").contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense".parse::<IpNet>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        // Direct client forging the header: ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), &headers("1.2.3.4"), &trusted), ip("203.0.113.9"));
        // Through a trusted proxy: the proxy's view of the client.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers("198.51.100.7"), &trusted), ip("198.51.100.7"));
        // Client-supplied prefix before the real hop is not believed.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers("1.2.3.4, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        // Chain of trusted proxies.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers("198.51.100.7, 10.0.0.9"), &trusted), ip("198.51.100.7"));
        // Garbage header from a trusted proxy: fall back to the peer.
        assert_eq!(client_ip(ip("10.0.0.5"), &headers("not-an-ip"), &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &HeaderMap::new(), &[]), ip("10.0.0.5"));
    }
}
