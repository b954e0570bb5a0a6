//! The Redis Streams sink: one Lua script per event adds the entry and marks the dedupe key in one
//! atomic step, so a re-send (ours after a crash, or a sender's retry on another replica) adds
//! nothing.
//!
//! Keys: the stream key as configured and, beside it, `<stream>:dedupe:<dedupe key>`. On Redis
//! Cluster give the stream key a hash tag (`{webhooks}`): the dedupe key starts with the stream
//! key, so its first `{...}` is the same tag and both land in one slot, which a script needs.
//!
//! The `ConnectionManager` reconnects by itself; every call is bounded by `call_timeout`.
//!
//! A batch is one script call that adds each event in turn, the same step as for one event, and
//! stops at the first refusal: one round trip, and with `appendfsync always` one fsync for the
//! batch. (A pipeline of one call per event syncs about every 16 KiB, once per read of the
//! connection: ~3,000 events/s here.) It keeps the order: the runner re-sends from the refused
//! event on, and the ones before it are de-duplicated.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::SecondsFormat;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, RedisError, Script};
use std::future::Future;
use std::task::Poll;

use super::redact::{redact_url, scrub};
use super::{DeliveryError, Event, Sink};

/// Bound on one `deliver`: a healthy local Redis answers in well under a millisecond.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Matches the NATS default: long enough to cover a sender's quick retries.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(120);
pub const DEFAULT_MAXLEN: u64 = 1_000_000;
/// Events per script call when `max_batch` is not set: twice the other sinks'. With
/// `appendfsync always` Redis syncs once per call (it reads a connection 16 KiB at a time, so two
/// pipelined calls never share a sync): `perf trace` of a drain counted 2,182 fdatasyncs, 2.06 s
/// of its main thread blocked, at 128 and 1,087, 1.36 s, at 256. A call of 256 runs about 5 ms,
/// under Redis's 10 ms slowlog threshold; 512 gained nothing more and cost more CPU here.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// KEYS[1] stream, KEYS[2] dedupe key; ARGV[1] maxlen, ARGV[2] window (s), ARGV[3..] fields.
/// A script is not rolled back, so an XADD that fails (WRONGTYPE) deletes the dedupe key it set:
/// none may be left behind to hide the event from the retry.
const DELIVER_LUA: &str = r"
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return false
end
local id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
if type(id) == 'table' and id.err then
  redis.call('DEL', KEYS[2])
end
return id
";

/// The batch form of [`DELIVER_LUA`]: KEYS[1] stream, KEYS[2..] one dedupe key per event; ARGV[1]
/// maxlen, ARGV[2] window (s), then per event its field count and fields. Returns `{done}` or, at
/// the first XADD refused, `{done, error}`: the events before it are in (or were already). `SET NX`
/// checks and sets the key in one call (its key is deleted again if the XADD is refused): two calls
/// per event instead of three, 11 % less redis-server CPU per event over a drain.
const DELIVER_BATCH_LUA: &str = r"
local a = 3
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    local id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, a + 1, a + n))
    if type(id) == 'table' and id.err then
      redis.call('DEL', KEYS[i])
      return {i - 2, id.err}
    end
  end
  a = a + 1 + n
