//! Diagnostics on stderr: tracing's text or JSON format, written through one writer that escapes
//! whatever a request could smuggle into a message (a 422 quoting a body's bad character, a
//! header value, a path), so no terminal control or line separator reaches stderr and every
//! diagnostic stays one line, for every reader.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// How stderr diagnostics are written (`--log-format`, `WEBHOOK_LISTENER_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagFormat {
    /// `key=value` lines for people.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON layer), for log shippers.
    Json,
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), `format`, escaped stderr.
pub fn init(format: DiagFormat) {
    init_with_default(format, "info");
}

/// [`init`] with another filter when `RUST_LOG` is not set (`replay`: `warn`, so its progress is
/// not buried under connection notices).
pub fn init_with_default(format: DiagFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // No colours: the escaper cannot tell our own ESC sequences from a sender's.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Escaping { format });
    match format {
        DiagFormat::Text => builder.init(),
        DiagFormat::Json => builder.json().init(),
    }
}

/// Makes one [`EscapingWriter`] per diagnostic.
#[derive(Debug, Clone, Copy)]
pub struct Escaping {
    format: DiagFormat,
}

impl<'a> MakeWriter<'a> for Escaping {
    type Writer = EscapingWriter;

    fn make_writer(&'a self) -> EscapingWriter {
        EscapingWriter {
            buf: Vec::new(),
            format: self.format,
        }
    }
}

/// Collects one formatted diagnostic (the fmt layer writes each event whole, then drops its
/// writer) and writes it escaped to stderr in one `write_all` when dropped, so concurrent
/// diagnostics never interleave.
pub struct EscapingWriter {
    buf: Vec<u8>,
    format: DiagFormat,
}

impl Write for EscapingWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EscapingWriter {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let out = escape(&self.buf, self.format);
        // Nowhere to report a failed write to stderr.
        let _ = io::stderr().lock().write_all(&out);
    }
}

/// What a terminal, a line reader or a text display acts on: C0, DEL, C1, U+2028, U+2029, and the
/// bidirectional controls (Unicode's `Bidi_Control` property: U+061C, U+200E, U+200F,
/// U+202A-202E, U+2066-2069), with which a sender reorders how the rest of a line is shown
/// ("Trojan Source", CVE-2021-42574). The one list the diagnostics and the event log escape.
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every [`is_hostile`] character written as `\u{…}` (Rust's notation, readable in a
/// terminal, a JSON string or a web page), borrowed when there is none: for the operator's own
/// words and the sender's quoted values in an error, which must stay one inert line shown as
/// written.
pub fn escape_hostile(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    push_escaped(&mut out, text, DiagFormat::Text);
    std::borrow::Cow::Owned(out)
}

/// Appends `text` with each [`is_hostile`] character as `\u{1b}` (text) or `\u001b` (JSON).
fn push_escaped(out: &mut String, text: &str, format: DiagFormat) {
    use std::fmt::Write as _;
    for c in text.chars() {
        if !is_hostile(c) {
            out.push(c);
            continue;
        }
        let _ = match format {
            DiagFormat::Text => write!(out, "\\u{{{:x}}}", c as u32),
            DiagFormat::Json => write!(out, "\\u{:04x}", c as u32),
        };
    }
}

/// `diagnostic` with every control but the final line end escaped: `\u{1b}` (text) or `\u001b`
/// (JSON, where that is a valid string escape: such a character can only sit inside a string),
/// and bytes that are not UTF-8 as `\xNN` (text; the JSON layer writes only UTF-8).
pub fn escape(diagnostic: &[u8], format: DiagFormat) -> Vec<u8> {
    let (body, end) = match diagnostic.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (diagnostic, &b""[..]),
    };
    let clean = |s: &str| !s.chars().any(is_hostile);
    if let Ok(s) = std::str::from_utf8(body) {
        if clean(s) {
            return diagnostic.to_vec();
        }
    }
    let mut out = String::with_capacity(body.len() + 16);
    for chunk in body.utf8_chunks() {
        push_escaped(&mut out, chunk.valid(), format);
        for b in chunk.invalid() {
            match format {
                DiagFormat::Text => out.push_str(&format!("\\x{b:02x}")),
                DiagFormat::Json => out.push_str("\\ufffd"),
            }
        }
    }
    let mut out = out.into_bytes();
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_lines_pass_unchanged() {
        let line = b"2026 WARN request refused path=\"/nb\" client=127.0.0.1 caf\xc3\xa9\n";
        assert_eq!(escape(line, DiagFormat::Text), line.to_vec());
    }

    #[test]
    fn controls_separators_and_bad_bytes_are_escaped_on_one_line() {
        let line = "a\u{1b}[2J\u{9b}b\u{2028}c\u{85}d\u{7f}\te\nf\n".as_bytes();
        let out = String::from_utf8(escape(line, DiagFormat::Text)).unwrap();
        assert_eq!(
            out,
            "a\\u{1b}[2J\\u{9b}b\\u{2028}c\\u{85}d\\u{7f}\\u{9}e\\u{a}f\n"
        );
        let out = String::from_utf8(escape(b"x\xff\x9by\n", DiagFormat::Text)).unwrap();
        assert_eq!(out, "x\\xff\\x9by\n");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        let line = "user=\u{202e}nimda\u{202c} \u{2066}x\u{2069}\u{200f}\u{61c}\n";
        let out = String::from_utf8(escape(line.as_bytes(), DiagFormat::Text)).unwrap();
        assert_eq!(
            out,
            "user=\\u{202e}nimda\\u{202c} \\u{2066}x\\u{2069}\\u{200f}\\u{61c}\n"
        );
        let raw = serde_json::json!({ "m": "\u{202e}x\u{2067}" }).to_string() + "\n";
        let out = String::from_utf8(escape(raw.as_bytes(), DiagFormat::Json)).unwrap();
        assert!(out.contains(r"\u202ex\u2067"), "{out}");
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["m"], "\u{202e}x\u{2067}");
        // Letters of right-to-left scripts are text, not controls.
        let hebrew = "user=\u{5e9}\u{5dc}\u{5d5}\u{5dd}\n";
        assert_eq!(
            escape(hebrew.as_bytes(), DiagFormat::Text),
            hebrew.as_bytes()
        );
    }

    #[test]
    fn json_escapes_stay_valid_json() {
        let raw = serde_json::json!({ "m": "a\u{9b}b\u{2028}c\u{7f}" }).to_string() + "\n";
        let out = escape(raw.as_bytes(), DiagFormat::Json);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(!text.trim_end().chars().any(is_hostile), "{text}");
        let back: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back["m"], "a\u{9b}b\u{2028}c\u{7f}");
    }
}
