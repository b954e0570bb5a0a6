//! NATS names from event data: the subject template (`webhooks.{provider}.{event}`), the stream
//! filter that covers every subject it can render, and header values. Pure, so a property test can
//! show that no input (hostile event types included) renders an invalid subject.
//!
//! How values become subject tokens:
//! - A token keeps ASCII letters, digits, `-` and `_`; every other character (space, control,
//!   `*`, `>`, `.`, `/`, non-ASCII) becomes `_`. An empty value becomes `_`. Case is kept.
//! - `{event}` keeps the dots of an event type as subject levels, so consumers can filter
//!   `webhooks.netbox.dcim.device.*`: `dcim.device.created` renders as three tokens. At most
//!   [`MAX_EVENT_TOKENS`] levels: the rest is folded into the last one with `_`. No event type
//!   renders as `none`. `{event}` must therefore be a whole token of the template.
//! - `{hook}` is one token: the leading `/` is dropped and further `/` become `_`
//!   (`/hooks/netbox` → `hooks_netbox`). `{provider}` is one token.
//! - Every rendered token is at most [`MAX_TOKEN_LEN`] bytes, so a subject is at most
//!   [`SubjectTemplate::max_len`] bytes.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::signature::{hashed_key, looks_hashed};

/// Longest token a placeholder renders: keeps subjects short enough for any server's limits.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most subject levels one event type renders (`dcim.device.created` is three).
pub const MAX_EVENT_TOKENS: usize = 8;
/// Longest template accepted (literal part).
pub const MAX_TEMPLATE_LEN: usize = 255;
/// Longest header value sent: event types come from bodies, so they are capped here too.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("subject template is empty")]
    Empty,
    #[error("subject template is longer than {MAX_TEMPLATE_LEN} bytes")]
    TooLong,
    #[error("subject template has an empty token (leading, trailing or doubled `.`)")]
    EmptyToken,
    #[error(
        "subject template contains {0:?}: wildcards, spaces and control characters are not allowed"
    )]
    InvalidChar(char),
    #[error("subject template has an unknown placeholder {{{0}}} (known: {{provider}} {{event}} {{hook}})")]
    UnknownPlaceholder(String),
    #[error("subject template has an unmatched `{{` or `}}`")]
    UnmatchedBrace,
    #[error(
        "`{{event}}` must be a whole token of the subject template (it may render several levels)"
    )]
    EventNotWholeToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Provider,
    Hook,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Literal text and single-token placeholders, concatenated.
    Parts(Vec<Part>),
    /// `{event}`: one or more levels.
    Event,
}

/// A parsed, validated subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectTemplate {
    tokens: Vec<Token>,
    source: String,
}

