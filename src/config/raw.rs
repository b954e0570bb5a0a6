//! The configuration file as written, and its validation into a [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::error::{Fault, KeyPath, Problem};
use super::secrets::{describe_reference, resolve_secret};
use super::sinks::{RawSink, RawSpool, SinkDefaults};
use super::{defaults, reserved, AdminConfig, AllowedHost, Config, HookConfig, LogConfig, Mode};
use crate::client_ip::ClientIpHeader;
use crate::event_log::LogFormat;
use crate::payload::PayloadKind;
use crate::signature::providers::standard_webhooks;
use crate::signature::{
    key_len, Algorithm, Encoding, EndpointKind, Key, Provider, PublicKey, Scheme, Verifier,
    MIN_KEY_BYTES,
};

/// The configuration file exactly as written. Unknown keys are refused so that a typo cannot silently
/// leave a hook unprotected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub max_buffered_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub min_body_bytes_per_sec: Option<u64>,
    pub client_share_divisor: Option<usize>,
    pub dedupe_window_secs: Option<u64>,
    pub dedupe_max_entries: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    pub shutdown_timeout_secs: Option<u64>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub client_ip_header: Option<ClientIpHeader>,
    pub pid_file: Option<PathBuf>,
    #[serde(default)]
    pub log: RawLog,
    /// Only named here, so that it is a known key: each hook is read on its own (into `hooks`), so
    /// that one hook's mistake does not hide the next one's.
    #[serde(default, rename = "hooks")]
    pub hooks_table: serde::de::IgnoredAny,
    #[serde(skip)]
    pub hooks: Vec<Option<RawHook>>,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub spool: RawSpool,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
}

/// The `[admin]` table: the operator's listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub recent: Option<usize>,
    pub public_metrics: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
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
    /// `discord` (hex) and `standard-webhooks` (`whpk_…`, for `v1a`): Ed25519 public keys, as
    /// references like secrets. Configuration only: a key is never taken from a request.
    #[serde(default)]
    pub public_keys: Vec<String>,
    /// `twilio` only (required): the webhook URL exactly as configured in Twilio, which Twilio signs.
    pub public_url: Option<String>,
    /// `discord` only (required): which of the application's URLs this hook is.
    pub discord_endpoint: Option<EndpointKind>,
}

