//! `[spool]` and `[[sinks]]`: as written, and validated into the forwarding settings. Credentials
//! are references (`env:NAME`, `file:/path`, `literal:VALUE` or a literal) resolved with the same
//! code as hook secrets; messages name the sink, the key and the reference, never a value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::secrets::SecretError;
use super::secrets::{describe_reference, resolve_secret};
use crate::forward::exec::{resolve_program, ArgTemplate, EnvValue, ExecConfig, EVENT_ENV};
use crate::forward::http::HttpConfig;
use crate::forward::nats::{NatsAuth, NatsConfig, DEFAULT_SUBJECT};
use crate::forward::redis::{self, RedisConfig, DEFAULT_MAXLEN};
use crate::forward::runner::DEFAULT_MAX_BATCH;
use crate::forward::runner::{DEFAULT_RETRY_INITIAL_SECS, DEFAULT_RETRY_MAX_SECS};
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
    Exec,
    Http,
}

impl RawSinkKind {
    fn as_str(self) -> &'static str {
        match self {
            RawSinkKind::Nats => "nats",
            RawSinkKind::Redis => "redis",
            RawSinkKind::Exec => "exec",
            RawSinkKind::Http => "http",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub name: String,
    pub kind: RawSinkKind,
    /// NATS, Redis and http.
    pub url: Option<String>,
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
    /// The same setting as `max_in_flight`, under the name the command and relay sinks use.
    pub concurrency: Option<usize>,
    /// While intake is flooded, hold back until the oldest undelivered event is this old.
    pub yield_to_intake_secs: Option<u64>,
    pub max_attempts: Option<u32>,
    pub retry_initial_secs: Option<u64>,
    pub retry_max_secs: Option<u64>,
    /// exec and http.
    pub timeout_secs: Option<u64>,
    /// http only: no retry for an event older than this.
    pub max_age_secs: Option<u64>,
    /// http only: the `whsec_` signing secret (a reference, like hook secrets).
    pub secret: Option<String>,
    /// http only: a PEM file of private CA certificates, added to the system's roots.
    pub ca_file: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Option<std::collections::BTreeMap<String, String>>,
    pub pass_env: Option<Vec<String>>,
    pub working_dir: Option<PathBuf>,
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
        if self.name == crate::event_log::wal::EVENT_LOG_CHECKPOINT {
            return Err(err(format!(
                "name: \"{}\" is the event log's own checkpoint in the spool; pick another name",
                self.name
            )));
        }
        let this_kind = self.kind;
        let only = |key: &str, set: bool, kinds: &[RawSinkKind]| {
            if set && !kinds.contains(&this_kind) {
                let kinds: Vec<String> = kinds
                    .iter()
                    .map(|k| format!("kind = \"{}\"", k.as_str()))
                    .collect();
                Err(err(format!(
                    "{key}: only applies to {}",
                    kinds.join(" or ")
                )))
            } else {
                Ok(())
            }
        };
        {
            use RawSinkKind::{Exec, Http, Nats, Redis};
            only("url", self.url.is_some(), &[Nats, Redis, Http])?;
            only("subject", self.subject.is_some(), &[Nats])?;
            only("stream", self.stream.is_some(), &[Nats, Redis])?;
            only("maxlen", self.maxlen.is_some(), &[Redis])?;
            only("user", self.user.is_some(), &[Nats, Redis])?;
            only("password", self.password.is_some(), &[Nats, Redis])?;
            only("token", self.token.is_some(), &[Nats])?;
            only("creds", self.creds.is_some(), &[Nats])?;
            only("command", self.command.is_some(), &[Exec])?;
            only("env", self.env.is_some(), &[Exec])?;
            only("pass_env", self.pass_env.is_some(), &[Exec])?;
            only("working_dir", self.working_dir.is_some(), &[Exec])?;
            only("timeout_secs", self.timeout_secs.is_some(), &[Exec, Http])?;
            only("max_age_secs", self.max_age_secs.is_some(), &[Http])?;
            only("secret", self.secret.is_some(), &[Http])?;
            only("ca_file", self.ca_file.is_some(), &[Http])?;
        }
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
        let (in_flight_key, max_in_flight) = match (self.max_in_flight, self.concurrency) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "concurrency, max_in_flight: the same setting under two names; set one".into(),
                ))
            }
            (Some(n), None) => ("max_in_flight", n),
            (None, Some(n)) => ("concurrency", n),
            (None, None) => ("concurrency", defaults::SINK_MAX_IN_FLIGHT),
        };
        if max_in_flight == 0 || max_in_flight > 1024 {
            return Err(err(format!("{in_flight_key}: must be 1 to 1024")));
        }
        let max_batch = self.max_batch.unwrap_or(match self.kind {
            RawSinkKind::Redis => redis::DEFAULT_MAX_BATCH,
            _ => DEFAULT_MAX_BATCH,
        });
        if max_batch == 0 || max_batch > 1024 {
            return Err(err("max_batch: must be 1 to 1024".into()));
        }
        if self.max_batch.is_some() && max_in_flight > 1 {
            return Err(err(format!(
                "max_batch: only applies with {in_flight_key} = 1 (batches keep the order)"
            )));
        }
        let yield_to_intake =
            match self.yield_to_intake_secs {
                Some(_) if required => return Err(err(
                    "yield_to_intake_secs: a required sink never holds back (its 2xx waits for it)"
                        .into(),
                )),
                Some(0) => None,
                Some(n) => Some(Duration::from_secs(n)),
                None if required => None,
                None => Some(Duration::from_secs(defaults::SINK_YIELD_TO_INTAKE_SECS)),
            };
        let exec = self.kind == RawSinkKind::Exec;
        let http = self.kind == RawSinkKind::Http;
        let max_attempts = match self.max_attempts {
            Some(0) => {
                return Err(err(
                    "max_attempts: must be at least 1 (the first run counts)".into(),
                ))
            }
            Some(n) => Some(n),
            None if exec => Some(defaults::EXEC_MAX_ATTEMPTS),
            None if http => Some(defaults::HTTP_MAX_ATTEMPTS),
            None => None,
        };
        let retry_initial = self
            .retry_initial_secs
            .unwrap_or(DEFAULT_RETRY_INITIAL_SECS);
        let retry_max = self.retry_max_secs.unwrap_or(DEFAULT_RETRY_MAX_SECS);
        if retry_initial == 0 || retry_max < retry_initial {
            return Err(err(format!(
                "retry_initial_secs, retry_max_secs: need 1 <= retry_initial_secs ({retry_initial}) <= retry_max_secs ({retry_max})"
            )));
        }
        let url = || match self.url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => Ok(u.to_owned()),
            Some(_) => Err(err("url: must not be empty".into())),
            None => Err(err(format!(
                "url: required for kind = \"{}\"",
                this_kind.as_str()
            ))),
        };

        let max_age = match self.max_age_secs {
            Some(0) => return Err(err("max_age_secs: must be at least 1".into())),
            Some(n) => Some(Duration::from_secs(n)),
            None if http => Some(Duration::from_secs(defaults::HTTP_MAX_AGE_SECS)),
            None => None,
        };
        let user = secret("user", &self.user)?;
        let password = secret("password", &self.password)?;
        let kind = match self.kind {
            RawSinkKind::Nats => {
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
                let mut c = NatsConfig::new(&self.name, &url()?);
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
                let stream = self
                    .stream
                    .unwrap_or_else(|| defaults::REDIS_STREAM.to_owned());
                let mut c = RedisConfig::new(&self.name, &url()?, stream);
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
            RawSinkKind::Exec => SinkKind::Exec(
                exec_config(
                    &self.name,
                    self.command,
                    self.env,
                    self.pass_env,
                    self.working_dir,
                    self.timeout_secs,
                    resolve_credentials,
                )
                .map_err(err)?,
            ),
            RawSinkKind::Http => {
                let url = crate::forward::http::parse_url(&url()?)
                    .map_err(|e| err(format!("url: {e}")))?;
                let Some(reference) = &self.secret else {
                    return Err(err(
                        "secret: required for kind = \"http\" (whsec_ + base64; the service verifies every request with it)".into(),
                    ));
                };
                let text = secret("secret", &self.secret)?.unwrap_or_default();
                let outside = reference.starts_with("env:") || reference.starts_with("file:");
                let key = if outside && !resolve_credentials {
                    // --syntax-only reads no env:/file: reference: a stand-in key.
                    vec![1; 32]
                } else {
                    crate::forward::http::signing_key(&crate::signature::Secret::new(text))
                        .map_err(|e| {
                            err(format!("secret {}: {e}", describe_reference(reference)))
                        })?
                };
                let timeout_secs = self.timeout_secs.unwrap_or(defaults::HTTP_TIMEOUT_SECS);
                if timeout_secs == 0 || timeout_secs > 3600 {
                    return Err(err("timeout_secs: must be 1 to 3600".into()));
                }
                let ca_file = self
                    .ca_file
                    .as_deref()
                    .map(|c| PathBuf::from(c.strip_prefix("file:").unwrap_or(c)));
                let ca_certs = match &ca_file {
                    Some(p) if resolve_credentials => crate::forward::http::load_ca_file(p)
                        .map_err(|e| err(format!("ca_file: {e}")))?,
                    _ => Vec::new(),
                };
                SinkKind::Http(HttpConfig {
                    name: self.name.clone(),
                    url,
                    key,
                    timeout: Duration::from_secs(timeout_secs),
                    ca_file,
                    ca_certs,
                })
            }
        };
        Ok(SinkSpec {
            name: self.name,
            kind,
            runner: RunnerConfig {
                max_in_flight,
                max_batch,
                max_attempts,
                max_age,
                retry_initial: Duration::from_secs(retry_initial),
                retry_max: Duration::from_secs(retry_max),
                filter: EventFilter {
                    hooks: self.hooks,
                    events: self.events,
                },
                shutdown_timeout: d.shutdown_timeout,
                yield_to_intake,
            },
            required_timeout: required.then(|| Duration::from_secs(required_timeout_secs)),
        })
    }
}

