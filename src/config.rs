//! Configuration: the TOML shape operators write, its defaults, validation, and secret resolution.
//!
//! Loading is two steps so each can fail with a message that names the culprit: [`RawConfig`] is the
//! file as written (unknown keys are errors), and [`Config`] is the validated, resolved form the
//! server runs with (secrets read from env/files, addresses parsed).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::signature::{Algorithm, Encoding, Provider, Scheme};

/// The documented default configuration, compiled in so the binary runs with no file at all.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

/// Defaults, each chosen for a webhook sender's typical traffic.
pub mod defaults {
    /// 1,000,000 bytes: far above any NetBox/GitHub payload, small enough that a flood cannot exhaust memory.
    pub const MAX_BODY_BYTES: usize = 1_000_000;
    /// Senders time out after 10-30 s; a client slower than this is stalling, not sending.
    pub const REQUEST_TIMEOUT_SECS: u64 = 10;
    /// Senders retry for minutes, not hours; ten minutes catches the retries of a slow acknowledgement.
    pub const DEDUPE_WINDOW_SECS: u64 = 600;
    /// Bounds the duplicate-detection memory to a few MB whatever the traffic.
    pub const DEDUPE_MAX_ENTRIES: usize = 100_000;
    /// Beyond this many requests in flight we answer 503 + Retry-After instead of queueing without bound.
    pub const MAX_CONCURRENT_REQUESTS: usize = 1024;
    /// Docker's default stop grace period is 10 s.
    pub const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
    /// Standard Webhooks, Stripe and Slack all document five minutes.
    pub const TOLERANCE_SECS: u64 = 300;
}

/// Why a configuration was refused. Every variant names the key, file or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("hooks[{index}] ({path}): {message}")]
    Hook {
        index: usize,
        path: String,
        message: String,
    },
    #[error("hooks[{index}] ({path}): secret {reference}: {message}")]
    Secret {
        index: usize,
        path: String,
        reference: String,
        message: String,
    },
}

/// The configuration file exactly as written. Unknown keys are refused so that a typo cannot silently
/// leave a hook unprotected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub dedupe_window_secs: Option<u64>,
    pub dedupe_max_entries: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub hooks: Vec<RawHook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub file: Option<PathBuf>,
    pub format: Option<LogFormat>,
    pub fsync: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub path: String,
    pub provider: Provider,
    #[serde(default)]
    pub secrets: Vec<String>,
    pub payload: Option<PayloadKind>,
    pub tolerance_secs: Option<u64>,
    #[serde(default)]
    pub allow_unsigned: bool,
    #[serde(default)]
    pub allow_ips: Vec<String>,
    /// Generic `hmac` provider only: the header that carries the signature.
    pub header: Option<String>,
    /// Generic `hmac` provider only.
    pub algorithm: Option<Algorithm>,
    /// Generic `hmac` provider only.
    pub encoding: Option<Encoding>,
    /// Generic `hmac` provider only: text before the signature, e.g. `sha256=`.
    pub prefix: Option<String>,
    /// Generic `hmac` provider only: a header whose value identifies a delivery (for de-duplication).
    pub delivery_id_header: Option<String>,
}

/// How the event log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` fields then the payload as compact JSON: for people reading `tail -f`.
    Text,
    /// One JSON object per line: for log shippers and `jq`.
    Json,
}

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

/// A secret's bytes. `Debug` never shows them, so a config dump or error cannot leak one.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub dedupe_window: Duration,
    pub dedupe_max_entries: usize,
    pub max_concurrent_requests: usize,
    pub shutdown_timeout: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub log: LogConfig,
    pub hooks: Vec<HookConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub file: PathBuf,
    pub format: LogFormat,
    pub fsync: bool,
}

/// One hook, ready to verify requests.
#[derive(Debug, Clone)]
pub struct HookConfig {
    pub path: String,
    pub scheme: Scheme,
    pub payload: PayloadKind,
    /// Empty only when `allow_unsigned` was set explicitly.
    pub secrets: Vec<Secret>,
    pub tolerance: Duration,
    pub allow_unsigned: bool,
    pub allow_ips: Vec<IpNet>,
}

/// Paths the server answers itself; a hook cannot take them.
pub const RESERVED_PATHS: &[&str] = &["/healthz", "/metrics"];

impl Config {
    /// Loads `path`, or the embedded default when `None`, and resolves every secret.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (
                EMBEDDED_DEFAULT.to_string(),
                "(embedded default)".to_string(),
            ),
        };
        Self::from_toml(&text, &origin)
    }

    /// Parses and resolves TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        raw.resolve()
    }
}

