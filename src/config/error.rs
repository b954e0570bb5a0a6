//! Config errors, formatted in this one place so that none can quote the file: each names the
//! file, line, column and key path (`hooks[2].secret`), and says what is wrong in fixed words and
//! our schema's names only. A value, a secret or a line of the source has no way in: [`Fault`]
//! holds `&'static str`s, numbers, key paths and secret *references*, never text from the file.
//!
//! The messages of the TOML parser and of serde quote what they read (`invalid type: string
//! "hunter2"`), so neither is passed on: syntax errors are mapped onto [`Syntax`], and typed errors
//! come from our own deserializer ([`super::de`]), whose error type ([`SchemaError`]) keeps only the
//! kind of what was found and the words of what was expected.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::de;

use super::secrets::SecretError;
use crate::diagnostics::escape_hostile;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config file: {source}", escape_hostile(&path.display().to_string()))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// At least one problem; every one found, in file order for syntax and per key otherwise.
    #[error("{}", Listing { origin, problems })]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// One self-contained line per problem (file, line, column, key, fault), for diagnostics that
    /// must stay one line per message.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { origin, problems } => problems
                .iter()
                .map(|p| escape_hostile(&format!("{origin}:{p}")).into_owned())
                .collect(),
        }
    }

    /// The problems, for tests and callers that count them.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

struct Listing<'a> {
    origin: &'a str,
    problems: &'a [Problem],
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            // The operator's own words (a `file:` path, the config's name) stay one inert line.
            f.write_str(&escape_hostile(&format!("{}:{p}", self.origin)))?;
        }
        Ok(())
    }
}

/// One thing wrong: where (key path, and the line and column once mapped), and what.
#[derive(Debug)]
pub struct Problem {
    pub key: KeyPath,
    /// The hook's `path`, once known to be a valid one: operators name hooks by their path.
    pub hook: Option<String>,
    pub at: Option<LineCol>,
    pub fault: Fault,
}

impl Problem {
    pub fn new(key: KeyPath, fault: Fault) -> Problem {
        Problem {
            key,
            hook: None,
            at: None,
            fault,
        }
    }
}

impl fmt::Display for Problem {
    /// `7:12: hooks[0].secrets (hook /nb): <fault>`; the file is put in front by [`ConfigError`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.at {
            write!(f, "{}:{}:", at.line, at.column)?;
        }
        f.write_str(" ")?;
        if !self.key.is_empty() {
            write!(f, "{}", self.key)?;
            if let Some(hook) = &self.hook {
                write!(f, " (hook {hook})")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}", self.fault)
    }
}

