//! Typed payloads: pure functions over a body's bytes, free of axum and tokio, importing nothing
//! from the rest of the crate. The HTTP layer calls them only with a verified body (the bytes
//! come out of `signature::Verified`), so an unverified body is never parsed.
//!
//! NetBox's payload changed across versions (`model` → `object_type`, `username`/`request_id` →
//! `request`, space → `T` in timestamps), so the type is loose about which fields exist and strict
//! about the type of each field that does. Unknown fields are not rejected; the event log keeps the
//! whole body anyway. Fields borrow from the body, so parsing allocates next to nothing.
//!
//! serde's derive is the specification of what a NetBox body is; [`fast`] only answers sooner for
//! the bodies it is sure about, and hands everything else to serde.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

pub mod fast;

/// What a hook's body must be, checked after the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// NetBox's event payload, typed (the default for `provider = "netbox"`).
    Netbox,
    /// Any JSON value (the default for the other providers).
    Json,
    /// Any bytes; logged as text when UTF-8, else base64.
    Raw,
}

/// Why a verified body was refused. `Syntax` is answered 400 (not JSON at all), `Shape` 422.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not JSON: {0}")]
    Syntax(String),
    #[error("{0}")]
    Shape(String),
}

/// One NetBox webhook body, any version from 3.x on.
#[derive(Debug, Deserialize)]
pub struct NetboxEvent<'a> {
    /// `created`, `updated`, `deleted`, `job_started`, `job_ended`, or a plugin's own name.
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    pub timestamp: NetboxTimestamp,
    /// Up to NetBox 4.4, e.g. `site`.
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    /// From NetBox 4.4, e.g. `dcim.site`.
    #[serde(default, borrow)]
    pub object_type: Option<Cow<'a, str>>,
    /// Gone in 4.7; `null` on job events.
    #[serde(default, borrow)]
    pub username: Option<Cow<'a, str>>,
    /// The change request's id: shared by every object of a bulk edit, so it is not a delivery id.
    #[serde(default)]
    pub request_id: Option<Uuid>,
    /// From NetBox 4.6.
    #[serde(default, borrow)]
    pub request: Option<RequestInfo<'a>>,
    /// The object as the REST API shows it. Checked to be an object; only `id` and `url` are kept
    /// (the log line has the whole body anyway), so it is read once, never re-parsed.
    #[serde(default, borrow)]
    pub data: Option<ObjectRef<'a>>,
    /// Absent on job events.
    #[serde(default)]
    pub snapshots: Option<Snapshots>,
    #[serde(default, borrow)]
    pub context: Option<&'a RawValue>,
}

/// The `request` object of NetBox 4.6+.
#[derive(Debug, Deserialize)]
pub struct RequestInfo<'a> {
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub path: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub user: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct Snapshots {
    #[serde(default)]
    pub prechange: Option<AnyObject>,
    #[serde(default)]
    pub postchange: Option<AnyObject>,
}

/// Proof that a value was a JSON object. Its members are skipped, not kept: the event log has the
/// whole body already.
#[derive(Debug, Clone, Copy)]
pub struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyObject, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

/// The two fields of an object NetBox's log line shows. Deserializes from any JSON object, skipping
/// every other member without building it.
///
/// Neither field is type-checked, because neither decides whether the event is accepted: the log
/// line shows them when they look right and the log keeps the whole body anyway. So the rule is
/// "the first usable one wins": `id` is the first `id` member that is a number or a string, `url`
/// the first `url` member that is a string (one with a lone surrogate escape, which is no Unicode,
/// does not count). Any other `id` or `url` member (`null`, an object, a later duplicate) is
/// skipped like an unknown member. [`fast`] applies the same rule.
#[derive(Debug, Clone, Default)]
pub struct ObjectRef<'a> {
    /// A number or string id; a nested value is not kept (it could span lines in the log).
    pub id: Option<&'a RawValue>,
    pub url: Option<Cow<'a, str>>,
}

/// Whether a raw `id` value is kept: a number or a string, never `true`, `null` or a nested value.
fn is_scalar_id(raw: &str) -> bool {
    raw.starts_with(|c: char| c == '"' || c == '-' || c.is_ascii_digit())
}