impl RawConfig {
    /// Validates every value and resolves every secret reference.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen_text = self.listen.as_deref().unwrap_or("0.0.0.0:8000");
        let listen = listen_text.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen: {listen_text:?} is not an address like 127.0.0.1:8000 or [::]:8000"
            ))
        })?;
        let max_body_bytes = self.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES);
        positive("max_body_bytes", max_body_bytes as u64)?;
        let request_timeout_secs = self
            .request_timeout_secs
            .unwrap_or(defaults::REQUEST_TIMEOUT_SECS);
        positive("request_timeout_secs", request_timeout_secs)?;
        let max_concurrent_requests = self
            .max_concurrent_requests
            .unwrap_or(defaults::MAX_CONCURRENT_REQUESTS);
        positive("max_concurrent_requests", max_concurrent_requests as u64)?;
        let dedupe_max_entries = self
            .dedupe_max_entries
            .unwrap_or(defaults::DEDUPE_MAX_ENTRIES);
        let trusted_proxies = parse_cidrs(&self.trusted_proxies)
            .map_err(|bad| ConfigError::Invalid(format!("trusted_proxies: {bad}")))?;

        let log = LogConfig {
            file: self
                .log
                .file
                .unwrap_or_else(|| PathBuf::from("webhook-listener.log")),
            format: self.log.format.unwrap_or(LogFormat::Text),
            fsync: self.log.fsync.unwrap_or(true),
        };
        if log.file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("log.file: must not be empty".into()));
        }

        if self.hooks.is_empty() {
            return Err(ConfigError::Invalid(
                "hooks: at least one [[hooks]] entry is needed".into(),
            ));
        }
        let mut hooks: Vec<HookConfig> = Vec::with_capacity(self.hooks.len());
        for (index, raw) in self.hooks.into_iter().enumerate() {
            let hook = raw.resolve(index)?;
            if hooks.iter().any(|h| h.path == hook.path) {
                return Err(ConfigError::Hook {
                    index,
                    path: hook.path,
                    message: "path: another hook already uses this path".into(),
                });
            }
            hooks.push(hook);
        }

        Ok(Config {
            listen,
            max_body_bytes,
            request_timeout: Duration::from_secs(request_timeout_secs),
            dedupe_window: Duration::from_secs(
                self.dedupe_window_secs
                    .unwrap_or(defaults::DEDUPE_WINDOW_SECS),
            ),
            dedupe_max_entries,
            max_concurrent_requests,
            shutdown_timeout: Duration::from_secs(
                self.shutdown_timeout_secs
                    .unwrap_or(defaults::SHUTDOWN_TIMEOUT_SECS),
            ),
            trusted_proxies,
            log,
            hooks,
        })
    }
}