impl SubjectTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if template.is_empty() {
            return Err(TemplateError::Empty);
        }
        if template.len() > MAX_TEMPLATE_LEN {
            return Err(TemplateError::TooLong);
        }
        let mut tokens = Vec::new();
        for raw in template.split('.') {
            if raw.is_empty() {
                return Err(TemplateError::EmptyToken);
            }
            if raw == "{event}" {
                tokens.push(Token::Event);
                continue;
            }
            tokens.push(Token::Parts(parse_parts(raw)?));
        }
        Ok(SubjectTemplate {
            tokens,
            source: template.to_owned(),
        })
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The subject for one event.
    pub fn render(&self, provider: &str, hook: &str, event: Option<&str>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match t {
                Token::Event => push_event(&mut out, event),
                Token::Parts(parts) => {
                    for p in parts {
                        match p {
                            Part::Lit(s) => out.push_str(s),
                            Part::Provider => push_token(&mut out, provider),
                            Part::Hook => {
                                push_token(&mut out, hook.strip_prefix('/').unwrap_or(hook))
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// A subject filter that matches every subject [`render`](Self::render) can produce: literal
    /// tokens as they are, a token with a placeholder as `*`, and from `{event}` on, `>`.
    pub fn stream_filter(&self) -> String {
        let mut out = String::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            match t {
                Token::Event => {
                    out.push('>');
                    break;
                }
                Token::Parts(parts) => match parts.as_slice() {
                    [Part::Lit(s)] => out.push_str(s),
                    _ => out.push('*'),
                },
            }
        }
        out
    }

    /// The longest subject this template can render.
    pub fn max_len(&self) -> usize {
        let mut n = self.tokens.len().saturating_sub(1);
        for t in &self.tokens {
            n += match t {
                Token::Event => MAX_EVENT_TOKENS * (MAX_TOKEN_LEN + 1),
                Token::Parts(parts) => parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit(s) => s.len(),
                        _ => MAX_TOKEN_LEN,
                    })
                    .sum(),
            };
        }
        n
    }
}

fn parse_parts(raw: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let end = after.find('}').ok_or(TemplateError::UnmatchedBrace)?;
            parts.push(match &after[..end] {
                "provider" => Part::Provider,
                "hook" => Part::Hook,
                "event" => return Err(TemplateError::EventNotWholeToken),
                other => return Err(TemplateError::UnknownPlaceholder(other.to_owned())),
            });
            rest = &after[end + 1..];
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let lit = &rest[..end];
            if let Some(c) = lit
                .chars()
                .find(|c| !c.is_ascii_graphic() || matches!(c, '*' | '>' | '}'))
            {
                return Err(if c == '}' {
                    TemplateError::UnmatchedBrace
                } else {
                    TemplateError::InvalidChar(c)
                });
            }
            parts.push(Part::Lit(lit.to_owned()));
            rest = &rest[end..];
        }
    }
    Ok(parts)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// One token: safe characters kept, others `_`, empty → `_`, at most [`MAX_TOKEN_LEN`] bytes.
fn push_token(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
        return;
    }
    out.extend(
        value
            .chars()
            .take(MAX_TOKEN_LEN)
            .map(|c| if is_token_char(c) { c } else { '_' }),
    );
}

fn push_event(out: &mut String, event: Option<&str>) {
    let Some(event) = event else {
        out.push_str("none");
        return;
    };
    let mut levels = event.splitn(MAX_EVENT_TOKENS, '.');
    for (i, level) in levels.by_ref().enumerate() {
        if i > 0 {
            out.push('.');
        }
        // The last level may hold the folded rest: its dots become `_` like any other.
        push_token(out, level);
    }
}

/// A header value as NATS accepts it: control characters (CR and LF would break the header
/// block) written as `%XX`, and at most [`MAX_HEADER_VALUE_LEN`] bytes. `%` itself is escaped too
/// (`%25`), so distinct values stay distinct: `Nats-Msg-Id` is JetStream's de-duplication key, and
/// `a\r` and `a%0D` spelled alike would drop the second event as a duplicate.
pub fn header_value(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_HEADER_VALUE_LEN && !value.chars().any(escaped) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len().min(MAX_HEADER_VALUE_LEN));
    for c in value.chars() {
        let before = out.len();
        if escaped(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
        if out.len() > MAX_HEADER_VALUE_LEN {
            out.truncate(before);
            break;
        }
    }
    Cow::Owned(out)
}

/// Written as `%XX` in a header value.
fn escaped(c: char) -> bool {
    c.is_control() || c == '%'
}

/// [`header_value`] for a value that must stay distinct from every other, the `Nats-Msg-Id`: one
/// the cap would cut (two long dedupe keys alike in their first kilobyte would become one, and
/// JetStream would drop the second event) is sent as its [`hashed_key`] instead, as intake does for
/// long delivery ids; so is a value that [`looks_hashed`].
pub fn unique_header_value(value: &str) -> Cow<'_, str> {
    let escaped_len: usize = value
        .chars()
        .map(|c| c.len_utf8() * if escaped(c) { 3 } else { 1 })
        .sum();
    if escaped_len <= MAX_HEADER_VALUE_LEN && !looks_hashed(value) {
        return header_value(value);
    }
    Cow::Owned(hashed_key(value))
}

/// Whether `subject` is a valid subject to publish to: non-empty tokens of visible ASCII, no
/// wildcards. What the property test holds every rendered subject to.
pub fn is_valid_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_graphic() && c != '*' && c != '>')
        })
}

