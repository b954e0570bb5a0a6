//! The NATS JetStream sink: publish each event to a subject rendered from the event, with
//! `Nats-Msg-Id` = the dedupe key, and count it delivered only when the stream's PubAck came back
//! (a duplicate ack included: the stream already holds it).
//!
//! Server compatibility: `async-nats` is built without its `server_2_10`+ features. Debian ships
//! nats-server 2.9.10, which silently drops the 2.10 stream and consumer fields those features add
//! (compression, metadata, first_seq, several filter subjects), so they must not be reachable.
//!
//! The client connects in the background and reconnects by itself without limit; every call here
//! is bounded by `publish_timeout`, so a broker that is away costs a `Retry`, never a hang.
//!
//! A batch is published in order over the one connection without waiting for each PubAck, then
//! the acks are awaited in order: one round trip for the batch. Each event still lands once (the
//! runner re-sends from the first failure on and the server de-duplicates on `Nats-Msg-Id`), but
//! order can break in two cases: the server refuses one message with an error that may pass (no
//! stream leader for a moment, a resource limit) yet stores those after it, so the refused one
//! lands after them; or the connection drops mid-batch and the client, once reconnected, first
//! sends the publishes it still had queued, ahead of our re-send of those lost with the
//! connection. `max_batch = 1` keeps the order in both.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::header::{HeaderMap, HeaderName, HeaderValue, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, stream, ErrorCode};
use async_nats::{Client, ConnectOptions, ServerAddr};
use bytes::Bytes;
use chrono::SecondsFormat;

use super::redact::{redact_url, scrub};
use super::subject::{
    filter_matches, header_value, unique_header_value, SubjectTemplate, TemplateError,
};
use super::{DeliveryError, Event, Sink};

/// The subject when none is configured.
pub const DEFAULT_SUBJECT: &str = "webhooks.{provider}.{event}";
/// JetStream's own default duplicate window.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(120);
/// Long enough for a loaded server's ack, short enough that an outage is noticed quickly.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the sink authenticates. Values are already resolved (from `env:`/`file:`); never logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// A `.creds` file (JWT + nkey seed), read when the sink is built.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user:?}, ***)"),
            NatsAuth::Token(_) => f.write_str("Token(***)"),
            NatsAuth::CredsFile(p) => write!(f, "CredsFile({p:?})"),
        }
    }
}

impl NatsAuth {
    fn secrets(&self) -> Vec<&str> {
        match self {
            NatsAuth::UserPassword { password, .. } => vec![password.as_str()],
            NatsAuth::Token(t) => vec![t.as_str()],
            _ => Vec::new(),
        }
    }
}

/// One `kind = "nats"` sink, with resolved values.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub name: String,
    /// `nats://host:port` or `tls://host:port` (TLS when the scheme says so); several
    /// comma-separated URLs for a cluster.
    pub url: String,
    pub auth: NatsAuth,
    /// Subject template, see [`super::subject`].
    pub subject: String,
    /// A stream to create when missing, covering the subject, with `duplicate_window` set.
    pub stream: Option<String>,
    pub dedupe_window: Duration,
    /// Bound on one `deliver` (publish + ack) and on stream look-ups.
    pub publish_timeout: Duration,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("name", &self.name)
            .field("url", &self.redacted_url())
            .field("auth", &self.auth)
            .field("subject", &self.subject)
            .field("stream", &self.stream)
            .field("dedupe_window", &self.dedupe_window)
            .finish_non_exhaustive()
    }
}