impl RawConfig {
    /// Validates every value and resolves every secret reference (as `mode` allows), adding every
    /// problem found to `problems`; a config only when there were none.
    pub(super) fn resolve(self, mode: Mode, problems: &mut Vec<Problem>) -> Option<Config> {
        let before = problems.len();
        let mut rule =
            |key: &str, fault: Fault| problems.push(Problem::new(KeyPath::root().key(key), fault));
        let listen_text = self.listen.as_deref().unwrap_or(defaults::LISTEN);
        let listen = listen_text.parse().ok();
        if listen.is_none() {
            rule(
                "listen",
                Fault::Rule("not an address like 127.0.0.1:8000 or [::]:8000"),
            );
        }
        let max_body_bytes = self.max_body_bytes.unwrap_or(defaults::MAX_BODY_BYTES);
        let request_timeout_secs = self
            .request_timeout_secs
            .unwrap_or(defaults::REQUEST_TIMEOUT_SECS);
        let max_concurrent_requests = self
            .max_concurrent_requests
            .unwrap_or(defaults::MAX_CONCURRENT_REQUESTS);
        let max_buffered_bytes = self
            .max_buffered_bytes
            .unwrap_or(defaults::MAX_BUFFERED_BYTES);
        if max_body_bytes > max_buffered_bytes {
            // Such a body would be answered 503 forever, and its sender would retry forever.
            rule(
                "max_buffered_bytes",
                Fault::Rule("smaller than max_body_bytes: a body of that size could never be held"),
            );
        }
        let min_body_bytes_per_sec = self
            .min_body_bytes_per_sec
            .unwrap_or(defaults::MIN_BODY_BYTES_PER_SEC);
        let client_share_divisor = self
            .client_share_divisor
            .unwrap_or(defaults::CLIENT_SHARE_DIVISOR);
        for (key, value) in [
            ("client_share_divisor", client_share_divisor as u64),
            ("max_body_bytes", max_body_bytes as u64),
            ("max_buffered_bytes", max_buffered_bytes as u64),
            ("request_timeout_secs", request_timeout_secs),
            ("max_concurrent_requests", max_concurrent_requests as u64),
        ] {
            if value == 0 {
                rule(key, Fault::Rule("must be greater than 0"));
            }
        }
        let dedupe_max_entries = self
            .dedupe_max_entries
            .unwrap_or(defaults::DEDUPE_MAX_ENTRIES);
        let trusted_proxies = cidrs(
            &self.trusted_proxies,
            &KeyPath::root().key("trusted_proxies"),
            problems,
        );

        let log = LogConfig {
            file: self
                .log
                .file
                .unwrap_or_else(|| PathBuf::from(defaults::LOG_FILE)),
            format: self.log.format.unwrap_or(defaults::LOG_FORMAT),
            fsync: self.log.fsync.unwrap_or(defaults::FSYNC),
        };
        let log_key = KeyPath::root().key("log").key("file");
        if log.file.as_os_str().is_empty() {
            problems.push(Problem::new(log_key, Fault::Rule("must not be empty")));
        } else if mode == Mode::Check {
            if let Err(fault) = super::check::log_path(&log.file) {
                problems.push(Problem::new(log_key, fault));
            }
        }

        let admin = self.admin.resolve(mode, problems);

        if self.hooks.is_empty() {
            problems.push(Problem::new(
                KeyPath::root().key("hooks"),
                Fault::Rule("at least one [[hooks]] entry is needed"),
            ));
        }
        let hooks = resolve_hooks(self.hooks, mode, problems);

        let spool = match self.spool.resolve(&log.file) {
            Ok(spool) => Some(spool),
            Err(e) => {
                problems.push(Problem::new(
                    KeyPath::root().key("spool"),
                    Fault::Sink(e.to_string()),
                ));
                None
            }
        };
        let dedupe_window = Duration::from_secs(
            self.dedupe_window_secs
                .unwrap_or(defaults::DEDUPE_WINDOW_SECS),
        );
        let shutdown_timeout = Duration::from_secs(
            self.shutdown_timeout_secs
                .unwrap_or(defaults::SHUTDOWN_TIMEOUT_SECS),
        );
        let hook_paths: Vec<&str> = hooks.iter().map(|h| h.path.as_str()).collect();
        let sink_defaults = SinkDefaults {
            hook_paths: &hook_paths,
            dedupe_window,
            shutdown_timeout,
        };
        let mut sinks: Vec<crate::forward::SinkSpec> = Vec::with_capacity(self.sinks.len());
        for (index, raw) in self.sinks.into_iter().enumerate() {
            let at = KeyPath::root().key("sinks").index(index);
            match raw.resolve(index, &sink_defaults, mode != Mode::SyntaxOnly) {
                Err(e) => problems.push(Problem::new(at, Fault::Sink(e.to_string()))),
                Ok(sink) if sinks.iter().any(|s| s.name == sink.name) => {
                    problems.push(Problem::new(
                        at.key("name"),
                        Fault::Rule("another sink already has this name"),
                    ))
                }
                Ok(sink) => sinks.push(sink),
            }
        }
        if let Some(spool) = &spool {
            if !sinks.is_empty() && max_body_bytes as u64 > spool.segment_bytes {
                // A body that cannot fit a segment would be answered 503 forever, its retries too.
                problems.push(Problem::new(
                    KeyPath::root().key("spool").key("segment_bytes"),
                    Fault::Rule(
                        "smaller than max_body_bytes: every accepted body must fit one segment",
                    ),
                ));
            }
        }

        if problems.len() > before {
            return None;
        }
        Some(Config {
            listen: listen?,
            max_body_bytes,
            max_buffered_bytes,
            request_timeout: Duration::from_secs(request_timeout_secs),
            min_body_bytes_per_sec,
            client_share_divisor,
            dedupe_window,
            dedupe_max_entries,
            max_concurrent_requests,
            shutdown_timeout,
            trusted_proxies,
            client_ip_header: self.client_ip_header.unwrap_or_default(),
            pid_file: self.pid_file,
            log,
            admin: admin?,
            hooks,
            spool: spool?,
            sinks,
        })
    }
}