impl RawHook {
    fn resolve(self, index: usize) -> Result<HookConfig, ConfigError> {
        let path = self.path.clone();
        let err = |message: String| ConfigError::Hook {
            index,
            path: path.clone(),
            message,
        };
        if !self.path.starts_with('/') {
            return Err(err("path: must start with '/'".into()));
        }
        if self.path.contains(['?', '#', ' ']) {
            return Err(err(
                "path: must be a plain path, without '?', '#' or spaces".into(),
            ));
        }
        if RESERVED_PATHS.contains(&self.path.as_str()) {
            return Err(err(format!(
                "path: {} is served by webhook-listener itself",
                self.path
            )));
        }

        let generic_keys = [
            ("header", self.header.is_some()),
            ("algorithm", self.algorithm.is_some()),
            ("encoding", self.encoding.is_some()),
            ("prefix", self.prefix.is_some()),
            ("delivery_id_header", self.delivery_id_header.is_some()),
        ];
        let scheme = if self.provider == Provider::Hmac {
            let header = self.header.clone().ok_or_else(|| {
                err("header: required for provider \"hmac\" (e.g. header = \"X-Signature\")".into())
            })?;
            http::HeaderName::try_from(header.as_str())
                .map_err(|_| err(format!("header: {header:?} is not a valid header name")))?;
            if let Some(d) = &self.delivery_id_header {
                http::HeaderName::try_from(d.as_str()).map_err(|_| {
                    err(format!(
                        "delivery_id_header: {d:?} is not a valid header name"
                    ))
                })?;
            }
            Scheme::Hmac {
                header: header.to_ascii_lowercase(),
                algorithm: self.algorithm.unwrap_or(Algorithm::Sha256),
                encoding: self.encoding.unwrap_or(Encoding::Hex),
                prefix: self.prefix.clone().unwrap_or_default(),
                delivery_id_header: self.delivery_id_header.map(|h| h.to_ascii_lowercase()),
            }
        } else {
            if let Some((key, _)) = generic_keys.iter().find(|(_, set)| *set) {
                return Err(err(format!(
                    "{key}: only applies to provider \"hmac\", not {:?}",
                    self.provider.name()
                )));
            }
            Scheme::from_provider(self.provider)
        };

        if self.tolerance_secs.is_some() && !scheme.has_timestamp() {
            return Err(err(format!(
                "tolerance_secs: provider {:?} sends no timestamp, so there is no replay window to set",
                self.provider.name()
            )));
        }
        let payload = self
            .payload
            .unwrap_or(if self.provider == Provider::Netbox {
                PayloadKind::Netbox
            } else {
                PayloadKind::Json
            });
        let allow_ips =
            parse_cidrs(&self.allow_ips).map_err(|bad| err(format!("allow_ips: {bad}")))?;

        if self.allow_unsigned {
            if !self.secrets.is_empty() {
                return Err(err(
                    "allow_unsigned: a hook with secrets always verifies them; remove either allow_unsigned or secrets"
                        .into(),
                ));
            }
        } else if self.secrets.is_empty() {
            return Err(err(
                "secrets: at least one secret is required (or set allow_unsigned = true to accept unsigned requests)"
                    .into(),
            ));
        }
        let mut secrets = Vec::with_capacity(self.secrets.len());
        for reference in &self.secrets {
            let secret = resolve_secret(reference).map_err(|message| ConfigError::Secret {
                index,
                path: path.clone(),
                reference: describe_reference(reference),
                message,
            })?;
            scheme
                .check_secret(&secret)
                .map_err(|message| ConfigError::Secret {
                    index,
                    path: path.clone(),
                    reference: describe_reference(reference),
                    message,
                })?;
            secrets.push(secret);
        }

        Ok(HookConfig {
            path: self.path,
            scheme,
            payload,
            secrets,
            tolerance: Duration::from_secs(self.tolerance_secs.unwrap_or(defaults::TOLERANCE_SECS)),
            allow_unsigned: self.allow_unsigned,
            allow_ips,
        })
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::Invalid(format!(
            "{key}: must be greater than 0"
        )))
    } else {
        Ok(())
    }
}

/// Parses CIDRs; a bare address means that single host.
pub fn parse_cidrs(items: &[String]) -> Result<Vec<IpNet>, String> {
    items
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or CIDR like 10.0.0.0/8"))
        })
        .collect()
}

/// How a reference is named in messages: `env:`/`file:` references in full, literals never.
fn describe_reference(reference: &str) -> String {
    if reference.starts_with("env:") || reference.starts_with("file:") {
        reference.to_string()
    } else {
        "(literal)".to_string()
    }
}