/// A `kind = "exec"` entry's own keys, validated. `look`: false for `--syntax-only`, which reads no
/// `env:`/`file:` reference and does not look for the program or the directory. Errors are the
/// message after the sink's name: the key first.
fn exec_config(
    name: &str,
    command: Option<Vec<String>>,
    env: Option<std::collections::BTreeMap<String, String>>,
    pass_env: Option<Vec<String>>,
    working_dir: Option<PathBuf>,
    timeout_secs: Option<u64>,
    look: bool,
) -> Result<ExecConfig, String> {
    use std::os::unix::ffi::OsStringExt;
    let command = command.unwrap_or_default();
    let Some(argv0) = command.first() else {
        return Err(
            "command: required for kind = \"exec\": the program and its arguments, as an array"
                .into(),
        );
    };
    let mut argv = Vec::with_capacity(command.len());
    for (i, a) in command.iter().enumerate() {
        let t = ArgTemplate::parse(a).map_err(|e| format!("command[{i}]: {e}"))?;
        if i == 0 && t.has_placeholders() {
            return Err("command[0]: the program cannot hold a placeholder".into());
        }
        if a.contains('\0') {
            return Err(format!("command[{i}]: contains a NUL character"));
        }
        argv.push(t);
    }
    let env_name = |key: &str, n: &str| -> Result<(), String> {
        let ok = !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(format!(
                "{key}: {n:?} is not a variable name (A-Z a-z 0-9 _)"
            ));
        }
        if EVENT_ENV.contains(&n) {
            return Err(format!("{key}: {n} is set by the sink for every event"));
        }
        Ok(())
    };
    let pass_env = pass_env.unwrap_or_default();
    for n in &pass_env {
        env_name("pass_env", n)?;
    }
    let mut resolved = Vec::new();
    for (k, reference) in env.unwrap_or_default() {
        env_name("env", &k)?;
        if pass_env.contains(&k) {
            return Err(format!("env.{k}: also in pass_env; choose one"));
        }
        let outside = reference.starts_with("env:") || reference.starts_with("file:");
        let value = if !look && outside {
            b"(unresolved)".to_vec()
        } else {
            let v = resolve_secret(&reference)
                .map_err(|e| format!("env.{k} {}: {e}", describe_reference(&reference)))?;
            v.expose().to_vec()
        };
        if value.contains(&0) {
            return Err(format!(
                "env.{k} {}: contains a NUL byte",
                describe_reference(&reference)
            ));
        }
        resolved.push((k, EnvValue(std::ffi::OsString::from_vec(value))));
    }
    if let Some(d) = &working_dir {
        if look && !d.is_dir() {
            return Err(format!("working_dir: {} is not a directory", d.display()));
        }
    }
    let timeout_secs = timeout_secs.unwrap_or(defaults::EXEC_TIMEOUT_SECS);
    if timeout_secs == 0 {
        return Err("timeout_secs: must be at least 1".into());
    }
    let program = if look {
        let path = ExecConfig::child_path(&resolved, &pass_env);
        resolve_program(argv0, working_dir.as_deref(), path.as_deref())
            .map_err(|e| format!("command[0]: {e}"))?
    } else {
        let has_path =
            resolved.iter().any(|(k, _)| k == "PATH") || pass_env.iter().any(|k| k == "PATH");
        if !argv0.contains('/') && !has_path {
            return Err(format!(
                "command[0]: {}",
                crate::forward::exec::ExecConfigError::BareWithoutPath(argv0.clone())
            ));
        }
        PathBuf::from(argv0)
    };
    Ok(ExecConfig {
        name: name.to_owned(),
        program,
        argv,
        env: resolved,
        pass_env,
        working_dir,
        timeout: Duration::from_secs(timeout_secs),
    })
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
            nats["concurrency"].as_integer(),
            Some(defaults::SINK_MAX_IN_FLIGHT as i64)
        );
        assert_eq!(
            nats["max_batch"].as_integer(),
            Some(DEFAULT_MAX_BATCH as i64)
        );
        assert_eq!(
            nats["yield_to_intake_secs"].as_integer(),
            Some(defaults::SINK_YIELD_TO_INTAKE_SECS as i64)
        );
        assert_eq!(
            redis["max_batch"].as_integer(),
            Some(redis::DEFAULT_MAX_BATCH as i64)
        );
        assert_eq!(
            redis["max_in_flight"].as_integer(),
            Some(defaults::SINK_MAX_IN_FLIGHT as i64)
        );
        assert_eq!(
            nats["retry_initial_secs"].as_integer(),
            Some(DEFAULT_RETRY_INITIAL_SECS as i64)
        );
        assert_eq!(
            nats["retry_max_secs"].as_integer(),
            Some(DEFAULT_RETRY_MAX_SECS as i64)
        );
        let http = sinks
            .iter()
            .find(|s| s["kind"].as_str() == Some("http"))
            .expect("an http sink documented");
        let int = |k: &str| http[k].as_integer();
        assert_eq!(
            int("timeout_secs"),
            Some(defaults::HTTP_TIMEOUT_SECS as i64)
        );
        assert_eq!(
            int("max_attempts"),
            Some(defaults::HTTP_MAX_ATTEMPTS as i64)
        );
        assert_eq!(
            int("max_age_secs"),
            Some(defaults::HTTP_MAX_AGE_SECS as i64)
        );
        assert_eq!(
            int("concurrency"),
            Some(defaults::SINK_MAX_IN_FLIGHT as i64)
        );
        let exec = &sinks[2];
        assert_eq!(exec["kind"].as_str(), Some("exec"));
        assert_eq!(
            exec["timeout_secs"].as_integer(),
            Some(defaults::EXEC_TIMEOUT_SECS as i64)
        );
        assert_eq!(
            exec["max_attempts"].as_integer(),
            Some(defaults::EXEC_MAX_ATTEMPTS as i64)
        );
        assert_eq!(
            exec["concurrency"].as_integer(),
            Some(defaults::SINK_MAX_IN_FLIGHT as i64)
        );
        assert_eq!(
            (
                exec["retry_initial_secs"].as_integer(),
                exec["retry_max_secs"].as_integer()
            ),
            (
                Some(DEFAULT_RETRY_INITIAL_SECS as i64),
                Some(DEFAULT_RETRY_MAX_SECS as i64)
            )
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

    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn an_http_sink_resolves_with_its_defaults() {
        std::env::set_var("SINK_TEST_RELAY_SECRET", WHSEC);
        let c = load("[[sinks]]\nname = \"relay\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"env:SINK_TEST_RELAY_SECRET\"\n").unwrap();
        let s = &c.sinks[0];
        let crate::forward::SinkKind::Http(h) = &s.kind else {
            panic!("http")
        };
        assert_eq!(h.key.len(), 24);
        assert_eq!(h.timeout.as_secs(), defaults::HTTP_TIMEOUT_SECS);
        assert_eq!(s.runner.max_attempts, Some(defaults::HTTP_MAX_ATTEMPTS));
        assert_eq!(
            s.runner.max_age,
            Some(Duration::from_secs(defaults::HTTP_MAX_AGE_SECS))
        );
        assert_eq!(s.runner.max_in_flight, defaults::SINK_MAX_IN_FLIGHT);
        assert!(!format!("{c:?}").contains("MfKQ9r8"));
        let c = load("[[sinks]]\nname = \"relay\"\nkind = \"http\"\nurl = \"http://h/\"\nsecret = \"env:SINK_TEST_RELAY_SECRET\"\nconcurrency = 4\nmax_attempts = 2\nmax_age_secs = 60\ntimeout_secs = 3\n").unwrap();
        let s = &c.sinks[0];
        assert_eq!(
            (
                s.runner.max_in_flight,
                s.runner.max_attempts,
                s.runner.max_age
            ),
            (4, Some(2), Some(Duration::from_secs(60)))
        );
    }

    #[test]
    fn http_sink_errors_name_the_key_and_reference_never_the_secret() {
        let base = "[[sinks]]\nname = \"relay\"\nkind = \"http\"\n";
        let ok_secret = format!("secret = \"{WHSEC}\"\n");
        for (extra, key) in [
            ("url = \"http://h/\"\n".to_string(), "secret: required"),
            (
                format!("url = \"http://u:hunter2@h/\"\n{ok_secret}"),
                "url: must not carry credentials",
            ),
            (format!("url = \"ftp://h/\"\n{ok_secret}"), "url: scheme"),
            (
                "url = \"http://h/\"\nsecret = \"whsec_aHVudGVyMg==\"\n".into(),
                "secret (literal): must be whsec_",
            ),
            (
                "url = \"http://h/\"\nsecret = \"hunter2-not-whsec-at-all-xxxxxxxxxx\"\n".into(),
                "secret (literal)",
            ),
            (
                "url = \"http://h/\"\nsecret = \"env:SINK_TEST_UNSET_RELAY\"\n".into(),
                "env:SINK_TEST_UNSET_RELAY",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}max_attempts = 0\n"),
                "max_attempts",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}timeout_secs = 0\n"),
                "timeout_secs",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}max_age_secs = 0\n"),
                "max_age_secs",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}stream = \"s\"\n"),
                "stream: only applies",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}password = \"hunter2\"\n"),
                "password: only applies",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}ca_file = \"/nonexistent/ca.pem\"\n"),
                "ca_file: /nonexistent/ca.pem: cannot read",
            ),
            (
                format!("url = \"http://h/\"\n{ok_secret}concurrency = 2\nmax_in_flight = 2\n"),
                "concurrency, max_in_flight",
            ),
        ] {
            let e = load(&format!("{base}{extra}")).unwrap_err();
            assert!(
                e.contains("sink \"relay\"") && e.contains(key),
                "{extra}: {e}"
            );
            assert!(
                !e.contains("hunter2") && !e.contains("aHVudGVy") && !e.contains("MfKQ9r8"),
                "{e}"
            );
        }
        let nats = "[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://h:4222\"\nmax_age_secs = 3\n";
        assert!(load(nats)
            .unwrap_err()
            .contains("max_age_secs: only applies to kind = \"http\""));
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

    #[test]
    fn an_exec_sink_resolves_with_its_defaults_and_hides_env_values() {
        std::env::set_var("SINK_TEST_EXEC_TOKEN", "exec-token-from-env-77");
        let c = load(
            "[[sinks]]\nname = \"deploy\"\nkind = \"exec\"\ncommand = [\"sh\", \"-c\", \"x {event}\"]\npass_env = [\"PATH\"]\nenv = { TOKEN = \"env:SINK_TEST_EXEC_TOKEN\" }\n",
        )
        .unwrap();
        let s = &c.sinks[0];
        let crate::forward::SinkKind::Exec(e) = &s.kind else {
            panic!("exec")
        };
        assert!(
            e.program.is_absolute() && e.program.ends_with("sh"),
            "{:?}",
            e.program
        );
        assert_eq!(e.timeout, Duration::from_secs(defaults::EXEC_TIMEOUT_SECS));
        assert_eq!(e.env[0].1 .0, "exec-token-from-env-77");
        assert_eq!(s.runner.max_attempts, Some(defaults::EXEC_MAX_ATTEMPTS));
        assert_eq!(s.runner.max_in_flight, defaults::SINK_MAX_IN_FLIGHT);
        assert_eq!(
            s.runner.retry_initial,
            Duration::from_secs(DEFAULT_RETRY_INITIAL_SECS)
        );
        assert!(!format!("{c:?}").contains("exec-token-from-env-77"));
        assert!(!crate::forward::service::describe(s).contains("exec-token-from-env-77"));

        let c = load("[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://h:4222\"\nconcurrency = 4\nmax_attempts = 9\nretry_max_secs = 5\n").unwrap();
        let r = &c.sinks[0].runner;
        assert_eq!((r.max_in_flight, r.max_attempts), (4, Some(9)));
        assert_eq!(r.retry_max, Duration::from_secs(5));
        let c =
            load("[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://h:4222\"\n").unwrap();
        assert_eq!(
            c.sinks[0].runner.max_attempts, None,
            "a broker never gives up"
        );
    }

    #[test]
    fn exec_and_runner_keys_are_refused_where_they_do_not_apply() {
        let exec = "[[sinks]]\nname = \"run\"\nkind = \"exec\"\n";
        let cmd = "command = [\"/bin/true\"]\n";
        let nats = "[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\n";
        for (text, needle) in [
            (exec.to_owned(), "command: required"),
            (format!("{exec}command = []\n"), "command: required"),
            (
                format!("{exec}{cmd}url = \"nats://h\"\n"),
                "url: only applies to kind = \"nats\" or kind = \"redis\"",
            ),
            (
                format!("{exec}{cmd}stream = \"s\"\n"),
                "stream: only applies",
            ),
            (
                format!("{nats}command = [\"/bin/true\"]\n"),
                "command: only applies to kind = \"exec\"",
            ),
            (
                format!("{nats}timeout_secs = 5\n"),
                "timeout_secs: only applies",
            ),
            (
                format!("{nats}env = {{ A = \"b\" }}\n"),
                "env: only applies",
            ),
            (
                "[[sinks]]\nname = \"c\"\nkind = \"redis\"\n".to_owned(),
                "url: required for kind = \"redis\"",
            ),
            (
                format!("{exec}{cmd}concurrency = 2\nmax_in_flight = 2\n"),
                "set one",
            ),
            (
                format!("{exec}{cmd}concurrency = 0\n"),
                "concurrency: must be 1 to 1024",
            ),
            (
                format!("{exec}{cmd}max_attempts = 0\n"),
                "max_attempts: must be at least 1",
            ),
            (
                format!("{exec}{cmd}retry_initial_secs = 0\n"),
                "retry_initial_secs",
            ),
            (
                format!("{exec}{cmd}retry_initial_secs = 10\nretry_max_secs = 5\n"),
                "retry_max_secs (5)",
            ),
            (
                format!("{exec}{cmd}timeout_secs = 0\n"),
                "timeout_secs: must be at least 1",
            ),
            (
                format!("{exec}{cmd}env = {{ \"A-B\" = \"x\" }}\n"),
                "not a variable name",
            ),
            (
                format!("{exec}{cmd}env = {{ WEBHOOK_EVENT = \"x\" }}\n"),
                "set by the sink",
            ),
            (
                format!("{exec}{cmd}pass_env = [\"WEBHOOK_HOOK\"]\n"),
                "set by the sink",
            ),
            (
                format!("{exec}{cmd}env = {{ PATH = \"/bin\" }}\npass_env = [\"PATH\"]\n"),
                "also in pass_env",
            ),
            (
                format!("{exec}{cmd}env = {{ T = \"env:SINK_TEST_UNSET_EXEC\" }}\n"),
                "env.T env:SINK_TEST_UNSET_EXEC",
            ),
            (
                format!("{exec}command = [\"/bin/{{provider}}\"]\n"),
                "program cannot hold a placeholder",
            ),
            (
                format!("{exec}command = [\"/bin/true\", \"{{evnt}}\"]\n"),
                "command[1]: {evnt} is not a placeholder",
            ),
            (format!("{exec}command = [\"true\"]\n"), "give a full path"),
            (
                format!("{exec}{cmd}working_dir = \"/nonexistent-dir-x\"\n"),
                "working_dir: /nonexistent-dir-x is not a directory",
            ),
        ] {
            let e = load(&text).unwrap_err();
            assert!(e.contains("sinks[0]") && e.contains(needle), "{text}: {e}");
        }
        // A bare name with PATH given through env resolves along that PATH, not ours.
        let ok = format!(
            "{exec}command = [\"true\"]\nenv = {{ PATH = \"/nonexistent:/bin:/usr/bin\" }}\n"
        );
        load(&ok).unwrap();
        let e = load(&format!(
            "{exec}command = [\"true\"]\nenv = {{ PATH = \"/nonexistent\" }}\n"
        ))
        .unwrap_err();
        assert!(
            e.contains("not found in the command's PATH (/nonexistent)"),
            "{e}"
        );
    }
}