impl RawAdmin {
    /// Like a hook's secrets, the token is a reference (`env:`/`file:`), resolved only when `mode`
    /// allows; a problem names `admin.<key>` and the reference, never the address or the token.
    fn resolve(self, mode: Mode, problems: &mut Vec<Problem>) -> Option<AdminConfig> {
        let before = problems.len();
        let key = |name: &str| KeyPath::root().key("admin").key(name);
        let text = self.listen.as_deref().unwrap_or(defaults::ADMIN_LISTEN);
        let listen = match text.trim() {
            "" => Some(None),
            t => match t.parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(Some(addr)),
                Err(_) => {
                    problems.push(Problem::new(
                        key("listen"),
                        Fault::Rule("not an address like 127.0.0.1:9000 (or \"\" for off)"),
                    ));
                    None
                }
            },
        };
        // The words below say 16.
        const _: () = assert!(MIN_KEY_BYTES == 16);
        let token = match &self.token {
            None => None,
            Some(r) if !(r.starts_with("env:") || r.starts_with("file:")) => {
                problems.push(Problem::new(
                    key("token"),
                    Fault::Rule(
                        "must be env:NAME or file:/path, so the token is not in the config file",
                    ),
                ));
                None
            }
            // Nothing outside the file is looked at: a token reference counts as set.
            Some(_) if mode == Mode::SyntaxOnly => None,
            Some(r) => match resolve_secret(r) {
                Err(source) => {
                    problems.push(Problem::new(
                        key("token"),
                        Fault::Secret {
                            reference: describe_reference(r),
                            source,
                        },
                    ));
                    None
                }
                Ok(t) if t.expose().len() < MIN_KEY_BYTES => {
                    problems.push(Problem::new(
                        key("token"),
                        Fault::Rule("the token is shorter than 16 bytes"),
                    ));
                    None
                }
                Ok(t) => Some(t),
            },
        };
        if let Some(Some(addr)) = listen {
            if !addr.ip().is_loopback() && self.token.is_none() {
                problems.push(Problem::new(
                    key("token"),
                    Fault::Rule("required when admin.listen is not a loopback address: set token = \"env:ADMIN_TOKEN\" or listen on 127.0.0.1"),
                ));
            }
        }
        let mut allowed_hosts = Vec::new();
        for (i, h) in self.allowed_hosts.iter().flatten().enumerate() {
            match AllowedHost::parse(h) {
                Some(AllowedHost::Any) if self.token.is_none() => problems.push(Problem::new(
                    key("allowed_hosts").index(i),
                    Fault::Rule("\"*\" needs a token: without one, any web page a browser on this host opens could read the page through DNS rebinding"),
                )),
                Some(host) => allowed_hosts.push(host),
                None => problems.push(Problem::new(
                    key("allowed_hosts").index(i),
                    Fault::Rule("not a host name like admin.example.com (no scheme, port or path), or \"*\""),
                )),
            }
        }
        let recent = self.recent.unwrap_or(defaults::ADMIN_RECENT);
        if recent == 0 {
            problems.push(Problem::new(
                key("recent"),
                Fault::Rule("must be greater than 0"),
            ));
        }
        if problems.len() > before {
            return None;
        }
        Some(AdminConfig {
            listen: listen?,
            token,
            recent,
            public_metrics: self.public_metrics.unwrap_or(defaults::PUBLIC_METRICS),
            allowed_hosts,
        })
    }
}

