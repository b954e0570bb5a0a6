//! `client_ip::client_ip` with any `X-Forwarded-For` / `Forwarded` values, under either
//! `client_ip_header`, and `parse_forwarded_addr` on each. Input:
//!
//! ```text
//! <peer address>\n
//! <trusted proxies, comma-separated CIDRs or addresses>\n
//! x-forwarded-for: <value>\n   or   forwarded: <value>\n   (any number, any bytes)
//! ```
//!
//! An unparsable peer is 10.0.0.2, unparsable proxies are skipped, and with none at all the proxies
//! are 10.0.0.0/8, 127.0.0.0/8 and ::1, so most inputs reach the header parsing.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;
use webhook_listener::config::parse_cidrs;
use webhook_listener::client_ip::{
    client_ip, parse_forwarded_addr, Client, ClientIpHeader, MAX_HOPS,
};

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let peer: IpAddr = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| "10.0.0.2".parse().unwrap());
    let mut proxies: Vec<IpNet> = lines
        .next()
        .map(String::from_utf8_lossy)
        .map(|s| {
            s.split(',')
                .filter_map(|p| parse_cidrs(&[p.trim().to_string()]).ok())
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    if proxies.is_empty() {
        proxies = parse_cidrs(&["10.0.0.0/8".into(), "127.0.0.0/8".into(), "::1".into()]).unwrap();
    }

    let mut headers = HeaderMap::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let Ok(text) = std::str::from_utf8(value) {
            for part in text.split([',', ';']) {
                let _ = parse_forwarded_addr(part);
            }
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }

    let canonical_peer = peer.to_canonical();
    let peer_trusted = proxies.iter().any(|n| n.contains(&canonical_peer));
    for which in [ClientIpHeader::XForwardedFor, ClientIpHeader::Forwarded] {
        let got = client_ip(peer, &headers, &proxies, which);
        if !peer_trusted {
            assert_eq!(
                got,
                Client::Known(canonical_peer),
                "an untrusted peer's headers were believed"
            );
        }
        // Only the chosen header counts: removing the other changes nothing.
        let mut only = headers.clone();
        let other = match which {
            ClientIpHeader::XForwardedFor => ClientIpHeader::Forwarded,
            ClientIpHeader::Forwarded => ClientIpHeader::XForwardedFor,
        };
        only.remove(other.name());
        assert_eq!(
            got,
            client_ip(peer, &only, &proxies, which),
            "fell back to {}",
            other.name()
        );
        let values: Vec<&HeaderValue> = headers.get_all(which.name()).iter().collect();
        // A chain that is not ASCII, or longer than the cap, is never read as an address.
        if peer_trusted
            && (values.iter().any(|v| v.to_str().is_err())
                || values
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(|v| v.split(',').count())
                    .sum::<usize>()
                    > MAX_HOPS)
        {
            assert_eq!(got, Client::Unknown, "unparseable chain gave an address");
        }
        if peer_trusted && values.is_empty() {
            assert_eq!(got, Client::Known(canonical_peer));
        }
        // Canonical: an IPv4-mapped IPv6 address never comes back.
        if let Client::Known(ip) = got {
            assert_eq!(ip, ip.to_canonical());
        }
    }
});