end
return {#KEYS - 1}
";

/// One `kind = "redis"` sink, with resolved values.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub name: String,
    /// `redis://host:port/db` or `rediss://` for TLS (system roots).
    pub url: String,
    /// ACL user, when not in the URL.
    pub username: Option<String>,
    /// Password, when not in the URL. Never logged.
    pub password: Option<String>,
    /// The stream key.
    pub stream: String,
    /// `XADD MAXLEN ~`: size it for the longest outage of your consumers.
    pub maxlen: u64,
    pub dedupe_window: Duration,
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("stream", &self.stream)
            .field("maxlen", &self.maxlen)
            .field("dedupe_window", &self.dedupe_window)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisConfigError {
    #[error("url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("the stream key is empty")]
    EmptyStream,
    #[error("maxlen must be at least 1")]
    ZeroMaxlen,
}

impl RedisConfig {
    pub fn new(name: impl Into<String>, url: impl Into<String>, stream: impl Into<String>) -> Self {
        RedisConfig {
            name: name.into(),
            url: url.into(),
            username: None,
            password: None,
            stream: stream.into(),
            maxlen: DEFAULT_MAXLEN,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Checks what can be checked without a server, and builds the client (no connection yet).
    pub fn client(&self) -> Result<Client, RedisConfigError> {
        if self.stream.is_empty() {
            return Err(RedisConfigError::EmptyStream);
        }
        if self.maxlen == 0 {
            return Err(RedisConfigError::ZeroMaxlen);
        }
        let bad = |e: RedisError| RedisConfigError::Url {
            url: redact_url(&self.url),
            reason: scrub(&e.to_string(), &self.secrets()),
        };
        let mut info = self.url.as_str().into_connection_info().map_err(bad)?;
        let mut settings = info.redis_settings().clone();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        info = info.set_redis_settings(settings);
        Client::open(info).map_err(bad)
    }

    /// Whether the stream key has a hash tag, so the script's two keys share a cluster slot.
    pub fn cluster_safe(&self) -> bool {
        hash_tag(&self.stream).is_some()
    }

    fn secrets(&self) -> Vec<&str> {
        self.password.iter().map(String::as_str).collect()
    }
}

/// The key that marks `dedupe_key` as delivered to `stream`.
pub fn dedupe_key(stream: &str, dedupe_key: &str) -> String {
    format!("{stream}:dedupe:{dedupe_key}")
}

/// The part of `key` Redis Cluster hashes: the text between the first `{` and the first `}`
/// after it, when that is not empty; else none (the whole key is hashed).
pub fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let len = key[open + 1..].find('}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// Appends each event to a Redis stream once.
pub struct RedisSink {
    name: String,
    manager: ConnectionManager,
    script: Script,
    stream: String,
    maxlen: u64,
    window_secs: u64,
    call_timeout: Duration,
    /// As of the last call: Redis gives no push signal for a dropped connection.
    connected: AtomicBool,
    /// Whose turn it is to hand a batch to the connection (FIFO): see [`Sink::deliver_batch`].
    send_order: tokio::sync::Mutex<()>,
    secrets: Vec<String>,
}

impl RedisSink {
    /// Builds the sink without connecting: a Redis that is down at start-up does not fail
    /// start-up, it makes `deliver` answer `Retry` until it is back.
    pub fn new(config: RedisConfig) -> Result<Self, RedisConfigError> {
        let client = config.client()?;
        // Few internal retries: the runner has its own backoff, and a call must stay bounded.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.call_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|e| {
                RedisConfigError::Url {
                    url: redact_url(&config.url),
                    reason: scrub(&e.to_string(), &config.secrets()),
                }
            })?;
        Ok(RedisSink {
            secrets: config.secrets().into_iter().map(str::to_owned).collect(),
            name: config.name,
            manager,
            script: Script::new(DELIVER_LUA),
            stream: config.stream,
            maxlen: config.maxlen,
            window_secs: config.dedupe_window.as_secs().max(1),
            call_timeout: config.call_timeout,
            connected: AtomicBool::new(false),
            send_order: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the last call reached Redis (see [`RedisSink::ping`] to refresh it while idle).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// One PING within `call_timeout`; refreshes [`RedisSink::is_connected`].
    pub async fn ping(&self) -> bool {
        let mut conn = self.manager.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        let ok = matches!(
            tokio::time::timeout(self.call_timeout, ping).await,
            Ok(Ok(_))
        );
        self.set_connected(ok);
        ok
    }

    fn set_connected(&self, now: bool) {
        let was = self.connected.swap(now, Ordering::Relaxed);
        if was != now {
            if now {
                tracing::info!(sink = %self.name, "redis sink connected");
            } else {
                tracing::warn!(sink = %self.name, "redis sink disconnected");
            }
        }
    }

    fn classify(&self, e: &RedisError) -> DeliveryError {
        let refs: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let text = scrub(&e.to_string(), &refs);
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
        {
            self.set_connected(false);
            return DeliveryError::retry(text);
        }
        // The server answered, so the connection is fine; what did it say?
        self.set_connected(true);
        let script_bug =
            e.code() == Some("ERR") && e.detail().is_some_and(|d| d.contains("user_script"));
        if e.code() == Some("WRONGTYPE") || script_bug {
            DeliveryError::Permanent(text)
        } else {
            // OOM, NOPERM, READONLY, LOADING, CLUSTERDOWN, auth…: an operator or time fixes them.
            DeliveryError::retry(text)
        }
    }
}

impl RedisSink {
    /// The script call that adds `event` once.
    fn invocation(&self, event: &Event) -> redis::ScriptInvocation<'_> {
        let mut inv = self.script.prepare_invoke();
        inv.key(&self.stream)
            .key(dedupe_key(&self.stream, &event.dedupe_key()))
            .arg(self.maxlen)
            .arg(self.window_secs);
        for f in &fields(event) {
            inv.arg(f.as_ref());
        }
        inv
    }

    /// What an XADD refused inside the batch script means (the script hands back its error text).
    fn classify_reply(&self, error: &str) -> DeliveryError {
        let refs: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let text = scrub(error, &refs);
        if text.starts_with("WRONGTYPE") {
            DeliveryError::Permanent(text)
        } else {
            DeliveryError::retry(text)
        }
    }
}

/// The `EVAL` of [`DELIVER_BATCH_LUA`] for `events` (public for `benches/forward.rs`).
/// Sized once: grown by doubling, a 128-event batch (~200 kB) was copied several times over and
/// its fresh pages faulted in each time (mimalloc returns freed memory at once, see `cli.rs`).
pub fn batch_command(stream: &str, maxlen: u64, window_secs: u64, events: &[Event]) -> redis::Cmd {
    let keys: Vec<String> = events
        .iter()
        .map(|e| dedupe_key(stream, &e.dedupe_key()))
        .collect();
    let entries: Vec<Vec<Cow<'_, [u8]>>> = events.iter().map(fields).collect();
    let args = 6 + keys.len() + entries.iter().map(|f| 1 + f.len()).sum::<usize>();
    // Integers are written as decimal text; 20 bytes holds any u64.
    let bytes = 4
        + DELIVER_BATCH_LUA.len()
        + 20
        + stream.len()
        + 40
        + keys.iter().map(String::len).sum::<usize>()
        + entries.iter().flatten().map(|f| f.len()).sum::<usize>()
        + 20 * entries.len();
    let mut cmd = redis::Cmd::with_capacity(args, bytes);
    cmd.arg("EVAL")
        .arg(DELIVER_BATCH_LUA)
        .arg(1 + events.len())
        .arg(stream);
    for key in &keys {
        cmd.arg(key);
    }
    cmd.arg(maxlen).arg(window_secs);
    for fields in &entries {
        cmd.arg(fields.len());
        for f in fields {
            cmd.arg(f.as_ref());
        }
    }
    cmd
}

/// An event's stream entry, as field/value pairs in order.
fn fields<'a>(event: &'a Event) -> Vec<Cow<'a, [u8]>> {
    let mut f: Vec<Cow<'a, [u8]>> = Vec::with_capacity(16);
    let mut put = |name: &'static str, value: Cow<'a, [u8]>| {
        f.push(Cow::Borrowed(name.as_bytes()));
        f.push(value);
    };
    put("event_id", Cow::Owned(event.id.to_string().into_bytes()));
    put("hook", Cow::Borrowed(event.hook.as_bytes()));
    put("provider", Cow::Borrowed(event.provider.as_bytes()));
    if let Some(e) = &event.event_type {
        put("event", Cow::Borrowed(e.as_bytes()));
    }
    if let Some(d) = &event.delivery_id {
        put("delivery_id", Cow::Borrowed(d.as_bytes()));
    }
    let at = event
        .received_at
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    put("received_at", Cow::Owned(at.into_bytes()));
    if let Some(ct) = &event.content_type {
        put("content_type", Cow::Borrowed(ct.as_bytes()));
    }
    put("body", Cow::Borrowed(event.body.as_ref()));
    f
}

impl Sink for RedisSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Two: Redis runs a connection's scripts in order, so while it executes (and, with
    /// `appendfsync always`, syncs) one batch, the next is built and on its way. One at a time,
    /// each side waited for the other: Redis was busy 70 % of a drain (`scripts/bench.sh`).
    fn pipeline_depth(&self) -> usize {
        2
    }

    /// Sent as `EVAL` with the script's text, never `EVALSHA`: with two batches out, a script
    /// cache that is empty (a restarted Redis, `SCRIPT FLUSH`) answered both `NOSCRIPT`, and
    /// redis-rs's load-and-retry (two more round trips each) let the second batch's retry land
    /// first, out of order. Redis compiles the text once and keeps it; hashing ~600 bytes per
    /// batch is what this costs.
    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), DeliveryError>> {
        let cmd = batch_command(&self.stream, self.maxlen, self.window_secs, events);
        let mut conn = self.manager.clone();
        let call = cmd.query_async::<Vec<redis::Value>>(&mut conn);
        let mut call = std::pin::pin!(tokio::time::timeout(self.call_timeout, call));
        // Two batches out must reach Redis in the order they were started. While the lazy
        // connection is (re)connecting, every call waits on it and is woken at once, in no
        // particular order (the second batch landed first in 1-4 of 25 runs of
        // `two_batches_out_on_an_empty_script_cache_keep_the_order`, with no error), so a call
        // then runs whole in its turn. Connected, the first poll queues the command on the one
        // connection, and the next batch may follow at once.
        let early = {
            let _turn = self.send_order.lock().await;
            if self.connected.load(Ordering::Relaxed) {
                std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
            } else {
                Poll::Ready(call.as_mut().await)
            }
        };
        let result = match early {
            Poll::Ready(r) => r,
            Poll::Pending => call.await,
        };
        match result {
            Ok(Ok(reply)) => {
                self.set_connected(true);
                let done = match reply.first() {
                    Some(redis::Value::Int(n)) => usize::try_from(*n).unwrap_or(0),
                    _ => 0,
                };
                let mut results: Vec<Result<(), DeliveryError>> =
                    (0..done.min(events.len())).map(|_| Ok(())).collect();
                match reply.get(1) {
                    Some(redis::Value::BulkString(b)) => {
                        results.push(Err(self.classify_reply(&String::from_utf8_lossy(b))))
                    }
                    Some(redis::Value::SimpleString(t)) => {
                        results.push(Err(self.classify_reply(t)))
                    }
                    Some(other) => results.push(Err(DeliveryError::retry(format!(
                        "unexpected script reply {other:?}"
                    )))),
                    None => {}
                }
                results
            }
            Ok(Err(e)) => vec![Err(self.classify(&e))],
            Err(_) => {
                self.set_connected(false);
                vec![Err(DeliveryError::retry(format!(
                    "no answer within {:?}",
                    self.call_timeout
                )))]
            }
        }
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        let inv = self.invocation(event);
        let mut conn = self.manager.clone();
        let call = inv.invoke_async::<Option<String>>(&mut conn);
        match tokio::time::timeout(self.call_timeout, call).await {
            // Some(id): added; None: the dedupe key was set, the stream already has it.
            Ok(Ok(_)) => {
                self.set_connected(true);
                Ok(())
            }
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => {
                self.set_connected(false);
                Err(DeliveryError::retry(format!(
                    "no answer within {:?}",
                    self.call_timeout
                )))
            }
        }
    }
}