/// Validates each hook (`None`: one that did not deserialize, already reported) and the paths
/// across them; the hooks that are valid.
pub(super) fn resolve_hooks(
    raw: Vec<Option<RawHook>>,
    mode: Mode,
    problems: &mut Vec<Problem>,
) -> Vec<HookConfig> {
    let paths: Vec<Option<&str>> = raw
        .iter()
        .map(|h| h.as_ref().map(|h| h.path.as_str()))
        .collect();
    for (index, path) in paths.iter().enumerate() {
        let Some(path) = path else { continue };
        if let Some(first) = paths[..index].iter().position(|p| p == &Some(*path)) {
            let mut p = Problem::new(
                KeyPath::hook(index).key("path"),
                Fault::DuplicatePath(first),
            );
            p.hook = plain_hook_path(path);
            problems.push(p);
        }
    }
    let mut hooks = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        if let Some(hook) = raw.and_then(|r| r.resolve(index, mode, problems)) {
            hooks.push(hook);
        }
    }
    hooks
}

/// The hook's path as messages show it: only a valid one (a plain absolute path), so a value
/// pasted into `path` by mistake is never printed.
fn plain_hook_path(path: &str) -> Option<String> {
    let plain = path.starts_with('/')
        && path.len() <= 200
        && !path.contains(['?', '#', ' '])
        && !path.chars().any(|c| c.is_control() || c.is_whitespace());
    plain.then(|| path.to_string())
}

/// Parses `items` as addresses or CIDRs, naming each bad entry by its index.
fn cidrs(items: &[String], key: &KeyPath, problems: &mut Vec<Problem>) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_cidrs(std::slice::from_ref(item)) {
            Ok(mut one) => out.append(&mut one),
            Err(_) => problems.push(Problem::new(
                key.index(i),
                Fault::Rule("not an address or CIDR like 10.0.0.0/8"),
            )),
        }
    }
    out
}

