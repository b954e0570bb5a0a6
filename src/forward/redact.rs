//! Keeping credentials out of what a sink says: broker URLs may carry `user:password@`, and a
//! client library's error text is not ours to trust, so both are cleaned before they are logged,
//! counted or shown by `check-config`.

/// Query keys whose value is a credential. redis-rs reads `user` and `pass` from the query of a
/// `redis+unix://` URL; the rest are the spellings other clients use.
const CREDENTIAL_KEYS: [&str; 5] = ["pass", "password", "user", "username", "token"];

/// `url` without its userinfo, and with the value of every credential key in its query masked:
/// `nats://user:pw@host:4222` → `nats://host:4222`, `redis+unix:///s?db=0&pass=pw` →
/// `redis+unix:///s?db=0&pass=***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let Some(q) = tail.find('?') else {
        return format!("{scheme}{host}{tail}");
    };
    let (path, query) = tail.split_at(q + 1);
    let (query, fragment) = query.split_at(query.find('#').unwrap_or(query.len()));
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_credential_key(key) => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}{host}{path}{}{fragment}", pairs.join("&"))
}

/// Whether `key` names a credential, compared as the client decodes it (`p%61ss` is `pass`) and
/// in any case.
fn is_credential_key(key: &str) -> bool {
    let key = key.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&key).decode_utf8_lossy();
    CREDENTIAL_KEYS
        .iter()
        .any(|k| decoded.trim().eq_ignore_ascii_case(k))
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
    fn credentials_in_the_query_are_masked() {
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=0&pass=hunter2"),
            "redis+unix:///run/redis.sock?db=0&pass=***"
        );
        assert_eq!(
            redact_url("redis+unix:///s?USER=alice&Password=pw&p%61ss=pw2&token=t#frag"),
            "redis+unix:///s?USER=***&Password=***&p%61ss=***&token=***#frag"
        );
        assert_eq!(
            redact_url("rediss://u:pw@h/0?username=alice&pass"),
            "rediss://h/0?username=***&pass"
        );
        assert_eq!(
            redact_url("redis://h/0?db=1&passive=x"),
            "redis://h/0?db=1&passive=x"
        );
        for url in [
            "redis+unix:///run/redis.sock?db=0&pass=hunter2",
            "redis://h?user=hunter2&PASS=hunter2",
        ] {
            assert!(!redact_url(url).contains("hunter2"), "{url}");
        }
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("auth pw failed pw", &["pw", ""]),
            "auth *** failed ***"
        );
    }
}
