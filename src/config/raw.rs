//! The configuration file as written, and its validation into a [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::secrets::{describe_reference, resolve_secret};
use super::{defaults, reserved, AdminConfig, Config, ConfigError, HookConfig, LogConfig};
use crate::client_ip::ClientIpHeader;
use crate::event_log::LogFormat;
use crate::payload::PayloadKind;
use crate::signature::{
    key_len, Algorithm, Encoding, Key, Provider, Scheme, Verifier, MIN_KEY_BYTES,
};

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
    pub client_ip_header: Option<ClientIpHeader>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub hooks: Vec<RawHook>,
}

/// The `[admin]` table: the operator's listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub recent: Option<usize>,
    pub public_metrics: Option<bool>,
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
    /// Generic `hmac` provider only: a header whose value names the event type.
    pub event_header: Option<String>,
}

impl RawConfig {
    /// Validates every value and resolves every secret reference.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let listen_text = self.listen.as_deref().unwrap_or(defaults::LISTEN);
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
                .unwrap_or_else(|| PathBuf::from(defaults::LOG_FILE)),
            format: self.log.format.unwrap_or(defaults::LOG_FORMAT),
            fsync: self.log.fsync.unwrap_or(defaults::FSYNC),
        };
        if log.file.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("log.file: must not be empty".into()));
        }

        let admin = self.admin.resolve()?;

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
            client_ip_header: self.client_ip_header.unwrap_or_default(),
            log,
            admin,
            hooks,
        })
    }
}

impl RawAdmin {
    fn resolve(self) -> Result<AdminConfig, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(format!("admin.{m}"));
        let text = self.listen.as_deref().unwrap_or(defaults::ADMIN_LISTEN);
        let listen = match text.trim() {
            "" => None,
            t => Some(t.parse::<std::net::SocketAddr>().map_err(|_| {
                invalid(format!(
                    "listen: {text:?} is not an address like 127.0.0.1:9000 (or \"\" for off)"
                ))
            })?),
        };
        let token = match &self.token {
            None => None,
            Some(r) if !(r.starts_with("env:") || r.starts_with("file:")) => {
                return Err(invalid(
                    "token: must be env:NAME or file:/path, so the token is not in the config file"
                        .into(),
                ))
            }
            Some(r) => {
                let t = resolve_secret(r)
                    .map_err(|e| invalid(format!("token: {}: {e}", describe_reference(r))))?;
                if t.expose().len() < MIN_KEY_BYTES {
                    return Err(invalid(format!(
                        "token: {} is shorter than {MIN_KEY_BYTES} bytes",
                        describe_reference(r)
                    )));
                }
                Some(t)
            }
        };
        if let Some(addr) = listen {
            if !addr.ip().is_loopback() && token.is_none() {
                return Err(invalid(format!(
                    "token: required when admin.listen ({addr}) is not a loopback address: set token = \"env:ADMIN_TOKEN\" or listen on 127.0.0.1"
                )));
            }
        }
        let recent = self.recent.unwrap_or(defaults::ADMIN_RECENT);
        positive("admin.recent", recent as u64)?;
        Ok(AdminConfig {
            listen,
            token,
            recent,
            public_metrics: self.public_metrics.unwrap_or(defaults::PUBLIC_METRICS),
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
        if reserved::ALL.contains(&self.path.as_str()) {
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
            ("event_header", self.event_header.is_some()),
        ];
        let scheme = if self.provider == Provider::Hmac {
            let header = self.header.clone().ok_or_else(|| {
                err("header: required for provider \"hmac\" (e.g. header = \"X-Signature\")".into())
            })?;
            http::HeaderName::try_from(header.as_str())
                .map_err(|_| err(format!("header: {header:?} is not a valid header name")))?;
            for (key, name) in [
                ("delivery_id_header", &self.delivery_id_header),
                ("event_header", &self.event_header),
            ] {
                if let Some(d) = name {
                    http::HeaderName::try_from(d.as_str())
                        .map_err(|_| err(format!("{key}: {d:?} is not a valid header name")))?;
                }
            }
            Scheme::Hmac {
                header: header.to_ascii_lowercase(),
                algorithm: self.algorithm.unwrap_or(Algorithm::Sha256),
                encoding: self.encoding.unwrap_or(Encoding::Hex),
                prefix: self.prefix.clone().unwrap_or_default(),
                delivery_id_header: self.delivery_id_header.map(|h| h.to_ascii_lowercase()),
                event_header: self.event_header.map(|h| h.to_ascii_lowercase()),
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
        // Each secret becomes its scheme's key here, so a secret the scheme cannot use is refused
        // naming its reference, and a config that loads always builds its runtime.
        let mut keys = Vec::with_capacity(self.secrets.len());
        let mut short_secrets = Vec::new();
        for reference in &self.secrets {
            let key = resolve_secret(reference)
                .and_then(|secret| {
                    let key = Key::new(&scheme, &secret)?;
                    if key_len(&scheme, &secret)? < MIN_KEY_BYTES {
                        short_secrets.push(describe_reference(reference));
                    }
                    Ok(key)
                })
                .map_err(|source| ConfigError::Secret {
                    index,
                    path: path.clone(),
                    reference: describe_reference(reference),
                    source,
                })?;
            keys.push(key);
        }
        let tolerance =
            Duration::from_secs(self.tolerance_secs.unwrap_or(defaults::TOLERANCE_SECS));

        Ok(HookConfig {
            path: self.path,
            verifier: Verifier::from_keys(scheme, keys, tolerance, self.allow_unsigned),
            payload,
            allow_ips,
            short_secrets,
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

/// An entry of `trusted_proxies` or `allow_ips` that is neither an address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or CIDR like 10.0.0.0/8")]
pub struct BadCidr(pub String);

/// Parses CIDRs; a bare address means that single host.
pub fn parse_cidrs(items: &[String]) -> Result<Vec<IpNet>, BadCidr> {
    items
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| BadCidr(s.clone()))
        })
        .collect()
}