/// 1-based line and column (in characters), as editors and compilers count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl LineCol {
    /// Where byte `offset` of `text` is; an offset past the end points just after the last byte.
    pub fn of(text: &str, offset: usize) -> LineCol {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineCol {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// A key path like `hooks[2].secrets[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }
    /// `hooks[index]`.
    pub fn hook(index: usize) -> KeyPath {
        KeyPath::root().key("hooks").index(index)
    }
    pub fn key(&self, name: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(name.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(i));
        p
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

/// Whether `key` is shown as written: a bare TOML key of a sane length. Anything else (a quoted
/// key with spaces, controls or a pasted secret) is shown as `<key>`; its line and column say where.
pub(super) fn is_plain_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(if is_plain_key(k) { k } else { "<key>" })?;
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What is wrong, in fixed words and our schema's names.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("TOML syntax error: {0}")]
    Syntax(Syntax),
    /// The key's name is in the path; what it could have been is our schema's list.
    #[error("unknown key; expected one of {}", Names(.0))]
    UnknownKey(&'static [&'static str]),
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("not one of the accepted names: {}", Names(.0))]
    UnknownName(&'static [&'static str]),
    #[error("missing required key `{0}`")]
    MissingKey(&'static str),
    #[error("invalid value; expected {0}")]
    InvalidValue(&'static str),
    /// A message from serde or a `Deserialize` impl we do not own: it may quote the value, so it is
    /// dropped.
    #[error("invalid value")]
    Unreadable,
    /// One of our validation rules, in words written here in the source.
    #[error("{0}")]
    Rule(&'static str),
    #[error("only applies to provider \"hmac\", not {0:?}")]
    OnlyForHmac(&'static str),
    #[error("only applies to provider \"{allowed}\", not {provider:?}")]
    OnlyFor {
        allowed: &'static str,
        provider: &'static str,
    },
    /// A `[spool]` or `[[sinks]]` entry: our words, the sink's name and key, a credential's
    /// reference, never a credential (see `config::sinks::SinkError`).
    #[error("{0}")]
    Sink(String),
    /// `reason` is our own words about the key's shape, never its text.
    #[error("public key {reference}: {reason}")]
    PublicKey { reference: String, reason: String },
    #[error("provider {0:?} sends no timestamp, so there is no replay window to set")]
    NoTimestamp(&'static str),
    #[error("another hook (hooks[{0}]) already uses this path")]
    DuplicatePath(usize),
    /// `reference` is `env:NAME`, `file:/path` or `(literal)`: which secret, never what it is.
    #[error("secret {reference}: {source}")]
    Secret {
        reference: String,
        source: SecretError,
    },
    #[error("directory {} of the event log does not exist", .0.display())]
    LogDirMissing(PathBuf),
    #[error("{} (the event log's directory) is not a directory", .0.display())]
    LogDirNotDir(PathBuf),
    #[error("directory {} of the event log is not writable by this user: {source}", .dir.display())]
    LogDirNotWritable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists and is {what}, not a regular file", .path.display())]
    LogNotFile { path: PathBuf, what: &'static str },
    #[error("cannot check {}: {source}", .path.display())]
    LogUncheckable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `a`, `b`, `c` for a list of schema names.
struct Names(&'static [&'static str]);

impl fmt::Display for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{n}`")?;
        }
        Ok(())
    }
}

/// A TOML syntax error, by kind. The parser's own message is only classified, never shown: the
/// duplicate-key one quotes a key, and a future one might quote more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Syntax {
    #[error("unclosed or malformed array (expected `]`)")]
    Array,
    #[error("unclosed or malformed inline table (expected `}}`)")]
    InlineTable,
    #[error("unterminated or malformed string")]
    String,
    #[error("missing or malformed value after `=`")]
    Value,
    #[error("malformed table header")]
    TableHeader,
    #[error("expected `=` after the key")]
    ExpectedEquals,
    #[error("unexpected text after the value (one key = value per line)")]
    TrailingText,
    #[error("duplicate key")]
    DuplicateKey,
    #[error("malformed number")]
    Number,
    #[error("malformed date-time")]
    Datetime,
    #[error("a key redefines a table or value defined before")]
    Redefined,
    #[error("malformed key")]
    Key,
    #[error("nested too deeply")]
    TooDeep,
    #[error("malformed TOML")]
    Other,
}

impl Syntax {
    /// Classifies the parser's message (toml_edit 0.22's wording; anything new is [`Syntax::Other`]).
    pub(super) fn classify(message: &str) -> Syntax {
        let first = message.lines().next().unwrap_or_default();
        let table: [(&str, Syntax); 16] = [
            ("duplicate key", Syntax::DuplicateKey),
            ("invalid array", Syntax::Array),
            ("invalid inline table", Syntax::InlineTable),
            ("invalid basic string", Syntax::String),
            ("invalid literal string", Syntax::String),
            ("invalid multiline", Syntax::String),
            ("invalid escape", Syntax::String),
            ("invalid unicode", Syntax::String),
            ("invalid string", Syntax::Value),
            ("invalid table header", Syntax::TableHeader),
            ("expected `.`, `=`", Syntax::ExpectedEquals),
            ("expected newline", Syntax::TrailingText),
            ("invalid key", Syntax::Key),
            ("dotted key", Syntax::Redefined),
            ("recursion limit", Syntax::TooDeep),
            ("invalid date", Syntax::Datetime),
        ];
        if let Some((_, s)) = table.iter().find(|(p, _)| first.starts_with(p)) {
            return *s;
        }
        if ["invalid integer", "invalid float", "invalid number"]
            .iter()
            .any(|p| first.starts_with(p))
        {
            return Syntax::Number;
        }
        if first.contains("time") {
            return Syntax::Datetime;
        }
        Syntax::Other
    }
}

/// The error of our deserializer: a [`Fault`] built from serde's structured calls (never from its
/// formatted messages), and where it happened.
#[derive(Debug)]
pub struct SchemaError {
    pub fault: Fault,
    pub key: Option<KeyPath>,
    pub span: Option<Range<usize>>,
}

impl SchemaError {
    fn new(fault: Fault) -> SchemaError {
        SchemaError {
            fault,
            key: None,
            span: None,
        }
    }

    /// The innermost place wins: a child's error keeps its own key and span.
    pub(super) fn located(mut self, key: &KeyPath, span: Option<Range<usize>>) -> SchemaError {
        if self.key.is_none() {
            self.key = Some(key.clone());
        }
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    pub(super) fn into_problem(self, text: &str) -> Problem {
        let mut p = Problem::new(self.key.unwrap_or_default(), self.fault);
        p.at = self.span.map(|s| LineCol::of(text, s.start));
        p
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fault)
    }
}

impl std::error::Error for SchemaError {}

impl de::Error for SchemaError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        SchemaError::new(Fault::Unreadable)
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        SchemaError::new(Fault::WrongType {
            expected: expected_words(exp),
            found: found_words(&unexp),
        })
    }
    fn invalid_value(_unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        SchemaError::new(Fault::InvalidValue(expected_words(exp)))
    }
    fn invalid_length(_len: usize, exp: &dyn de::Expected) -> Self {
        SchemaError::new(Fault::InvalidValue(expected_words(exp)))
    }
    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        SchemaError::new(Fault::UnknownName(expected))
    }
    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        // The field's name is the last segment of the key path the key's deserializer adds.
        SchemaError::new(Fault::UnknownKey(expected))
    }
    fn missing_field(field: &'static str) -> Self {
        SchemaError::new(Fault::MissingKey(field))
    }
    fn duplicate_field(_field: &'static str) -> Self {
        SchemaError::new(Fault::Syntax(Syntax::DuplicateKey))
    }
}

/// What a visitor expects, in an operator's words. The input is the `expecting` text of our own
/// schema's visitors (never data); it is mapped onto fixed words all the same.
fn expected_words(exp: &dyn de::Expected) -> &'static str {
    let e = exp.to_string();
    match e.as_str() {
        "a sequence" => "an array",
        "a string" | "path string" | "a borrowed string" => "a string",
        "a boolean" => "true or false",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "option" => "a value",
        _ if e.starts_with("struct ") || e == "a map" => "a table",
        _ if e.starts_with("enum ") || e.starts_with("variant identifier") => "one of the names",
        _ => "a value of another type",
    }
}

/// What was found, by kind only.
fn found_words(unexp: &de::Unexpected<'_>) -> &'static str {
    use de::Unexpected as U;
    match unexp {
        U::Bool(_) => "true or false",
        U::Unsigned(_) | U::Signed(_) => "an integer",
        U::Float(_) => "a float",
        U::Char(_) | U::Str(_) => "a string",
        U::Bytes(_) => "bytes",
        U::Unit | U::Option => "nothing",
        U::Seq => "an array",
        U::Map | U::StructVariant | U::NewtypeStruct | U::NewtypeVariant => "a table",
        U::TupleVariant => "an array",
        U::UnitVariant | U::Enum => "a name",
        U::Other("date-time") => "a date-time",
        U::Other(_) => "a value of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_text_in_a_diagnostic_cannot_reorder_or_break_the_line() {
        assert_eq!(
            escape_hostile("x\u{1b}[2J\u{2028}y\u{202e}z\u{2066}"),
            "x\\u{1b}[2J\\u{2028}y\\u{202e}z\\u{2066}"
        );
        assert_eq!(escape_hostile("café.toml"), "café.toml");
    }

    #[test]
    fn line_and_column_count_from_one_in_characters() {
        let text = "a = 1\nbé = [\n";
        assert_eq!(LineCol::of(text, 0), LineCol { line: 1, column: 1 });
        assert_eq!(LineCol::of(text, 6), LineCol { line: 2, column: 1 });
        // After the two-byte `é`: column 3, not 4.
        assert_eq!(LineCol::of(text, 9), LineCol { line: 2, column: 3 });
        assert_eq!(LineCol::of(text, 999), LineCol { line: 3, column: 1 });
        // Inside a character: the character's start.
        assert_eq!(LineCol::of(text, 8), LineCol { line: 2, column: 2 });
    }

    #[test]
    fn key_paths_show_plain_keys_only() {
        let p = KeyPath::hook(2).key("secret");
        assert_eq!(p.to_string(), "hooks[2].secret");
        let odd = KeyPath::root().key("hunter2 with spaces").index(0);
        assert_eq!(odd.to_string(), "<key>[0]");
        assert_eq!(KeyPath::root().key(&"k".repeat(65)).to_string(), "<key>");
    }

    #[test]
    fn control_characters_in_references_are_escaped() {
        let p = Problem::new(
            KeyPath::hook(0).key("secrets").index(0),
            Fault::Secret {
                reference: "file:/run/\u{1b}[2J\u{85}x".into(),
                source: SecretError::Empty,
            },
        );
        let e = ConfigError::Invalid {
            origin: "c\n.toml".into(),
            problems: vec![p],
        };
        let line = &e.lines()[0];
        assert_eq!(
            line,
            "c\\u{a}.toml: hooks[0].secrets[0]: secret file:/run/\\u{1b}[2J\\u{85}x: resolves to an empty secret"
        );
        assert_eq!(&e.to_string(), line);
    }

    #[test]
    fn syntax_messages_are_classified_not_quoted() {
        assert_eq!(
            Syntax::classify("invalid array\nexpected `]`"),
            Syntax::Array
        );
        assert_eq!(
            Syntax::classify("duplicate key `hunter2` in table `hooks`"),
            Syntax::DuplicateKey
        );
        assert_eq!(Syntax::classify("something new: hunter2"), Syntax::Other);
        assert!(!Fault::Syntax(Syntax::Other).to_string().contains("hunter2"));
    }
}