/// For `check-config --connect`: connect once, PING, and make sure the stream key is a stream or
/// absent. Errors carry no credentials.
pub async fn check(config: &RedisConfig) -> Result<String, String> {
    let client = config.client().map_err(|e| e.to_string())?;
    let url = redact_url(&config.url);
    let secrets = config.secrets();
    let fail = |e: &dyn std::fmt::Display| scrub(&format!("{url}: {e}"), &secrets);
    let bound = config.connect_timeout + config.call_timeout;
    let probe = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let kind: String = redis::cmd("TYPE")
            .arg(&config.stream)
            .query_async(&mut conn)
            .await?;
        Ok::<_, RedisError>((info, kind))
    };
    let (info, kind) = match tokio::time::timeout(bound, probe).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(fail(&e)),
        Err(_) => return Err(fail(&format!("no answer within {bound:?}"))),
    };
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim();
    let stream = match kind.as_str() {
        "stream" => format!("stream {} exists", config.stream),
        "none" => format!("stream {} will be created", config.stream),
        other => {
            return Err(fail(&format!(
                "key {} holds a {other}, not a stream",
                config.stream
            )))
        }
    };
    let cluster = if config.cluster_safe() {
        ""
    } else {
        " (no hash tag in the stream key: fine on one server, fails on Redis Cluster)"
    };
    Ok(format!("redis {version} at {url}: {stream}{cluster}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_tags_follow_the_cluster_rule() {
        assert_eq!(hash_tag("{webhooks}"), Some("webhooks"));
        assert_eq!(hash_tag("a{b}c{d}"), Some("b"));
        assert_eq!(hash_tag("webhooks"), None);
        assert_eq!(hash_tag("{}x"), None);
        assert_eq!(hash_tag("a{b"), None);
    }

    #[test]
    fn config_debug_hides_the_password() {
        let mut c = RedisConfig::new("cache", "redis://u:s3cret@h:6379/0", "w");
        c.password = Some("other-secret".into());
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret") && !d.contains("other-secret"), "{d}");
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        let mut c = RedisConfig::new("cache", "http://u:pw-123@h/0", "w");
        c.password = Some("pw-123".into());
        let Err(e) = c.client() else {
            panic!("http:// is not redis")
        };
        let e = e.to_string();
        assert!(!e.contains("pw-123"), "{e}");
    }

    proptest! {
        /// Whatever the dedupe key holds (a hostile delivery id with braces), a tagged stream key
        /// and its dedupe key hash to the same slot.
        #[test]
        fn dedupe_key_shares_the_streams_slot(prefix in "[a-z]{0,4}", tag in "[a-z:]{1,8}", key in any::<String>()) {
            let stream = format!("{prefix}{{{tag}}}");
            let dk = dedupe_key(&stream, &key);
            prop_assert_eq!(hash_tag(&dk), hash_tag(&stream));
        }
    }
}