impl RawHook {
    fn resolve(self, index: usize, mode: Mode, all: &mut Vec<Problem>) -> Option<HookConfig> {
        let mut problems = Vec::new();
        let key = |name: &str| KeyPath::hook(index).key(name);
        let mut rule = |name: &str, fault: Fault| problems.push(Problem::new(key(name), fault));
        if !self.path.starts_with('/') {
            rule("path", Fault::Rule("must start with '/'"));
        }
        if self.path.contains(['?', '#', ' ']) {
            rule(
                "path",
                Fault::Rule("must be a plain path, without '?', '#' or spaces"),
            );
        }
        if let Some(r) = reserved::ALL.iter().find(|r| **r == self.path) {
            rule(
                "path",
                Fault::Rule(if *r == reserved::HEALTHZ {
                    "/healthz is served by webhook-listener itself"
                } else {
                    "/metrics is served by webhook-listener itself"
                }),
            );
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
            let header = self.header.clone();
            if header.is_none() {
                rule(
                    "header",
                    Fault::Rule("required for provider \"hmac\" (e.g. header = \"X-Signature\")"),
                );
            }
            let valid = |h: &str| http::HeaderName::try_from(h).is_ok();
            if header.as_deref().is_some_and(|h| !valid(h)) {
                rule("header", Fault::Rule("not a valid header name"));
            }
            for (key, name) in [
                ("delivery_id_header", &self.delivery_id_header),
                ("event_header", &self.event_header),
            ] {
                if name.as_deref().is_some_and(|h| !valid(h)) {
                    rule(key, Fault::Rule("not a valid header name"));
                }
            }
            header.map(|header| Scheme::Hmac {
                header: header.to_ascii_lowercase(),
                algorithm: self.algorithm.unwrap_or(Algorithm::Sha256),
                encoding: self.encoding.unwrap_or(Encoding::Hex),
                prefix: self.prefix.clone().unwrap_or_default(),
                delivery_id_header: self
                    .delivery_id_header
                    .clone()
                    .map(|h| h.to_ascii_lowercase()),
                event_header: self.event_header.clone().map(|h| h.to_ascii_lowercase()),
            })
        } else {
            for (name, _) in generic_keys.iter().filter(|(_, set)| *set) {
                rule(name, Fault::OnlyForHmac(self.provider.name()));
            }
            self.provider_scheme(&mut rule)
        };

        if self.tolerance_secs.is_some() && scheme.as_ref().is_some_and(|s| !s.signs_timestamp()) {
            rule("tolerance_secs", Fault::NoTimestamp(self.provider.name()));
        }
        let payload = self.payload.unwrap_or(match self.provider {
            Provider::Netbox => PayloadKind::Netbox,
            // Twilio's webhooks are forms; its JSON bodies are kept as sent too.
            Provider::Twilio => PayloadKind::Raw,
            _ => PayloadKind::Json,
        });
        let allow_ips = cidrs(&self.allow_ips, &key("allow_ips"), &mut problems);

        let public_keys = match &scheme {
            Some(scheme) => self.public_keys(scheme, index, mode, &mut problems),
            None => Vec::new(),
        };
        let takes_secrets = scheme.as_ref().is_none_or(|s| s.takes_secrets());
        if !takes_secrets && !self.secrets.is_empty() {
            problems.push(Problem::new(
                key("secrets"),
                Fault::Rule("this provider verifies with public_keys (the application's public key), not secrets"),
            ));
        }
        if self.allow_unsigned {
            if !self.secrets.is_empty() || !self.public_keys.is_empty() {
                problems.push(Problem::new(key("allow_unsigned"), Fault::Rule(
                    "a hook with secrets always verifies them; remove either allow_unsigned or secrets",
                )));
            }
        } else if !takes_secrets && self.public_keys.is_empty() {
            problems.push(Problem::new(
                key("public_keys"),
                Fault::Rule("at least one public key is required for this provider"),
            ));
        } else if takes_secrets && self.secrets.is_empty() && self.public_keys.is_empty() {
            problems.push(Problem::new(key("secrets"), Fault::Rule(
                "at least one secret is required (or set allow_unsigned = true to accept unsigned requests)",
            )));
        }
        // Each secret becomes its scheme's key here, so a secret the scheme cannot use is refused
        // naming its reference, and a config that loads always builds its runtime.
        let mut keys = Vec::with_capacity(self.secrets.len());
        let mut short_secrets = Vec::new();
        let mut unresolved_secrets = Vec::new();
        for (i, reference) in self.secrets.iter().enumerate() {
            let outside = reference.starts_with("env:") || reference.starts_with("file:");
            if mode == Mode::SyntaxOnly && outside {
                unresolved_secrets.push(describe_reference(reference));
                continue;
            }
            let key = resolve_secret(reference).and_then(|secret| {
                let Some(scheme) = &scheme else {
                    return Ok(None);
                };
                let key = Key::new(scheme, &secret)?;
                if key_len(scheme, &secret)? < MIN_KEY_BYTES {
                    short_secrets.push(describe_reference(reference));
                }
                Ok(Some(key))
            });
            match key {
                Ok(Some(k)) => keys.push(k),
                Ok(None) => {}
                Err(source) => problems.push(Problem::new(
                    key_path_of_secret(index, i),
                    Fault::Secret {
                        reference: describe_reference(reference),
                        source,
                    },
                )),
            }
        }
        let tolerance = Duration::from_secs(
            self.tolerance_secs
                .or(scheme.as_ref().and_then(|s| s.default_tolerance_secs()))
                .unwrap_or(defaults::TOLERANCE_SECS),
        );

        let label = plain_hook_path(&self.path);
        let failed = !problems.is_empty();
        all.extend(problems.into_iter().map(|mut p| {
            p.hook = label.clone();
            p
        }));
        if failed {
            return None;
        }
        Some(HookConfig {
            path: self.path,
            verifier: Verifier::from_keys(scheme?, keys, tolerance, self.allow_unsigned)
                .with_public_keys(public_keys),
            payload,
            allow_ips,
            short_secrets,
            unresolved_secrets,
        })
    }
}

