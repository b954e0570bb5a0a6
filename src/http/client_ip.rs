//! The client's address, as seen through trusted reverse proxies.
//!
//! Only a peer listed in `trusted_proxies` may speak for the client: its `X-Forwarded-For` (or, when
//! absent, `Forwarded`) is read from the right, skipping trusted hops, and the first untrusted
//! address is the client. Anyone else's forwarding headers are ignored, since a client can write
//! whatever it likes in them.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// Parses one forwarded address: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, quoted.
pub fn parse_forwarded_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The hops a request passed through, left (origin) to right (nearest proxy).
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !xff.is_empty() {
        return Some(
            xff.iter()
                .flat_map(|v| v.split(','))
                .filter(|s| !s.trim().is_empty())
                .map(parse_forwarded_addr)
                .collect(),
        );
    }
    let fwd: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if fwd.is_empty() {
        return None;
    }
    Some(
        fwd.iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_forwarded_addr(v))
                })
            })
            .collect(),
    )
}

/// The client address for a connection from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let Some(chain) = forwarded_chain(headers) else {
        return peer;
    };
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if trusted(*ip, proxies) => nearest = *ip,
            Some(ip) => return *ip,
            // An obfuscated or garbled hop: nothing left of it can be trusted.
            None => return nearest,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.append(
            http::HeaderName::try_from(name).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
        m
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let got = client_ip(
            ip("203.0.113.9"),
            &h("x-forwarded-for", "1.1.1.1"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let got = client_ip(
            ip("10.0.0.2"),
            &h("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(
            got,
            ip("198.51.100.7"),
            "spoofed left-most entry must not win"
        );
    }

    #[test]
    fn forwarded_header_with_ports_and_ipv6() {
        let got = client_ip(
            ip("::ffff:10.0.0.2"),
            &h(
                "forwarded",
                r#"for="[2001:db8::7]:4711";proto=https, for=10.0.0.3"#,
            ),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("2001:db8::7"));
    }

    #[test]
    fn garbled_hop_stops_at_nearest_trusted() {
        let got = client_ip(
            ip("10.0.0.2"),
            &h("x-forwarded-for", "unknown, 10.0.0.9"),
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, ip("10.0.0.9"));
        let none = client_ip(ip("10.0.0.2"), &HeaderMap::new(), &nets(&["10.0.0.0/8"]));
        assert_eq!(none, ip("10.0.0.2"));
    }
}
