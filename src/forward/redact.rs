//! Keeping credentials out of what a sink says: broker URLs may carry `user:password@`, and a
//! client library's error text is not ours to trust, so both are cleaned before they are logged,
//! counted or shown by `check-config`.

/// `url` without its userinfo: `nats://user:pw@host:4222` → `nats://host:4222`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}{tail}")
}

/// `text` with every non-empty secret replaced by `***`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_dropped_and_the_rest_kept() {
        assert_eq!(redact_url("nats://u:p@h:4222"), "nats://h:4222");
        assert_eq!(
            redact_url("rediss://:p@w@h:6380/0?x=1"),
            "rediss://h:6380/0?x=1"
        );
        assert_eq!(redact_url("redis://h/0"), "redis://h/0");
        assert_eq!(redact_url("tok@h:4222"), "h:4222");
        assert_eq!(redact_url("redis://h/a@b"), "redis://h/a@b");
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("auth pw failed pw", &["pw", ""]),
            "auth *** failed ***"
        );
    }
}