impl RawHook {
    /// The scheme of a named provider with its own keys (`public_url`, `discord_endpoint`), each
    /// refused on a provider it does not apply to; `None` (reported) when they do not make one.
    fn provider_scheme(&self, rule: &mut dyn FnMut(&str, Fault)) -> Option<Scheme> {
        if self.public_url.is_some() && self.provider != Provider::Twilio {
            rule(
                "public_url",
                Fault::OnlyFor {
                    allowed: "twilio",
                    provider: self.provider.name(),
                },
            );
        }
        if self.discord_endpoint.is_some() && self.provider != Provider::Discord {
            rule(
                "discord_endpoint",
                Fault::OnlyFor {
                    allowed: "discord",
                    provider: self.provider.name(),
                },
            );
        }
        match self.provider {
            Provider::Twilio => {
                let Some(url) = self.public_url.clone() else {
                    rule("public_url", Fault::Rule("required for provider \"twilio\": the webhook URL exactly as configured in Twilio (it signs that URL, which a receiver behind a proxy cannot see)"));
                    return None;
                };
                let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
                let host = rest.split('/').next().unwrap_or("");
                if !matches!(scheme, "http" | "https") || host.is_empty() {
                    rule(
                        "public_url",
                        Fault::Rule("not an http:// or https:// URL with a host"),
                    );
                    return None;
                }
                if url.contains(['?', '#']) {
                    rule("public_url", Fault::Rule("has a query or fragment; give the URL without it (the query of each request is appended as received)"));
                    return None;
                }
                Some(Scheme::Twilio { public_url: url })
            }
            Provider::Discord => {
                let Some(endpoint) = self.discord_endpoint else {
                    rule("discord_endpoint", Fault::Rule("required for provider \"discord\": \"interactions\" (Interactions Endpoint URL) or \"webhook-events\" (Webhook Events URL)"));
                    return None;
                };
                Some(Scheme::Discord {
                    endpoint,
                    replay_window: self.tolerance_secs.is_some(),
                })
            }
            p => Some(Scheme::from_provider(p)),
        }
    }

    /// The hook's Ed25519 keys, each resolved like a secret (`--syntax-only` leaves `env:`/`file:`
    /// ones alone) and checked strictly (no small-order or non-canonical point); problems are named
    /// by position and reference.
    fn public_keys(
        &self,
        scheme: &Scheme,
        index: usize,
        mode: Mode,
        problems: &mut Vec<Problem>,
    ) -> Vec<PublicKey> {
        let key = KeyPath::hook(index).key("public_keys");
        if !self.public_keys.is_empty() && !scheme.takes_public_keys() {
            problems.push(Problem::new(
                key,
                Fault::OnlyFor {
                    allowed: "discord\" and \"standard-webhooks",
                    provider: self.provider.name(),
                },
            ));
            return Vec::new();
        }
        let mut keys = Vec::new();
        for (i, reference) in self.public_keys.iter().enumerate() {
            let outside = reference.starts_with("env:") || reference.starts_with("file:");
            if mode == Mode::SyntaxOnly && outside {
                continue;
            }
            let parsed = match resolve_secret(reference) {
                Err(source) => Err(Fault::Secret {
                    reference: describe_reference(reference),
                    source,
                }),
                Ok(text) => match std::str::from_utf8(text.expose()) {
                    Err(_) => Err(Fault::PublicKey {
                        reference: describe_reference(reference),
                        reason: "not text".into(),
                    }),
                    Ok(text) => match scheme {
                        // Discord's developer portal shows the application's public key as hex.
                        Scheme::Discord { .. } => PublicKey::from_hex(text),
                        _ => standard_webhooks::parse_public_key(text),
                    }
                    .map_err(|e| Fault::PublicKey {
                        reference: describe_reference(reference),
                        reason: e.0,
                    }),
                },
            };
            match parsed {
                Ok(k) => keys.push(k),
                Err(fault) => problems.push(Problem::new(key.index(i), fault)),
            }
        }
        keys
    }
}

fn key_path_of_secret(hook: usize, i: usize) -> KeyPath {
    KeyPath::hook(hook).key("secrets").index(i)
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