/// Whether the filter `pattern` (with `*` and a trailing `>`) matches `subject`.
pub fn filter_matches(pattern: &str, subject: &str) -> bool {
    let mut s = subject.split('.');
    for p in pattern.split('.') {
        match (p, s.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (lit, Some(t)) if lit == t => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> SubjectTemplate {
        SubjectTemplate::parse(s).expect("valid template")
    }

    #[test]
    fn default_template_keeps_event_levels() {
        let tpl = t("webhooks.{provider}.{event}");
        assert_eq!(
            tpl.render("netbox", "/netbox", Some("dcim.device.created")),
            "webhooks.netbox.dcim.device.created"
        );
        assert_eq!(
            tpl.render("github", "/github", Some("push")),
            "webhooks.github.push"
        );
        assert_eq!(tpl.render("generic", "/x", None), "webhooks.generic.none");
        assert_eq!(tpl.stream_filter(), "webhooks.*.>");
    }

    #[test]
    fn hostile_values_become_safe_tokens() {
        let tpl = t("wh.{hook}.{provider}.{event}");
        assert_eq!(
            tpl.render("a b*", "/hooks/net.box", Some("a..b> c.*")),
            "wh.hooks_net_box.a_b_.a._.b__c._"
        );
        assert_eq!(tpl.render("", "", Some("")), "wh._._._");
        assert_eq!(tpl.render("ü", "/", Some("\r\n")), "wh._._.__");
    }

    #[test]
    fn deep_event_types_fold_into_the_last_level() {
        let tpl = t("w.{event}");
        let s = tpl.render("p", "/h", Some("1.2.3.4.5.6.7.8.9.10"));
        assert_eq!(s, "w.1.2.3.4.5.6.7.8_9_10");
    }

    #[test]
    fn placeholders_mix_with_literals_inside_a_token() {
        let tpl = t("in-{provider}-{hook}.x");
        assert_eq!(tpl.render("gh", "/github", None), "in-gh-github.x");
        assert_eq!(tpl.stream_filter(), "*.x");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert_eq!(SubjectTemplate::parse(""), Err(TemplateError::Empty));
        assert_eq!(
            SubjectTemplate::parse("a..b"),
            Err(TemplateError::EmptyToken)
        );
        assert_eq!(
            SubjectTemplate::parse("a.*"),
            Err(TemplateError::InvalidChar('*'))
        );
        assert_eq!(
            SubjectTemplate::parse("a b"),
            Err(TemplateError::InvalidChar(' '))
        );
        assert_eq!(
            SubjectTemplate::parse("a.{nope}"),
            Err(TemplateError::UnknownPlaceholder("nope".into()))
        );
        assert_eq!(
            SubjectTemplate::parse("a.{event"),
            Err(TemplateError::UnmatchedBrace)
        );
        assert_eq!(
            SubjectTemplate::parse("a.event}"),
            Err(TemplateError::UnmatchedBrace)
        );
        assert_eq!(
            SubjectTemplate::parse("a.x{event}"),
            Err(TemplateError::EventNotWholeToken)
        );
        assert_eq!(
            SubjectTemplate::parse(&"a".repeat(300)),
            Err(TemplateError::TooLong)
        );
    }

    /// The inverse of [`header_value`] below the cap.
    fn percent_decode(h: &str) -> String {
        let mut bytes = Vec::new();
        let mut rest = h.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn distinct_ids_give_distinct_header_values() {
        let ids = ["a\r", "a%0D", "a%250D", "a%", "a%25", "a\u{85}", "a%C2%85"];
        let values: std::collections::BTreeSet<_> = ids.iter().map(|i| header_value(i)).collect();
        assert_eq!(values.len(), ids.len(), "{values:?}");
        assert_eq!(header_value("a\r"), "a%0D");
        assert_eq!(header_value("a%0D"), "a%250D");
    }

    #[test]
    fn header_values_escape_controls_and_are_capped() {
        assert_eq!(header_value("abc"), Cow::Borrowed("abc"));
        assert_eq!(header_value("a\r\nb\x7f"), "a%0D%0Ab%7F");
        assert_eq!(header_value("100%"), "100%25");
        let long = "é".repeat(MAX_HEADER_VALUE_LEN);
        let v = header_value(&long);
        assert!(v.len() <= MAX_HEADER_VALUE_LEN && v.len() > MAX_HEADER_VALUE_LEN - 2);
    }

    #[test]
    fn unique_header_values_are_whole_or_hashed_never_cut() {
        assert_eq!(
            unique_header_value("/github:abc"),
            Cow::Borrowed("/github:abc")
        );
        assert_eq!(unique_header_value("a%b"), "a%25b");
        // Exactly at the cap once escaped: kept whole.
        let at_cap = format!("{}{}", "a".repeat(MAX_HEADER_VALUE_LEN - 3), "%");
        assert_eq!(unique_header_value(&at_cap).len(), MAX_HEADER_VALUE_LEN);
        assert!(unique_header_value(&at_cap).ends_with("%25"));
        // Two keys alike in their first kilobyte (escaping makes them 3x longer) stay distinct.
        let one = format!("/hook:{}1", "%".repeat(400));
        let two = format!("/hook:{}2", "%".repeat(400));
        assert_eq!(
            header_value(&one),
            header_value(&two),
            "the plain form cuts both alike"
        );
        let (a, b) = (unique_header_value(&one), unique_header_value(&two));
        assert_ne!(a, b);
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
        // A key spelled like a hash is hashed too, so it cannot stand for another key.
        let spelled = format!("sha256:{}", &a[7..]);
        assert_ne!(unique_header_value(&spelled), a);
    }

    #[test]
    fn filter_matching() {
        assert!(filter_matches("a.*.>", "a.b.c.d"));
        assert!(!filter_matches("a.*.>", "a.b"));
        assert!(filter_matches("a.*", "a.b"));
        assert!(!filter_matches("a.*", "a.b.c"));
        assert!(!filter_matches("a.b", "a.c"));
    }

    fn template_strategy() -> impl Strategy<Value = SubjectTemplate> {
        let token = prop_oneof![
            Just("{event}".to_string()),
            Just("{provider}".to_string()),
            Just("{hook}".to_string()),
            Just("x-{provider}_{hook}".to_string()),
            "[a-zA-Z0-9_$-]{1,10}",
        ];
        proptest::collection::vec(token, 1..5).prop_map(|v| t(&v.join(".")))
    }

    proptest! {
        #[test]
        fn any_input_renders_a_valid_bounded_subject_the_filter_covers(
            tpl in template_strategy(),
            provider in any::<String>(),
            hook in any::<String>(),
            event in proptest::option::of(any::<String>()),
        ) {
            let s = tpl.render(&provider, &hook, event.as_deref());
            prop_assert!(is_valid_publish_subject(&s), "{s:?}");
            prop_assert!(s.len() <= tpl.max_len(), "{} > {}", s.len(), tpl.max_len());
            prop_assert!(filter_matches(&tpl.stream_filter(), &s), "{} !~ {s}", tpl.stream_filter());
        }

        #[test]
        fn event_with_dots_renders_at_most_the_level_cap(event in "[a-z.]{0,80}") {
            let s = t("w.{event}").render("p", "/h", Some(&event));
            prop_assert!(s.split('.').count() <= 1 + MAX_EVENT_TOKENS);
            prop_assert!(is_valid_publish_subject(&s));
        }

        #[test]
        fn header_values_never_carry_line_breaks(v in any::<String>()) {
            let h = header_value(&v);
            prop_assert!(!h.contains(['\r', '\n']));
            prop_assert!(h.len() <= MAX_HEADER_VALUE_LEN);
        }

        /// The escape is injective below the cap: it decodes back to the value, so two ids never
        /// share a `Nats-Msg-Id`.
        #[test]
        fn header_values_decode_back_to_the_value(
            v in proptest::collection::vec(prop_oneof![
                Just('%'), Just('\r'), Just('\u{85}'), Just('0'), Just('D'), any::<char>()
            ], 0..40).prop_map(String::from_iter)
        ) {
            let h = header_value(&v);
            prop_assert_eq!(percent_decode(&h), v);
        }
    }
}
