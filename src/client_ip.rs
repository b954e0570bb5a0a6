//! The client's address, as seen through trusted reverse proxies.
//!
//! Only a peer listed in `trusted_proxies` may speak for the client, and only through the one header
//! the operator's proxy sets (`client_ip_header`); the other is ignored, since a client can write
//! whatever it likes in it. The chain is read from the right, skipping trusted hops, and the first
//! untrusted address is the client. A chain that cannot be read as a whole makes the client
//! [`Client::Unknown`]: guessing from the readable part would let a client pick its own address.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

/// More hops than any real proxy chain has; a longer one is a client padding it.
pub const MAX_HOPS: usize = 32;

/// The forwarding header the trusted proxies set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, ...` (nginx `$proxy_add_x_forwarded_for`).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1, ...`.
    Forwarded,
}

impl ClientIpHeader {
    pub fn name(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::Forwarded => "forwarded",
        }
    }
}

/// Who sent a request. `Unknown` is never an address, so it cannot pass an allowlist by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Known(IpAddr),
    /// A trusted proxy sent a forwarding header that cannot be read (or there was no peer address).
    Unknown,
}

impl Client {
    pub fn ip(self) -> Option<IpAddr> {
        match self {
            Client::Known(ip) => Some(ip),
            Client::Unknown => None,
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Known(ip) => ip.fmt(f),
            Client::Unknown => f.write_str("unknown"),
        }
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|n| n.contains(&ip))
}

/// Parses one forwarded address: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, quoted.
pub fn parse_forwarded_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = match s.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => s,
    };
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The address in one `Forwarded` element (`for=...;proto=...`): exactly one `for`, every pair
/// well formed. `for=unknown` and obfuscated names are not addresses, so they fail too.
fn forwarded_element(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in element.split(';') {
        let (k, v) = pair.split_once('=')?;
        let k = k.trim();
        if k.is_empty() {
            return None;
        }
        if k.eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None;
            }
            found = Some(parse_forwarded_addr(v)?);
        }
    }
    found
}

/// The hops a request passed through, left (origin) to right (nearest proxy); `Ok(None)` when the
/// header is absent, `Err(())` when any part of it cannot be read.
fn forwarded_chain(headers: &HeaderMap, which: ClientIpHeader) -> Result<Option<Vec<IpAddr>>, ()> {
    let mut values = headers.get_all(which.name()).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let mut chain = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| ())?;
        for element in text.split(',') {
            if chain.len() == MAX_HOPS || element.trim().is_empty() {
                return Err(());
            }
            let hop = match which {
                ClientIpHeader::XForwardedFor => parse_forwarded_addr(element),
                ClientIpHeader::Forwarded => forwarded_element(element),
            };
            chain.push(hop.ok_or(())?);
        }
    }
    Ok(Some(chain))
}

/// The client for a connection from `peer`, reading only `which` and only if `peer` is trusted.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    proxies: &[IpNet],
    which: ClientIpHeader,
) -> Client {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return Client::Known(peer);
    }
    let chain = match forwarded_chain(headers, which) {
        Ok(Some(chain)) => chain,
        Ok(None) => return Client::Known(peer),
        Err(()) => return Client::Unknown,
    };
    let mut nearest = peer;
    for &hop in chain.iter().rev() {
        if !trusted(hop, proxies) {
            return Client::Known(hop);
        }
        nearest = hop;
    }
    Client::Known(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    const XFF: ClientIpHeader = ClientIpHeader::XForwardedFor;
    const FWD: ClientIpHeader = ClientIpHeader::Forwarded;

    fn hs(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (name, v) in pairs {
            m.append(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        m
    }
    fn h(name: &str, v: &str) -> HeaderMap {
        hs(&[(name, v.as_bytes())])
    }
    fn known(s: &str) -> Client {
        Client::Known(s.parse().unwrap())
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
            &hs(&[("x-forwarded-for", b"\xffgarbage")]),
            &nets(&["10.0.0.0/8"]),
            XFF,
        );
        assert_eq!(got, known("203.0.113.9"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let got = client_ip(
            ip("10.0.0.2"),
            &h("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.5"),
            &nets(&["10.0.0.0/8"]),
            XFF,
        );
        assert_eq!(
            got,
            known("198.51.100.7"),
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
            FWD,
        );
        assert_eq!(got, known("2001:db8::7"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let both = hs(&[
            ("x-forwarded-for", b"198.51.100.1"),
            ("forwarded", b"for=192.0.2.10"),
        ]);
        let p = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &both, &p, XFF),
            known("198.51.100.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &both, &p, FWD),
            known("192.0.2.10")
        );
        // The configured header absent: the peer, never the other header.
        let fwd_only = h("forwarded", "for=192.0.2.10");
        assert_eq!(
            client_ip(ip("10.0.0.2"), &fwd_only, &p, XFF),
            known("10.0.0.2")
        );
        let xff_only = h("x-forwarded-for", "192.0.2.10");
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff_only, &p, FWD),
            known("10.0.0.2")
        );
    }

    #[test]
    fn unreadable_chain_from_trusted_peer_is_unknown() {
        let p = nets(&["10.0.0.0/8"]);
        let long = vec!["192.0.2.1"; MAX_HOPS + 1].join(",");
        let cases: &[(&str, &[u8])] = &[
            // The attack: non-ASCII XFF next to a client-written Forwarded.
            ("x-forwarded-for", b"\xff"),
            ("x-forwarded-for", b"unknown, 10.0.0.9"),
            ("x-forwarded-for", b"192.0.2.1,,10.0.0.9"),
            ("x-forwarded-for", b""),
            ("x-forwarded-for", b"192.0.2.1 10.0.0.9"),
            ("x-forwarded-for", long.as_bytes()),
        ];
        for (name, v) in cases {
            let mut m = hs(&[(name, v)]);
            m.append("forwarded", HeaderValue::from_static("for=192.0.2.10"));
            assert_eq!(
                client_ip(ip("10.0.0.2"), &m, &p, XFF),
                Client::Unknown,
                "{v:?}"
            );
        }
        for v in [
            "for=unknown",
            "for=_hidden, for=10.0.0.3",
            "proto=https",
            "for=192.0.2.1;for=192.0.2.2",
            "for=\"192.0.2.1",
            "for=192.0.2.1;junk",
        ] {
            let m = h("forwarded", v);
            assert_eq!(
                client_ip(ip("10.0.0.2"), &m, &p, FWD),
                Client::Unknown,
                "{v}"
            );
        }
        // Exactly the cap is still read.
        let max = vec!["192.0.2.1"; MAX_HOPS].join(",");
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h("x-forwarded-for", &max), &p, XFF),
            known("192.0.2.1")
        );
    }

    #[test]
    fn all_trusted_chain_gives_the_leftmost_and_no_header_the_peer() {
        let p = nets(&["10.0.0.0/8"]);
        let got = client_ip(
            ip("10.0.0.2"),
            &h("x-forwarded-for", "10.0.0.7, 10.0.0.9"),
            &p,
            XFF,
        );
        assert_eq!(got, known("10.0.0.7"));
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &p, XFF),
            known("10.0.0.2")
        );
        assert_eq!(Client::Unknown.to_string(), "unknown");
    }
}
