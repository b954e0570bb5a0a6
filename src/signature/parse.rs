//! Header parsers, one per provider format. Pure functions over `&str` so they can be unit-tested on
//! the providers' published examples and fuzzed alone. They only decode; comparing is the verifier's job.

use base64::Engine;

/// A signature header that is present but cannot be decoded. The text says what is wrong with it
/// (never the secret, which a parser never sees).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed(msg: impl Into<String>) -> Malformed {
    Malformed(msg.into())
}

/// Decodes hex of either case. Odd length and non-hex characters are refused.
pub fn hex_digest(value: &str) -> Result<Vec<u8>, Malformed> {
    let value = value.trim();
    if value.is_empty() {
        return Err(malformed("empty signature"));
    }
    if value.len() % 2 == 1 {
        return Err(malformed(format!(
            "odd-length hex signature ({} characters)",
            value.len()
        )));
    }
    // decode_to_slice is a plain loop; hex::decode collects through an iterator, which costs more
    // than the whole comparison.
    let mut out = vec![0u8; value.len() / 2];
    hex::decode_to_slice(value, &mut out).map_err(|_| malformed("signature is not hex"))?;
    Ok(out)
}

/// Decodes standard base64 (with or without padding).
pub fn base64_digest(value: &str) -> Result<Vec<u8>, Malformed> {
    let value = value.trim();
    if value.is_empty() {
        return Err(malformed("empty signature"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
        .map_err(|_| malformed("signature is not base64"))
}

/// `prefix` then hex (GitHub `sha256=…`, Slack `v0=…`, generic prefixed hex).
pub fn prefixed_hex(value: &str, prefix: &str) -> Result<Vec<u8>, Malformed> {
    let rest = value
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| malformed(format!("signature does not start with {prefix:?}")))?;
    hex_digest(rest)
}

/// Standard Webhooks `webhook-signature`: space-separated `v1,<base64>` entries. As in the reference
/// libraries, entries of other versions (e.g. asymmetric `v1a`) and entries that do not decode are
/// skipped, so one odd entry cannot hide a valid one; at least one `v1` entry must decode.
pub fn standard_webhooks(value: &str) -> Result<Vec<Vec<u8>>, Malformed> {
    let sigs: Vec<Vec<u8>> = value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|sig| base64_digest(sig).ok())
        .collect();
    if sigs.is_empty() {
        return Err(malformed(
            "no decodable v1,<base64> signature in the header",
        ));
    }
    Ok(sigs)
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeHeader {
    /// The `t=` value exactly as sent: it is part of the signed content.
    pub timestamp: String,
    pub unix: i64,
    pub v1: Vec<Vec<u8>>,
}

/// `t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`. Like Stripe's libraries, items of other schemes and `v1`
/// values that do not decode are skipped; `t` must be present and at least one `v1` must decode.
pub fn stripe(value: &str) -> Result<StripeHeader, Malformed> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", val)) => timestamp = Some(val.to_string()),
            Some(("v1", val)) => v1.extend(hex_digest(val).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("Stripe-Signature has no t= timestamp"))?;
    let unix = unix_seconds(&timestamp)?;
    if v1.is_empty() {
        return Err(malformed("Stripe-Signature has no decodable v1= signature"));
    }
    Ok(StripeHeader {
        timestamp,
        unix,
        v1,
    })
}

/// Unix seconds as senders write them in timestamp headers: ASCII digits only.
pub fn unix_seconds(value: &str) -> Result<i64, Malformed> {
    let value = value.trim();
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("timestamp is not unix seconds"));
    }
    value
        .parse()
        .map_err(|_| malformed("timestamp is not unix seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_accepts_both_cases_and_refuses_odd_and_non_hex() {
        assert_eq!(hex_digest("0aFf").unwrap(), vec![0x0a, 0xff]);
        assert!(hex_digest("abc").unwrap_err().0.contains("odd-length"));
        assert!(hex_digest("zz").unwrap_err().0.contains("not hex"));
        assert!(hex_digest("").is_err());
    }

    #[test]
    fn prefixed_hex_needs_prefix() {
        assert_eq!(
            prefixed_hex("sha256=00ff", "sha256=").unwrap(),
            vec![0, 255]
        );
        assert!(prefixed_hex("sha1=00ff", "sha256=").is_err());
    }

    #[test]
    fn standard_webhooks_keeps_every_v1_and_skips_other_versions() {
        let sigs = standard_webhooks("v1a,AAAA v1,AAEC v1,@@@ junk v1,/w==").unwrap();
        assert_eq!(
            sigs,
            vec![vec![0, 1, 2], vec![255]],
            "odd entries skipped, not fatal"
        );
        assert!(standard_webhooks("v2,AAEC").is_err());
        assert!(standard_webhooks("AAEC").is_err());
        assert!(standard_webhooks("v1,@@@").is_err());
    }

    #[test]
    fn stripe_documented_format() {
        // The shape from Stripe's docs: t, then v1 (several during rotation), maybe a v0 test signature.
        let h = stripe("t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v1=00,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39").unwrap();
        assert_eq!(h.unix, 1492774577);
        assert_eq!(h.timestamp, "1492774577");
        assert_eq!(h.v1.len(), 2);
        let lenient = stripe("t=5,v1=zz,v1=abc,junk,v1=00ff").unwrap();
        assert_eq!(
            lenient.v1,
            vec![vec![0, 255]],
            "undecodable v1 values are skipped"
        );
        assert!(stripe("v1=00").is_err());
        assert!(stripe("t=abc,v1=00").is_err());
        assert!(stripe("t=1,v0=00").is_err());
        assert!(stripe("garbage").is_err());
    }

    #[test]
    fn unix_seconds_refuses_signs_and_fractions() {
        assert_eq!(unix_seconds("1531420618").unwrap(), 1531420618);
        assert!(unix_seconds("-5").is_err());
        assert!(unix_seconds("1.5").is_err());
        assert!(unix_seconds("99999999999999999999").is_err());
    }
}