/// The text of `raw` when it is a JSON string that is valid Unicode; `None` for any other value.
/// `raw` must be one valid JSON value (a `RawValue`, or a span the fast scanner checked): then a
/// string without a backslash is its own text, borrowed; only escapes need decoding.
pub fn decoded_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.as_bytes().contains(&b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

/// A member name of `data`, matched without allocating it: only `id` and `url` matter.
enum DataKey {
    Id,
    Url,
    Other,
}

impl<'de> Deserialize<'de> for DataKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DataKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DataKey, E> {
                Ok(match s {
                    "id" => DataKey::Id,
                    "url" => DataKey::Url,
                    _ => DataKey::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ObjectRef<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = ObjectRef<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut obj = ObjectRef::default();
                while let Some(key) = map.next_key::<DataKey>()? {
                    match key {
                        DataKey::Id if obj.id.is_none() => {
                            let raw: &'de RawValue = map.next_value()?;
                            obj.id = is_scalar_id(raw.get()).then_some(raw);
                        }
                        DataKey::Url if obj.url.is_none() => {
                            // Read as a raw value first: any value is skipped cleanly, and only a
                            // string is kept.
                            let raw: &'de RawValue = map.next_value()?;
                            obj.url = decoded_string(raw.get());
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(obj)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> NetboxEvent<'a> {
    /// `model` (≤ 4.4) or `object_type` (≥ 4.4), whichever was sent.
    pub fn model(&self) -> Option<&str> {
        self.object_type.as_deref().or(self.model.as_deref())
    }

    /// The user who made the change: `username` before 4.7, `request.user` after.
    pub fn user(&self) -> Option<&str> {
        self.username
            .as_deref()
            .or_else(|| self.request.as_ref().and_then(|r| r.user.as_deref()))
    }

    /// `request_id` before 4.7, `request.id` after.
    pub fn request_id(&self) -> Option<Uuid> {
        self.request_id
            .or_else(|| self.request.as_ref().and_then(|r| r.id))
    }

    /// The changed object's `id` and `url`, when `data` has them.
    pub fn object(&self) -> Option<&ObjectRef<'a>> {
        self.data.as_ref()
    }
}

/// NetBox's event time, always with a UTC offset. Before 3.6.6 NetBox writes a space between date
/// and time (`2026-11-23 15:30:21.674557+00:00`), later a `T`; the fraction is absent when zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetboxTimestamp(pub DateTime<FixedOffset>);

/// Parses both of NetBox's timestamp spellings; refuses a time without an offset.
pub fn parse_timestamp(s: &str) -> Result<DateTime<FixedOffset>, String> {
    let bytes = s.as_bytes();
    if bytes.len() > MAX_TIMESTAMP_LEN {
        // Not copied or parsed: no timestamp is this long.
        return Err(format!("{} is not a timestamp (too long)", quoted(s)));
    }
    let normalized: Cow<str> = if bytes.len() > 10 && bytes[10] == b' ' {
        let mut t = s.to_string();
        t.replace_range(10..11, "T");
        Cow::Owned(t)
    } else {
        Cow::Borrowed(s)
    };
    DateTime::parse_from_rfc3339(&normalized).map_err(|e| {
        format!(
            "{} is not a timestamp with a time zone like 2026-11-23T15:30:21.674557+00:00 ({e})",
            quoted(s)
        )
    })
}

impl<'de> Deserialize<'de> for NetboxTimestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NetboxTimestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NetboxTimestamp, E> {
                parse_timestamp(s).map(NetboxTimestamp).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Longer than any timestamp NetBox writes (32 bytes with microseconds and an offset).
const MAX_TIMESTAMP_LEN: usize = 64;

/// Characters of a value a refusal repeats: enough to recognise it, too few to echo a body back
/// into the 400/422, a diagnostic line and the admin ring.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `s` quoted as `{:?}` writes it, cut as [`cut_quotes`] cuts.
fn quoted(s: &str) -> String {
    let head = s
        .char_indices()
        .nth(MAX_QUOTED_CHARS + 1)
        .map_or(s, |(i, _)| &s[..i]);
    cut_quotes(&format!("{head:?}"))
}

/// `message` with every quoted value in it (`"…"`, as serde writes an unexpected string, or
/// `` `…` ``, as it writes other values) cut after [`MAX_QUOTED_CHARS`] characters, marked with an
/// ellipsis. Idempotent: a cut value is not cut again.
pub fn cut_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' && c != '`' {
            continue;
        }
        let (mut kept, mut closed) = (0usize, false);
        let mut escaped = false;
        for d in chars.by_ref() {
            if !escaped && d == c {
                closed = true;
                break;
            }
            escaped = c == '"' && !escaped && d == '\\';
            if kept < MAX_QUOTED_CHARS {
                out.push(d);
            } else if kept == MAX_QUOTED_CHARS {
                out.push('…');
            }
            kept += 1;
        }
        if closed {
            out.push(c);
        }
    }
    out
}

fn classify(e: serde_path_to_error::Error<serde_json::Error>) -> PayloadError {
    // The path names map keys the sender chose; capped like a quoted value.
    let path = cut_quotes(&format!("`{}`", e.path()));
    let path = path.trim_matches('`');
    let inner = e.into_inner();
    let syntax = inner.is_syntax() || inner.is_eof();
    let inner = cut_quotes(&inner.to_string());
    if syntax {
        PayloadError::Syntax(inner)
    } else if path == "." || path.is_empty() {
        PayloadError::Shape(inner)
    } else {
        PayloadError::Shape(format!("{path}: {inner}"))
    }
}

/// Parses a NetBox body. 422 messages name the field (`request_id: UUID parsing failed…`).
/// The common case is answered by [`fast::netbox`]; whatever it is unsure about is parsed by serde
/// once without path tracking, and only a failing body again with `serde_path_to_error` to say
/// where it failed.
///
/// Why a hand-written scanner beside serde: it keeps the whole service at about 112k instructions
/// per NetBox request, where the best library path (sonic-rs) needs 124k and serde_json alone, with
/// borrowed keys, 127k: more than the 10% that would have paid for dropping it. Measured with
/// callgrind over the running service driven by `scripts/fixed_load.py` (issue 12; the figures are
/// in the commit message that kept it).
pub fn netbox(body: &[u8]) -> Result<NetboxEvent<'_>, PayloadError> {
    // UTF-8 is checked once for the whole body, so the parser (and the log) need not re-check it.
    let text = utf8(body)?;
    if let Some(ev) = fast::netbox(text) {
        return Ok(ev);
    }
    match serde_json::from_str::<NetboxEvent>(text) {
        Ok(ev) => Ok(ev),
        Err(plain) => {
            let mut de = serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, NetboxEvent>(&mut de) {
                Err(e) => Err(classify(e)),
                // Only trailing characters fail the plain parse and pass this one.
                Ok(_) => Err(PayloadError::Syntax(plain.to_string())),
            }
        }
    }
}

fn utf8(body: &[u8]) -> Result<&str, PayloadError> {
    std::str::from_utf8(body)
        .map_err(|e| PayloadError::Syntax(format!("invalid UTF-8 at byte {}", e.valid_up_to())))
}

/// Checks that a body is one JSON value, without building it. JSON is UTF-8 (RFC 8259) and
/// skipping a value does not check that, so it is checked first: the event log stays valid UTF-8.
pub fn json(body: &[u8]) -> Result<(), PayloadError> {
    let text = utf8(body)?;
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            PayloadError::Syntax(cut_quotes(&e.to_string()))
        } else {
            PayloadError::Shape(cut_quotes(&e.to_string()))
        }
    })?;
    Ok(())
}

/// The string value of top-level `field` when the body is an object that has one (Stripe's event
/// `id`, Slack's `event_id`); `None` otherwise. Other values are skipped without being built.
pub fn top_level_string(body: &[u8], field: &str) -> Option<String> {
    string_at(body, &[field])
}

/// The string at `path` (object members, outermost first: `["event", "type"]`) when the body has
/// one there; `None` otherwise. Other values are skipped without being built, and only the first
/// member of each name counts, as for [`top_level_string`].
pub fn string_at(body: &[u8], path: &[&str]) -> Option<String> {
    /// Finds `path` in the map being visited; the value is `None` when it is not there.
    struct Find<'f>(&'f [&'f str]);
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(None);
            };
            let mut found = None;
            let mut seen = false;
            while let Some(is_field) = map.next_key_seed(IsField(first))? {
                if is_field && !seen {
                    seen = true;
                    found = map.next_value_seed(Inner(rest))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    /// The value of a matched member: the string itself at the end of the path, else a map to
    /// search further; any other shape is skipped and yields `None`.
    struct Inner<'f>(&'f [&'f str]);
    impl<'de> DeserializeSeed<'de> for Inner<'_> {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Inner<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any value")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(self.0.is_empty().then(|| s.to_owned()))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            if self.0.is_empty() {
                IgnoredAny.visit_map(map)?;
                Ok(None)
            } else {
                Find(self.0).visit_map(map)
            }
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            IgnoredAny.visit_seq(seq)?;
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    /// Whether a member name is `field`, compared without allocating the name.
    struct IsField<'f>(&'f str);
    impl<'de> DeserializeSeed<'de> for IsField<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_identifier(self)
        }
    }
    impl Visitor<'_> for IsField<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
            Ok(s == self.0)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_map(Find(path)).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::{cut_quotes, MAX_QUOTED_CHARS};

    #[test]
    fn quoted_values_in_refusals_are_cut_once_with_an_ellipsis() {
        let long = "x".repeat(10_000);
        let msg = format!("invalid type: string {long:?}, expected a map at line 1 column 9");
        let cut = cut_quotes(&msg);
        let kept = format!("\"{}…\"", "x".repeat(MAX_QUOTED_CHARS));
        assert_eq!(
            cut,
            format!("invalid type: string {kept}, expected a map at line 1 column 9")
        );
        assert_eq!(cut_quotes(&cut), cut, "idempotent");
        // Backticks, escaped quotes inside, and short values untouched.
        let tick = format!("invalid value: `{}`", "9".repeat(100));
        assert_eq!(
            cut_quotes(&tick).len(),
            "invalid value: ``".len() + 64 + '…'.len_utf8()
        );
        let inner = format!(r#"string "a\"b{}" then "short""#, "c".repeat(100));
        let cut = cut_quotes(&inner);
        assert!(cut.ends_with(r#"…" then "short""#), "{cut}");
        assert_eq!(cut_quotes("expected `,` or `}`"), "expected `,` or `}`");
        let stamp = super::parse_timestamp(&"9".repeat(1 << 20)).unwrap_err();
        assert!(stamp.len() < 200, "{stamp}");
    }

    use super::*;

    #[test]
    fn timestamp_spellings_across_versions() {
        let space = parse_timestamp("2026-11-23 15:30:21.674557+00:00").unwrap();
        let t = parse_timestamp("2026-11-23T15:30:21.674557+00:00").unwrap();
        assert_eq!(space, t);
        let no_fraction = parse_timestamp("2026-11-23T15:30:21+00:00").unwrap();
        assert_eq!(no_fraction.timestamp(), t.timestamp());
        assert_eq!(no_fraction.timestamp_subsec_micros(), 0);
        let offset = parse_timestamp("2026-11-23 16:30:21+01:00").unwrap();
        assert_eq!(offset.timestamp(), no_fraction.timestamp());
        assert!(parse_timestamp("2026-11-23Z15:30:21+00:00").is_err());
        assert!(
            parse_timestamp("2026-11-23 15:30:21").is_err(),
            "no time zone"
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn json_payload_must_be_utf8_and_one_value() {
        assert!(json(br#"{"a": [1, "x"]}"#).is_ok());
        assert!(matches!(
            json(b"{\"a\": \"\xff\"}"),
            Err(PayloadError::Syntax(_))
        ));
        assert!(matches!(json(b"{} {}"), Err(PayloadError::Syntax(_))));
        assert!(matches!(
            json(b"{\"a\": \"x\ny\"}"),
            Err(PayloadError::Syntax(_))
        ));
    }

    #[test]
    fn object_id_is_kept_only_when_scalar() {
        let v = b"{\"event\": \"created\", \"timestamp\": \"2026-11-23T15:20:42+00:00\", \"data\": {\"id\": {\n\"x\": 1}, \"url\": \"/u\"}}";
        let ev = netbox(v).unwrap();
        let obj = ev.object().unwrap().clone();
        assert!(obj.id.is_none());
        assert_eq!(obj.url.as_deref(), Some("/u"));
        let v = br#"{"event": "created", "timestamp": "2026-11-23T15:20:42+00:00", "data": {"id": 42}}"#;
        assert_eq!(netbox(v).unwrap().object().unwrap().id.unwrap().get(), "42");
    }

    #[test]
    fn url_is_the_first_string_url() {
        let head = r#""event": "created", "timestamp": "2026-11-23T15:20:42+00:00""#;
        for (data, url) in [
            (r#"{"url": "/a", "url": "/b"}"#, Some("/a")),
            // Not kept, and no error (it was a syntax error before).
            (r#"{"url": {}}"#, None),
            (r#"{"url": {"a": [1]}, "url": "/b"}"#, Some("/b")),
            (
                r#"{"url": null, "url": 5, "url": ["/x"], "url": "\/b"}"#,
                Some("/b"),
            ),
            // A lone surrogate is no text.
            (r#"{"url": "\ud800", "url": "/c"}"#, Some("/c")),
            (r#"{"url": true}"#, None),
            (r#"{"id": 1}"#, None),
        ] {
            let text = format!("{{{head}, \"data\": {data}}}");
            let slow = serde_json::from_str::<NetboxEvent>(&text).unwrap();
            assert_eq!(slow.object().unwrap().url.as_deref(), url, "{text}");
            // The fast path may leave a case to serde, but never disagrees.
            if let Some(fast) = fast::netbox(&text) {
                assert_eq!(fast.object().unwrap().url.as_deref(), url, "{text}");
            }
        }
        // Borrowed from the body when there is nothing to unescape.
        let v =
            br#"{"event": "e", "timestamp": "2026-11-23T15:20:42+00:00", "data": {"url": "/u"}}"#;
        let ev = netbox(v).unwrap();
        assert!(matches!(
            ev.object().unwrap().url,
            Some(Cow::Borrowed("/u"))
        ));
    }

    #[test]
    fn top_level_string_finds_only_top_level() {
        assert_eq!(
            top_level_string(br#"{"data":{"id":"inner"},"id":"evt_1"}"#, "id").as_deref(),
            Some("evt_1")
        );
        assert_eq!(top_level_string(br#"{"id":5}"#, "id"), None);
        assert_eq!(top_level_string(br#"[1]"#, "id"), None);
        assert_eq!(top_level_string(b"not json", "id"), None);
    }

    #[test]
    fn string_at_follows_a_path_and_ignores_other_shapes() {
        let slack = br#"{"type":"event_callback","event":{"user":"U1","type":"app_mention"}}"#;
        assert_eq!(
            string_at(slack, &["event", "type"]).as_deref(),
            Some("app_mention")
        );
        assert_eq!(
            string_at(slack, &["type"]).as_deref(),
            Some("event_callback")
        );
        assert_eq!(
            string_at(slack, &["event"]),
            None,
            "an object is not a string"
        );
        assert_eq!(string_at(br#"{"event":"x"}"#, &["event", "type"]), None);
        assert_eq!(
            string_at(br#"{"event":[{"type":"x"}]}"#, &["event", "type"]),
            None
        );
        assert_eq!(
            string_at(
                br#"{"event":{"type":"a"},"event":{"type":"b"}}"#,
                &["event", "type"]
            )
            .as_deref(),
            Some("a"),
            "the first member of a name counts"
        );
        assert_eq!(string_at(br#"{"a":1}"#, &[]), None);
    }
}