/// Resolves `env:NAME`, `file:/path` (one trailing newline trimmed), `literal:VALUE` or a literal.
pub fn resolve_secret(reference: &str) -> Result<Secret, String> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable {name} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable {name} is not valid UTF-8"))
            }
        }
    } else if let Some(file) = reference.strip_prefix("file:") {
        // Bounded: a secret is short, and `file:/dev/zero` must fail, not hang start-up.
        const MAX_SECRET_FILE: u64 = 64 * 1024;
        let mut v = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                std::fs::File::open(file)
                    .map_err(|e| format!("cannot read secret file {file}: {e}"))?,
                MAX_SECRET_FILE + 1,
            ),
            &mut v,
        )
        .map_err(|e| format!("cannot read secret file {file}: {e}"))?;
        if v.len() as u64 > MAX_SECRET_FILE {
            return Err(format!(
                "secret file {file} is larger than {MAX_SECRET_FILE} bytes"
            ));
        }
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        v
    } else if let Some(literal) = reference.strip_prefix("literal:") {
        literal.to_string()
    } else {
        reference.to_string()
    };
    if value.is_empty() {
        return Err("resolves to an empty secret".to_string());
    }
    Ok(Secret::new(value.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[hooks]]
        path = "/webhook/"
        provider = "netbox"
        secrets = ["literal:abc"]
    "#;

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = Config::from_toml(MINIMAL, "test").unwrap();
        assert_eq!(c.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(c.max_body_bytes, 1_000_000);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.log.file, PathBuf::from("webhook-listener.log"));
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.log.fsync);
        assert_eq!(c.hooks[0].payload, PayloadKind::Netbox);
        assert_eq!(c.hooks[0].secrets[0].expose(), b"abc");
    }

    #[test]
    fn embedded_default_resolves_with_env_secret() {
        // Only this test touches WEBHOOK_SECRET_FOR_UNIT_TEST, so parallel tests cannot race on it.
        let text = EMBEDDED_DEFAULT.replace("WEBHOOK_SECRET", "WEBHOOK_SECRET_FOR_UNIT_TEST");
        let err = Config::from_toml(&text, "default").unwrap_err().to_string();
        assert!(
            err.contains("WEBHOOK_SECRET_FOR_UNIT_TEST is not set"),
            "{err}"
        );
        std::env::set_var("WEBHOOK_SECRET_FOR_UNIT_TEST", "s3cret");
        let c = Config::from_toml(&text, "default").unwrap();
        assert_eq!(c.hooks[0].path, "/webhook/");
        assert_eq!(c.hooks[0].secrets[0].expose(), b"s3cret");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml(&format!("lisen = \"x\"\n{MINIMAL}"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = Config::from_toml(&MINIMAL.replace("secrets", "secret"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret"), "{err}");
    }

    #[test]
    fn unknown_provider_is_named() {
        let err = Config::from_toml(&MINIMAL.replace("netbox", "netbux"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("netbux"), "{err}");
    }

    #[test]
    fn missing_secrets_need_explicit_allow_unsigned() {
        let text = MINIMAL.replace("secrets = [\"literal:abc\"]", "");
        let err = Config::from_toml(&text, "t").unwrap_err().to_string();
        assert!(err.contains("allow_unsigned"), "{err}");
        let ok = Config::from_toml(&format!("{text}\nallow_unsigned = true"), "t").unwrap();
        assert!(ok.hooks[0].allow_unsigned);
    }

    #[test]
    fn file_secret_trims_one_trailing_newline_and_names_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(
            resolve_secret(&format!("file:{}", f.display()))
                .unwrap()
                .expose(),
            b"from-file"
        );
        let err = resolve_secret("file:/dev/zero").unwrap_err();
        assert!(err.contains("/dev/zero"), "{err}");
        let err = resolve_secret("file:/nonexistent/secret").unwrap_err();
        assert!(err.contains("/nonexistent/secret"), "{err}");
        std::fs::write(&f, "\n").unwrap();
        assert!(resolve_secret(&format!("file:{}", f.display())).is_err());
    }

    #[test]
    fn literal_secret_is_never_in_errors_or_debug() {
        let text = MINIMAL.replace("literal:abc", "hunter2-very-secret");
        let c = Config::from_toml(&text, "t").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let bad = text.replace("/webhook/", "webhook");
        assert!(!Config::from_toml(&bad, "t")
            .unwrap_err()
            .to_string()
            .contains("hunter2"));
    }

    #[test]
    fn duplicate_and_reserved_paths_are_refused() {
        let twice = format!("{MINIMAL}{MINIMAL}");
        assert!(Config::from_toml(&twice, "t")
            .unwrap_err()
            .to_string()
            .contains("another hook"));
        let reserved = MINIMAL.replace("/webhook/", "/healthz");
        assert!(Config::from_toml(&reserved, "t").is_err());
    }

    #[test]
    fn generic_keys_only_on_hmac_provider() {
        let text = format!("{MINIMAL}header = \"X-Sig\"\n");
        let err = Config::from_toml(&text, "t").unwrap_err().to_string();
        assert!(err.contains("header"), "{err}");
        let generic = r#"
            [[hooks]]
            path = "/h"
            provider = "hmac"
            header = "X-Signature"
            algorithm = "sha1"
            encoding = "base64"
            prefix = "sha1="
            secrets = ["k"]
        "#;
        let c = Config::from_toml(generic, "t").unwrap();
        assert!(matches!(
            c.hooks[0].scheme,
            Scheme::Hmac {
                algorithm: Algorithm::Sha1,
                encoding: Encoding::Base64,
                ..
            }
        ));
        assert_eq!(c.hooks[0].payload, PayloadKind::Json);
    }

    #[test]
    fn bad_listen_and_cidr_are_named() {
        let err = Config::from_toml(&format!("listen = \"nope\"\n{MINIMAL}"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::from_toml(
            &format!("trusted_proxies = [\"10.0.0.0/33\"]\n{MINIMAL}"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn tolerance_only_for_timestamped_schemes() {
        let err = Config::from_toml(&format!("{MINIMAL}tolerance_secs = 60\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tolerance_secs"), "{err}");
    }
}
