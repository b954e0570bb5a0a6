//! `[spool]` and `[[sinks]]`: as written, and validated into the forwarding settings. Credentials
//! are references (`env:NAME`, `file:/path`, `literal:VALUE` or a literal) resolved with the same
//! code as hook secrets; messages name the sink, the key and the reference, never a value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::secrets::SecretError;
use super::secrets::{describe_reference, resolve_secret};
use crate::forward::nats::{NatsAuth, NatsConfig, DEFAULT_SUBJECT};
use crate::forward::redis::{RedisConfig, DEFAULT_MAXLEN};
use crate::forward::runner::DEFAULT_MAX_BATCH;
use crate::forward::spool::validate_sink_name;
use crate::forward::{EventFilter, RunnerConfig, SinkKind, SinkSpec, SpoolConfig};

/// A `[spool]` or `[[sinks]]` entry refused; the config's formatter places it (file, line, key path).
/// Messages are our words plus the sink's name and key and a credential's reference, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Invalid(String),
    #[error("sink {name:?}: {message}")]
    Sink {
        index: usize,
        name: String,
        message: String,
    },
    #[error("sink {name:?}: {key} {reference}: {source}")]
    SinkSecret {
        index: usize,
        name: String,
        key: &'static str,
        reference: String,
        source: SecretError,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub dir: Option<PathBuf>,
    pub max_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawSinkKind {
    Nats,
    Redis,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub name: String,
    pub kind: RawSinkKind,
    pub url: String,
    pub hooks: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    /// NATS only.
    pub subject: Option<String>,
    pub stream: Option<String>,
    /// Redis only.
    pub maxlen: Option<u64>,
    pub required: Option<bool>,
    pub required_timeout_secs: Option<u64>,
    pub max_in_flight: Option<usize>,
    /// With `max_in_flight = 1`: events per delivery, in order.
    pub max_batch: Option<usize>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// NATS only.
    pub token: Option<String>,
    /// NATS only: a `.creds` file path.
    pub creds: Option<String>,
}

/// The spool's directory when `[spool] dir` is not set: beside the event log.
pub fn default_spool_dir(log_file: &Path) -> PathBuf {
    let parent = log_file.parent().unwrap_or(Path::new(""));
    parent.join(defaults::SPOOL_DIR_NAME)
}

impl RawSpool {
    pub fn resolve(self, log_file: &Path) -> Result<SpoolConfig, SinkError> {
        let max_bytes = self.max_bytes.unwrap_or(defaults::SPOOL_MAX_BYTES);
        let segment_bytes = self.segment_bytes.unwrap_or(defaults::SPOOL_SEGMENT_BYTES);
        if segment_bytes == 0 || segment_bytes.saturating_mul(2) > max_bytes {
            return Err(SinkError::Invalid(format!(
                "spool.segment_bytes: {segment_bytes} must be positive and at most half of spool.max_bytes ({max_bytes}), so that deleting passed segments frees room"
            )));
        }
        let dir = self.dir.unwrap_or_else(|| default_spool_dir(log_file));
        if dir.as_os_str().is_empty() {
            return Err(SinkError::Invalid("spool.dir: must not be empty".into()));
        }
        Ok(SpoolConfig {
            dir,
            max_bytes,
            segment_bytes,
        })
    }
}

/// What every sink shares from the top-level settings.
pub struct SinkDefaults<'a> {
    pub hook_paths: &'a [&'a str],
    pub dedupe_window: Duration,
    pub shutdown_timeout: Duration,
}

