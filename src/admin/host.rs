//! Which `Host` the admin listener answers to. A web page the operator opens can point a name it
//! controls (`evil.example`) at 127.0.0.1 ("DNS rebinding") and then read this listener
//! same-origin, bodies and headers included: the browser sends `Host: evil.example`. So a request
//! is served only when its `Host` is a name no such page can send: `localhost`, a loopback
//! address, the listen address, the address the connection arrived at (an IP literal cannot be
//! rebound), or a name the operator listed in `[admin] allowed_hosts`; any port.

use std::net::{IpAddr, SocketAddr};

use axum::http::uri::Authority;

use crate::config::AllowedHost;

/// What a request's `Host` is checked against.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// `[admin] allowed_hosts = ["*"]`: no check at all (only allowed with a token).
    any: bool,
    /// The listed names, lowercased.
    names: Vec<String>,
    /// The configured listen address (`0.0.0.0` when it listens on every interface).
    listen: IpAddr,
}

impl HostPolicy {
    pub fn new(allowed: &[AllowedHost], listen: IpAddr) -> HostPolicy {
        let mut any = false;
        let mut names = Vec::new();
        for a in allowed {
            match a {
                AllowedHost::Any => any = true,
                AllowedHost::Name(n) => names.push(n.clone()),
            }
        }
        HostPolicy { any, names, listen }
    }

    /// Whether a request with `host` (the `Host` header, `None` when absent or not text) that
    /// arrived on `local` (the connection's own address) is served.
    pub fn allows(&self, host: Option<&str>, local: Option<SocketAddr>) -> bool {
        if self.any {
            return true;
        }
        let Some(authority) = host.and_then(|h| h.parse::<Authority>().ok()) else {
            return false;
        };
        // A `Host` carries no userinfo; one that does is not a browser's.
        if authority.as_str().contains('@') {
            return false;
        }
        let name = authority.host();
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            if ip.is_loopback() || ip == self.listen || local.is_some_and(|l| l.ip() == ip) {
                return true;
            }
        }
        name.eq_ignore_ascii_case("localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], listen: &str) -> HostPolicy {
        let allowed: Vec<_> = allowed
            .iter()
            .map(|a| AllowedHost::parse(a).expect("valid entry"))
            .collect();
        HostPolicy::new(&allowed, listen.parse().unwrap())
    }

    #[test]
    fn loopback_names_and_the_listen_address_pass_with_any_port() {
        let p = policy(&[], "127.0.0.1");
        for host in [
            "localhost",
            "LocalHost:9000",
            "127.0.0.1",
            "127.0.0.1:9000",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:9000",
        ] {
            assert!(p.allows(Some(host), None), "{host}");
        }
        let wide = policy(&[], "0.0.0.0");
        assert!(wide.allows(Some("0.0.0.0:9000"), None));
        let local: SocketAddr = "10.0.0.5:9000".parse().unwrap();
        assert!(wide.allows(Some("10.0.0.5:9000"), Some(local)));
        assert!(!wide.allows(Some("10.0.0.6:9000"), Some(local)));
    }

    #[test]
    fn other_names_are_refused_unless_listed() {
        let p = policy(&[], "127.0.0.1");
        for host in [
            "evil.example",
            "evil.example:9000",
            "localhost.evil.example",
            "localhost.",
            "127.0.0.1.evil.example",
            "user@127.0.0.1",
            "",
            "a b",
        ] {
            assert!(!p.allows(Some(host), None), "{host:?}");
        }
        assert!(!p.allows(None, None), "no Host at all");
        let listed = policy(&["admin.example.com"], "127.0.0.1");
        assert!(listed.allows(Some("Admin.Example.com:443"), None));
        assert!(!listed.allows(Some("evil.example"), None));
        assert!(policy(&["*"], "127.0.0.1").allows(Some("evil.example"), None));
        assert!(policy(&["*"], "127.0.0.1").allows(None, None));
    }

    #[test]
    fn entries_are_bare_hosts() {
        for ok in ["admin.example.com", "10.0.0.5", "[fd00::1]", "*", "tunnel"] {
            assert!(AllowedHost::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "admin.example.com:443",
            "http://admin.example.com",
            "admin.example.com/",
            "u@admin.example.com",
            "*.example.com",
            "a b",
        ] {
            assert_eq!(AllowedHost::parse(bad), None, "{bad:?}");
        }
    }
}