impl NatsConfig {
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        NatsConfig {
            name: name.into(),
            url: url.into(),
            auth: NatsAuth::None,
            subject: DEFAULT_SUBJECT.to_owned(),
            stream: None,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Checks what can be checked without a broker (for `check-config`).
    pub fn validate(&self) -> Result<SubjectTemplate, NatsConfigError> {
        let template = SubjectTemplate::parse(&self.subject)?;
        if let Some(s) = &self.stream {
            if s.is_empty()
                || s.len() > 255
                || s.chars()
                    .any(|c| !c.is_ascii_graphic() || ".*>/\\".contains(c))
            {
                return Err(NatsConfigError::StreamName(s.clone()));
            }
        }
        if self.stream.is_some() && template.stream_filter().starts_with(['*', '>']) {
            return Err(NatsConfigError::StreamNeedsPrefix);
        }
        self.server_addrs()?;
        Ok(template)
    }

    /// The server addresses, from one URL or several comma-separated ones (a cluster).
    fn server_addrs(&self) -> Result<Vec<ServerAddr>, NatsConfigError> {
        let addrs = self
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse::<ServerAddr>().map_err(|e| {
                    let reason = scrub(&e.to_string(), &self.auth.secrets());
                    NatsConfigError::Url(format!("{}: {}", redact_url(u), scrub(&reason, &[u])))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addrs.is_empty() {
            return Err(NatsConfigError::Url("empty".into()));
        }
        Ok(addrs)
    }

    /// The URLs for logs and messages, without userinfo.
    fn redacted_url(&self) -> String {
        self.url
            .split(',')
            .map(|u| redact_url(u.trim()))
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn options(&self) -> Result<ConnectOptions, NatsConfigError> {
        let opts = match &self.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(t) => ConnectOptions::with_token(t.clone()),
            NatsAuth::CredsFile(p) => ConnectOptions::with_credentials_file(p)
                .await
                .map_err(|e| NatsConfigError::Creds(format!("{}: {}", p.display(), e.kind())))?,
        };
        Ok(opts
            .name(format!("webhook-listener/{}", self.name))
            .connection_timeout(self.connect_timeout)
            // TLS follows each URL's scheme (`tls://`) or the server's own demand.
            .request_timeout(Some(self.publish_timeout)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsConfigError {
    #[error(transparent)]
    Subject(#[from] TemplateError),
    #[error("stream name {0:?} is not valid (no spaces, `.`, `*`, `>`, `/`)")]
    StreamName(String),
    #[error("a stream needs the subject to start with a literal token, not a placeholder")]
    StreamNeedsPrefix,
    #[error("url: {0}")]
    Url(String),
    #[error("creds file {0}")]
    Creds(String),
}

/// Publishes events to JetStream. Cheap to share: `deliver` takes `&self`, so a runner can keep
/// several publishes in flight.
pub struct NatsSink {
    name: String,
    client: Client,
    js: jetstream::Context,
    subject: SubjectTemplate,
    stream: Option<String>,
    dedupe_window: Duration,
    publish_timeout: Duration,
    /// Set once the configured stream was found or created; cleared when a publish finds no
    /// stream, so it is created again (someone deleted it).
    stream_ready: AtomicBool,
    /// Serializes stream creation between concurrent deliveries.
    stream_lock: tokio::sync::Mutex<()>,
    secrets: Vec<String>,
}

impl NatsSink {
    /// Builds the sink and starts connecting in the background: a broker that is down at start-up
    /// does not fail start-up, it makes `deliver` answer `Retry` until it is back.
    pub async fn new(config: NatsConfig) -> Result<Self, NatsConfigError> {
        let subject = config.validate()?;
        let name = config.name.clone();
        let url = config.redacted_url();
        let addrs = config.server_addrs()?;
        let cb_name = name.clone();
        let opts = config
            .options()
            .await?
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let (sink, url) = (cb_name.clone(), url.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(sink, %url, "nats sink connected")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(sink, %url, "nats sink disconnected")
                        }
                        other => tracing::info!(sink, %url, event = %other, "nats sink"),
                    }
                }
            });
        let secrets: Vec<String> = config
            .auth
            .secrets()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let client = opts.connect(addrs).await.map_err(|e| {
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            NatsConfigError::Url(scrub(&e.to_string(), &refs))
        })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            .build(client.clone());
        Ok(NatsSink {
            name,
            client,
            js,
            subject,
            stream: config.stream,
            dedupe_window: config.dedupe_window,
            publish_timeout: config.publish_timeout,
            stream_ready: AtomicBool::new(false),
            stream_lock: tokio::sync::Mutex::new(()),
            secrets,
        })
    }

    /// Whether the client holds a live connection now (for the `connected` metric).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// The subject `event` is published to.
    pub fn subject_for(&self, event: &Event) -> String {
        self.subject
            .render(&event.provider, &event.hook, event.event_type.as_deref())
    }

    fn clean(&self, text: impl std::fmt::Display) -> String {
        let refs: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        scrub(&text.to_string(), &refs)
    }

    async fn ensure_stream(&self) -> Result<(), DeliveryError> {
        let Some(name) = &self.stream else {
            return Ok(());
        };
        let _guard = self.stream_lock.lock().await;
        if self.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![self.subject.stream_filter()],
            duplicate_window: self.dedupe_window,
            storage: stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        };
        let created =
            tokio::time::timeout(self.publish_timeout, self.js.get_or_create_stream(config)).await;
        match created {
            Err(_) => Err(DeliveryError::retry(format!(
                "stream {name}: no answer within {:?}",
                self.publish_timeout
            ))),
            Ok(Err(e)) => Err(DeliveryError::retry(format!(
                "stream {name}: {}",
                self.clean(e)
            ))),
            Ok(Ok(s)) => {
                let window = s.cached_info().config.duplicate_window;
                if window != self.dedupe_window {
                    tracing::warn!(
                        sink = %self.name, stream = %name, ?window, wanted = ?self.dedupe_window,
                        "existing stream has another duplicate window; left as it is"
                    );
                }
                self.stream_ready.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// What a failed publish means for this event.
    async fn classify(&self, err: PublishError, subject: &str) -> DeliveryError {
        let text = self.clean(&err);
        match err.kind() {
            // The size check uses the server's max_payload only once connected; before that it is
            // the client's default, which says nothing about this server.
            PublishErrorKind::MaxPayloadExceeded if self.is_connected() => {
                DeliveryError::Permanent(text)
            }
            PublishErrorKind::StreamNotFound => match &self.stream {
                None => DeliveryError::retry(format!("no stream takes subject {subject}")),
                Some(name) => self.stream_missing_or_rejects(name, subject).await,
            },
            PublishErrorKind::Other => {
                let code = std::error::Error::source(&err)
                    .and_then(|s| s.downcast_ref::<jetstream::Error>())
                    .map(jetstream::Error::error_code);
                match code {
                    Some(ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM)
                    | Some(ErrorCode::STREAM_HEADER_EXCEEDS_MAXIMUM) => {
                        DeliveryError::Permanent(text)
                    }
                    _ => DeliveryError::retry(text),
                }
            }
            _ => DeliveryError::retry(text),
        }
    }

    /// "No responders" with a stream configured: the stream is gone (create it again and retry),
    /// it exists and does not take this subject (never will: permanent), or it takes it and is
    /// briefly without a leader (retry).
    async fn stream_missing_or_rejects(&self, name: &str, subject: &str) -> DeliveryError {
        match tokio::time::timeout(self.publish_timeout, self.js.get_stream(name)).await {
            Ok(Ok(s))
                if s.cached_info()
                    .config
                    .subjects
                    .iter()
                    .any(|p| filter_matches(p, subject)) =>
            {
                DeliveryError::retry(format!("stream {name} did not answer for {subject}"))
            }
            Ok(Ok(_)) => {
                DeliveryError::Permanent(format!("stream {name} does not take subject {subject}"))
            }
            Ok(Err(e)) => {
                self.stream_ready.store(false, Ordering::Release);
                DeliveryError::retry(format!("stream {name}: {}", self.clean(e)))
            }
            Err(_) => DeliveryError::retry(format!("stream {name}: no answer")),
        }
    }
}

/// The headers of one event's message. Names are spelled exactly so: nats-server 2.9 matches
/// `Nats-Msg-Id` case-sensitively.
pub fn headers(event: &Event) -> HeaderMap {
    let mut h = HeaderMap::new();
    // header_value removes CR/LF, the only thing HeaderValue refuses.
    if let Ok(v) = unique_header_value(&event.dedupe_key()).parse::<HeaderValue>() {
        h.insert(NATS_MESSAGE_ID, v);
    }
    let mut put = |name: HeaderName, value: &str| {
        if let Ok(v) = header_value(value).parse::<HeaderValue>() {
            h.insert(name, v);
        }
    };
    put(
        HeaderName::from_static("Webhook-Event-Id"),
        &event.id.to_string(),
    );
    put(HeaderName::from_static("Webhook-Hook"), &event.hook);
    put(HeaderName::from_static("Webhook-Provider"), &event.provider);
    if let Some(e) = &event.event_type {
        put(HeaderName::from_static("Webhook-Event"), e);
    }
    if let Some(d) = &event.delivery_id {
        put(HeaderName::from_static("Webhook-Delivery-Id"), d);
    }
    put(
        HeaderName::from_static("Webhook-Received-At"),
        &event
            .received_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
    );
    if let Some(ct) = &event.content_type {
        put(HeaderName::from_static("Content-Type"), ct);
    }
    h
}

impl Sink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), DeliveryError>> {
        if self.stream.is_some() && !self.stream_ready.load(Ordering::Acquire) {
            if let Err(e) = self.ensure_stream().await {
                return vec![Err(e)];
            }
        }
        let mut results = Vec::with_capacity(events.len());
        let mut acks = Vec::with_capacity(events.len());
        // Every publish goes out before any ack is awaited; a refused send ends the batch there.
        let mut refused = None;
        for event in events {
            let subject = self.subject_for(event);
            let sent = self
                .js
                .publish_with_headers(subject.clone(), headers(event), event.body.clone())
                .await;
            match sent {
                Ok(ack) => acks.push((ack, subject)),
                Err(e) => {
                    refused = Some(self.classify(e, &subject).await);
                    break;
                }
            }
        }
        for (ack, subject) in acks {
            // Each ack is bounded by the context's timeout (publish_timeout).
            match ack.await {
                Ok(_) => results.push(Ok(())),
                Err(e) => {
                    results.push(Err(self.classify(e, &subject).await));
                    return results;
                }
            }
        }
        if let Some(e) = refused {
            results.push(Err(e));
        }
        results
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        if self.stream.is_some() && !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream().await?;
        }
        let subject = self.subject_for(event);
        let publish = async {
            self.js
                .publish_with_headers(subject.clone(), headers(event), event.body.clone())
                .await?
                .await
        };
        match tokio::time::timeout(self.publish_timeout, publish).await {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(e, &subject).await),
            Err(_) => Err(DeliveryError::retry(format!(
                "no ack within {:?} ({})",
                self.publish_timeout,
                if self.is_connected() {
                    "connected"
                } else {
                    "not connected"
                }
            ))),
        }
    }
}

/// For `check-config --connect`: reach the broker once within `connect_timeout`, confirm
/// JetStream answers and say whether the stream exists. Errors carry no credentials.
pub async fn check(config: &NatsConfig) -> Result<String, String> {
    config.validate().map_err(|e| e.to_string())?;
    let addrs = config.server_addrs().map_err(|e| e.to_string())?;
    let url = config.redacted_url();
    let secrets = config.auth.secrets();
    let fail =
        |what: &str, e: &dyn std::fmt::Display| scrub(&format!("{url}: {what}: {e}"), &secrets);
    let opts = config.options().await.map_err(|e| fail("config", &e))?;
    let bound = config.connect_timeout + Duration::from_secs(1);
    let client = match tokio::time::timeout(bound, opts.connect(addrs)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(fail("connect", &e)),
        Err(_) => return Err(fail("connect", &format!("no answer within {bound:?}"))),
    };
    let version = client.server_info().version;
    jetstream_enabled(&client, config.connect_timeout)
        .await
        .map_err(|e| fail("JetStream", &e))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(config.connect_timeout)
        .build(client);
    let stream = match &config.stream {
        None => String::new(),
        Some(name) => match js.get_stream(name).await {
            Ok(_) => format!(", stream {name} exists"),
            Err(_) => format!(", stream {name} will be created"),
        },
    };
    Ok(format!(
        "nats-server {version} at {url}: JetStream enabled{stream}"
    ))
}

/// Asks `$JS.API.INFO` directly: the crate's `query_account` cannot parse nats-server 2.9's
/// answer (it requires the `reserved_memory`/`reserved_storage` fields added later).
async fn jetstream_enabled(client: &Client, timeout: Duration) -> Result<(), String> {
    let reply = tokio::time::timeout(timeout, client.request("$JS.API.INFO", Bytes::new()))
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::NoResponders => "not enabled on this server".to_owned(),
            _ => e.to_string(),
        })?;
    let info: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(|e| format!("unreadable answer: {e}"))?;
    match info.get("error") {
        None => Ok(()),
        Some(err) => Err(err
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("error")
            .to_owned()),
    }
}