impl RawSink {
    /// `resolve_credentials`: false for `check-config --syntax-only`, which reads no `env:` or
    /// `file:` reference (a placeholder stands in).
    pub fn resolve(
        self,
        index: usize,
        d: &SinkDefaults,
        resolve_credentials: bool,
    ) -> Result<SinkSpec, SinkError> {
        let name = self.name.clone();
        let err = |message: String| SinkError::Sink {
            index,
            name: name.clone(),
            message,
        };
        validate_sink_name(&self.name)
            .map_err(|_| err("name: use 1 to 64 of A-Z a-z 0-9 _ - (it names files)".into()))?;
        let only = |key: &str, set: bool, kind: &str| {
            if set {
                Err(err(format!("{key}: only applies to kind = \"{kind}\"")))
            } else {
                Ok(())
            }
        };
        let secret =
            |key: &'static str, reference: &Option<String>| -> Result<Option<String>, SinkError> {
                let Some(reference) = reference else {
                    return Ok(None);
                };
                let outside = reference.starts_with("env:") || reference.starts_with("file:");
                if !resolve_credentials && outside {
                    return Ok(Some("(unresolved)".into()));
                }
                let value = resolve_secret(reference).map_err(|source| SinkError::SinkSecret {
                    index,
                    name: name.clone(),
                    key,
                    reference: describe_reference(reference),
                    source,
                })?;
                String::from_utf8(value.expose().to_vec())
                    .map(Some)
                    .map_err(|_| {
                        err(format!(
                            "{key}: {} is not UTF-8",
                            describe_reference(reference)
                        ))
                    })
            };
        if let Some(hooks) = &self.hooks {
            if hooks.is_empty() {
                return Err(err("hooks: empty; leave it out to take every hook".into()));
            }
            if let Some(h) = hooks.iter().find(|h| !d.hook_paths.contains(&h.as_str())) {
                return Err(err(format!(
                    "hooks: {h:?} is not the path of a [[hooks]] entry"
                )));
            }
        }
        if let Some(events) = &self.events {
            if events.is_empty() || events.iter().any(String::is_empty) {
                return Err(err(
                    "events: empty pattern; leave the key out to take every event type".into(),
                ));
            }
        }
        let required = self.required.unwrap_or(defaults::SINK_REQUIRED);
        if self.required_timeout_secs.is_some() && !required {
            return Err(err(
                "required_timeout_secs: only applies with required = true".into(),
            ));
        }
        let required_timeout_secs = self
            .required_timeout_secs
            .unwrap_or(defaults::SINK_REQUIRED_TIMEOUT_SECS);
        if required_timeout_secs == 0 {
            return Err(err("required_timeout_secs: must be greater than 0".into()));
        }
        let max_in_flight = self.max_in_flight.unwrap_or(defaults::SINK_MAX_IN_FLIGHT);
        if max_in_flight == 0 || max_in_flight > 1024 {
            return Err(err("max_in_flight: must be 1 to 1024".into()));
        }
        let max_batch = self.max_batch.unwrap_or(DEFAULT_MAX_BATCH);
        if max_batch == 0 || max_batch > 1024 {
            return Err(err("max_batch: must be 1 to 1024".into()));
        }
        if self.max_batch.is_some() && max_in_flight > 1 {
            return Err(err(
                "max_batch: only applies with max_in_flight = 1 (batches keep the order)".into(),
            ));
        }
        if self.url.trim().is_empty() {
            return Err(err("url: must not be empty".into()));
        }

        let user = secret("user", &self.user)?;
        let password = secret("password", &self.password)?;
        let kind = match self.kind {
            RawSinkKind::Nats => {
                only("maxlen", self.maxlen.is_some(), "redis")?;
                let token = secret("token", &self.token)?;
                let creds = self
                    .creds
                    .as_deref()
                    .map(|c| PathBuf::from(c.strip_prefix("file:").unwrap_or(c)));
                let auth = match (user, password, token, creds) {
                    (None, None, None, None) => NatsAuth::None,
                    (Some(user), Some(password), None, None) => {
                        NatsAuth::UserPassword { user, password }
                    }
                    (None, None, Some(t), None) => NatsAuth::Token(t),
                    (None, None, None, Some(p)) => {
                        if !p.is_file() {
                            return Err(err(format!(
                                "creds: {} is not a readable file",
                                p.display()
                            )));
                        }
                        NatsAuth::CredsFile(p)
                    }
                    (Some(_), None, None, None) | (None, Some(_), None, None) => {
                        return Err(err("user, password: set both or neither".into()))
                    }
                    _ => {
                        return Err(err(
                            "user/password, token, creds: choose one way to authenticate".into(),
                        ))
                    }
                };
                let mut c = NatsConfig::new(&self.name, self.url.trim());
                c.auth = auth;
                c.subject = self.subject.unwrap_or_else(|| DEFAULT_SUBJECT.to_owned());
                c.stream = self.stream;
                c.dedupe_window = d.dedupe_window;
                c.validate().map_err(|e| {
                    let key = match e {
                        crate::forward::nats::NatsConfigError::Subject(_) => "subject",
                        crate::forward::nats::NatsConfigError::StreamName(_)
                        | crate::forward::nats::NatsConfigError::StreamNeedsPrefix => "stream",
                        crate::forward::nats::NatsConfigError::Url(_) => "url",
                        crate::forward::nats::NatsConfigError::Creds(_) => "creds",
                    };
                    err(format!("{key}: {e}"))
                })?;
                SinkKind::Nats(c)
            }
            RawSinkKind::Redis => {
                only("subject", self.subject.is_some(), "nats")?;
                only("token", self.token.is_some(), "nats")?;
                only("creds", self.creds.is_some(), "nats")?;
                let stream = self
                    .stream
                    .unwrap_or_else(|| defaults::REDIS_STREAM.to_owned());
                let mut c = RedisConfig::new(&self.name, self.url.trim(), stream);
                c.username = user;
                c.password = password;
                c.maxlen = self.maxlen.unwrap_or(DEFAULT_MAXLEN);
                c.dedupe_window = d.dedupe_window;
                c.client().map_err(|e| {
                    let key = match e {
                        crate::forward::redis::RedisConfigError::Url { .. } => "url",
                        crate::forward::redis::RedisConfigError::EmptyStream => "stream",
                        crate::forward::redis::RedisConfigError::ZeroMaxlen => "maxlen",
                    };
                    err(format!("{key}: {e}"))
                })?;
                SinkKind::Redis(c)
            }
        };
        Ok(SinkSpec {
            name: self.name,
            kind,
            runner: RunnerConfig {
                max_in_flight,
                max_batch,
                filter: EventFilter {
                    hooks: self.hooks,
                    events: self.events,
                },
                shutdown_timeout: d.shutdown_timeout,
                ..RunnerConfig::default()
            },
            required_timeout: required.then(|| Duration::from_secs(required_timeout_secs)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, RawConfig};

    /// The names serde accepts for `T`, read from its unknown-field error.
    fn accepted_keys<T: serde::de::DeserializeOwned + std::fmt::Debug>(with: &str) -> Vec<String> {
        let e = toml::from_str::<T>(&format!("{with}zz_not_a_key = 1\n")).unwrap_err();
        let e = e.to_string();
        let list = &e[e.find("expected").expect("serde names the accepted keys")..];
        let keys: Vec<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        assert!(keys.len() >= 3, "{e}");
        keys
    }

    /// `config/webhook-listener.toml` documents every `[spool]` and `[[sinks]]` key with the default
    /// the code uses (the commented sinks are uncommented and parsed).
    #[test]
    fn every_spool_and_sink_key_is_documented_with_its_default() {
        let text = include_str!("../../config/webhook-listener.toml");
        let raw: RawConfig = toml::from_str(text).unwrap();
        assert_eq!(raw.spool.max_bytes, Some(defaults::SPOOL_MAX_BYTES));
        assert_eq!(raw.spool.segment_bytes, Some(defaults::SPOOL_SEGMENT_BYTES));
        assert!(text.contains(&format!("{:?}", defaults::SPOOL_DIR_NAME)));
        for key in accepted_keys::<RawSpool>("") {
            assert!(
                text.contains(&format!("{key} = ")),
                "[spool] {key} documented"
            );
        }

        let start = text.find("# [[sinks]]").expect("sinks documented");
        let uncommented: Vec<&str> = text[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(""))
            .collect();
        let doc: toml::Value = toml::from_str(&uncommented.join("\n")).unwrap();
        let sinks = doc["sinks"].as_array().expect("[[sinks]] tables");
        let mut documented = std::collections::BTreeSet::new();
        for s in sinks {
            documented.extend(s.as_table().unwrap().keys().cloned());
            let _: RawSink = s.clone().try_into().expect("documented sinks parse");
        }
        let minimal = "name = \"x\"\nkind = \"nats\"\nurl = \"u\"\n";
        for key in accepted_keys::<RawSink>(minimal) {
            assert!(documented.contains(&key), "[[sinks]] {key} documented");
        }
        let (nats, redis) = (&sinks[0], &sinks[1]);
        assert_eq!(nats["subject"].as_str(), Some(DEFAULT_SUBJECT));
        assert_eq!(nats["required"].as_bool(), Some(defaults::SINK_REQUIRED));
        assert_eq!(
            nats["required_timeout_secs"].as_integer(),
            Some(defaults::SINK_REQUIRED_TIMEOUT_SECS as i64)
        );
        assert_eq!(
            nats["max_in_flight"].as_integer(),
            Some(defaults::SINK_MAX_IN_FLIGHT as i64)
        );
        assert_eq!(
            nats["max_batch"].as_integer(),
            Some(DEFAULT_MAX_BATCH as i64)
        );
        assert_eq!(redis["stream"].as_str(), Some(defaults::REDIS_STREAM));
        assert_eq!(redis["maxlen"].as_integer(), Some(DEFAULT_MAXLEN as i64));
    }

    const HOOK: &str = "[[hooks]]\npath = \"/g\"\nprovider = \"github\"\nsecrets = [\"a-key-long-enough-not-to-warn\"]\n";

    fn load(sinks: &str) -> Result<Config, String> {
        Config::from_toml(&format!("{HOOK}\n{sinks}"), "t").map_err(|e| e.to_string())
    }

    #[test]
    fn a_nats_and_a_redis_sink_resolve_with_their_defaults() {
        std::env::set_var("SINK_TEST_REDIS_PASSWORD", "pw-from-env-123");
        let c = load(
            "[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nstream = \"WEBHOOKS\"\n\
             [[sinks]]\nname = \"cache\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\npassword = \"env:SINK_TEST_REDIS_PASSWORD\"\nrequired = true\nhooks = [\"/g\"]\nevents = [\"push\"]\n",
        )
        .unwrap();
        assert_eq!(c.sinks.len(), 2);
        let crate::forward::SinkKind::Nats(n) = &c.sinks[0].kind else {
            panic!("nats")
        };
        assert_eq!(n.subject, crate::forward::nats::DEFAULT_SUBJECT);
        assert_eq!(n.dedupe_window, c.dedupe_window);
        assert_eq!(c.sinks[0].required_timeout, None);
        let crate::forward::SinkKind::Redis(r) = &c.sinks[1].kind else {
            panic!("redis")
        };
        assert_eq!(r.password.as_deref(), Some("pw-from-env-123"));
        assert_eq!(r.stream, "webhooks");
        assert_eq!(
            c.sinks[1].required_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(c.sinks[1].runner.filter.events, Some(vec!["push".into()]));
        assert!(!format!("{c:?}").contains("pw-from-env-123"));
        assert_eq!(
            c.spool.dir,
            std::path::PathBuf::from("webhook-listener.spool")
        );
    }

    #[test]
    fn errors_name_the_sink_and_key_never_the_credential() {
        let nats = "[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n";
        for (extra, key) in [
            ("maxlen = 5\n", "maxlen"),
            ("subject = \"a.*\"\n", "subject"),
            ("stream = \"a.b\"\n", "stream"),
            ("hooks = [\"/nope\"]\n", "hooks"),
            ("user = \"u\"\n", "user, password"),
            (
                "token = \"literal-token-xyz\"\nuser = \"u\"\npassword = \"p\"\n",
                "choose one",
            ),
            (
                "password = \"env:SINK_TEST_UNSET_VAR\"\nuser = \"u\"\n",
                "password",
            ),
            ("required_timeout_secs = 3\n", "required_timeout_secs"),
            ("max_batch = 0\n", "max_batch"),
            (
                "max_in_flight = 4\nmax_batch = 8\n",
                "max_batch: only applies",
            ),
        ] {
            let e = load(&format!("{nats}{extra}")).unwrap_err();
            assert!(
                e.contains("sinks[0]") && e.contains("sink \"bus\"") && e.contains(key),
                "{extra}: {e}"
            );
            assert!(!e.contains("literal-token-xyz"), "{e}");
        }
        let e = load("[[sinks]]\nname = \"a b\"\nkind = \"redis\"\nurl = \"redis://h/0\"\n")
            .unwrap_err();
        assert!(e.contains("name"), "{e}");
        let e = load("[[sinks]]\nname = \"c\"\nkind = \"redis\"\nurl = \"http://u:hunter2@h/0\"\n")
            .unwrap_err();
        assert!(e.contains("url") && !e.contains("hunter2"), "{e}");
        let e = load(
            "[[sinks]]\nname = \"c\"\nkind = \"redis\"\nurl = \"redis://h/0\"\ntoken = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.contains("token: only applies"), "{e}");
        let twice = format!("{nats}{nats}");
        assert!(load(&twice).unwrap_err().contains("another sink"));
        let e = load(&format!(
            "[spool]\nmax_bytes = 100\nsegment_bytes = 60\n{nats}"
        ))
        .unwrap_err();
        assert!(e.contains("spool.segment_bytes"), "{e}");
        let text = format!(
            "max_body_bytes = 2000\n{HOOK}[spool]\nmax_bytes = 4000\nsegment_bytes = 1000\n{nats}"
        );
        let e = Config::from_toml(&text, "t").unwrap_err().to_string();
        assert!(
            e.contains("spool.segment_bytes") && e.contains("max_body_bytes"),
            "{e}"
        );
    }
}
