//! A sink's live status, shared (`Arc`) between its runner, `/healthz`, the metrics and intake: the
//! runner writes it, everyone else reads a [`StatusSnapshot`] or waits on the confirmed sequence.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::watch;

use super::Event;

/// Confirmation-time buckets: 0.5 ms to about 33 s, four per doubling, so a p50 or p99 read from
/// them (interpolated) is within about 10% of the true value.
fn confirm_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2f64.powf(0.25), 65)
}

/// Where a sink stands with its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkState {
    /// Started, nothing delivered or refused yet.
    Connecting,
    /// The last delivery succeeded.
    Connected,
    /// Deliveries are failing with retryable errors; backing off.
    Retrying,
    /// The destination told us to stop (HTTP 410); waiting for [`Runner::resume`](super::runner::Runner::resume).
    Paused,
}

impl SinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkState::Connecting => "connecting",
            SinkState::Connected => "connected",
            SinkState::Retrying => "retrying",
            SinkState::Paused => "paused",
        }
    }
}

/// A point-in-time copy of a sink's status, for `/healthz` and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSnapshot {
    pub name: String,
    pub state: SinkState,
    /// Why the sink is paused, while it is.
    pub paused_reason: Option<String>,
    pub delivered: u64,
    /// Attempts that failed with a retryable error and were scheduled again.
    pub retried: u64,
    pub dead_lettered: u64,
    /// Events the sink's `hooks`/`events` filter passed over.
    pub filtered: u64,
    /// Spooled events that could not be read back (damaged records stepped over).
    pub lost: u64,
    pub in_flight: u64,
    pub last_error: Option<String>,
    /// Durable events this sink has not finished yet.
    pub lag_events: u64,
    /// Age of the oldest event the sink is working on; 0 when it has nothing in hand.
    pub lag_seconds: f64,
}

#[derive(Debug)]
struct Words {
    paused_reason: Option<String>,
    last_error: Option<String>,
}

/// Entries kept in each of a sink's [`Ledger`] lists. The operator page keeps `[admin] recent`
/// deliveries (1000 by default) and each confirmation step covers at least one of them, so this
/// many steps answer "when" for every kept delivery at the default; older ones show no time.
/// 16 bytes an entry: 64 KiB per sink at most.
pub const LEDGER_CAP: usize = 4096;

/// When the confirmed point moved and which events were dead-lettered, for the operator page's
/// "which sinks have delivered it and when". Written by the runner once per confirmation step
/// (not per request), read only when a delivery's detail is shown.
#[derive(Debug)]
struct Ledger {
    /// The confirmed point when the runner started: this status knows nothing about events at or
    /// before it.
    started_at: u64,
    /// (confirmed point, when it got there), oldest first, both increasing.
    confirmed: VecDeque<(u64, DateTime<Utc>)>,
    /// The confirmed point before the oldest kept step (`started_at` until one is dropped).
    floor: u64,
    /// (sequence number, when), in the order they were written.
    dead: VecDeque<(u64, DateTime<Utc>)>,
    /// The highest dead-lettered sequence number that fell out of `dead`, 0 if none did.
    dead_forgotten: u64,
}

/// What a sink has done with one spooled event, as far as its status can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Not yet confirmed.
    Pending,
    /// At or before the point the runner started from: confirmed by an earlier run, or spooled
    /// before the sink existed (a sink added by a reload starts at the end of the spool).
    BeforeStart,
    /// Confirmed; `None` when the step is older than the ledger keeps.
    Delivered(Option<DateTime<Utc>>),
    DeadLettered(DateTime<Utc>),
    /// Confirmed, but whether delivered or dead-lettered fell out of the ledger.
    Unknown,
}

/// The shared status. Counters are atomics (written per event); the words sit behind a mutex
/// (written on state changes and errors only).
#[derive(Debug)]
pub struct SinkStatus {
    name: String,
    /// A watch so `/healthz`, diagnostics and tests can wait for a change instead of polling.
    state: watch::Sender<SinkState>,
    words: Mutex<Words>,
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// `received_at` (Unix ms) of the oldest event in hand, `i64::MIN` when none.
    oldest_ms: AtomicI64,
    durable: watch::Receiver<u64>,
    /// The highest sequence number such that this sink is done with it and everything before it
    /// (delivered, dead-lettered or filtered out); published as soon as known, before the
    /// checkpoint file catches up.
    confirmed: watch::Sender<u64>,
    /// Seconds from an event's arrival (`received_at`) to its destination's confirmation: what
    /// an operator reads as "how far behind intake is the stream", and what the bench reports.
    confirm_seconds: Histogram,
    /// Seconds from an event's 2xx (the group commit that made it durable) to its destination's
    /// confirmation: what forwarding adds after the sender was answered.
    ack_confirm_seconds: Histogram,
    ledger: Mutex<Ledger>,
}

/// The runner stopped before the awaited sequence number was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sink stopped")]
pub struct Stopped;

impl SinkStatus {
    pub(crate) fn new(name: &str, durable: watch::Receiver<u64>, confirmed: u64) -> Self {
        SinkStatus {
            name: name.to_owned(),
            state: watch::Sender::new(SinkState::Connecting),
            words: Mutex::new(Words {
                paused_reason: None,
                last_error: None,
            }),
            delivered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            oldest_ms: AtomicI64::new(i64::MIN),
            durable,
            confirmed: watch::Sender::new(confirmed),
            confirm_seconds: Histogram::new(confirm_buckets()),
            ack_confirm_seconds: Histogram::new(confirm_buckets()),
            ledger: Mutex::new(Ledger {
                started_at: confirmed,
                confirmed: VecDeque::new(),
                floor: confirmed,
                dead: VecDeque::new(),
                dead_forgotten: 0,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn state(&self) -> SinkState {
        *self.state.borrow()
    }

    pub fn watch_state(&self) -> watch::Receiver<SinkState> {
        self.state.subscribe()
    }

    /// Sets the state; says whether it changed.
    fn set_state(&self, to: SinkState) -> bool {
        self.state
            .send_if_modified(|s| std::mem::replace(s, to) != to)
    }

    /// Watch of the confirmed sequence number (see the field). Intake holds one per required sink.
    pub fn confirmed(&self) -> watch::Receiver<u64> {
        self.confirmed.subscribe()
    }

    /// Waits until this sink is done with `seq` (for `required = true`; bound it with a timeout).
    /// Dead-lettered and filtered events count as done: look at `dead_lettered` to tell them apart.
    pub async fn wait_confirmed(&self, seq: u64) -> Result<(), Stopped> {
        let mut rx = self.confirmed.subscribe();
        rx.wait_for(|&c| c >= seq)
            .await
            .map(|_| ())
            .map_err(|_| Stopped)
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let w = self.words();
        let confirmed = *self.confirmed.borrow();
        let oldest = self.oldest_ms.load(Ordering::Relaxed);
        let lag_seconds = if oldest == i64::MIN {
            0.0
        } else {
            (Utc::now().timestamp_millis() - oldest).max(0) as f64 / 1000.0
        };
        StatusSnapshot {
            name: self.name.clone(),
            state: self.state(),
            paused_reason: w.paused_reason.clone(),
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            filtered: self.filtered.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            last_error: w.last_error.clone(),
            lag_events: self.durable.borrow().saturating_sub(confirmed),
            lag_seconds,
        }
    }

    /// The `webhook_sink_confirm_seconds` series (shared: it is the live histogram).
    pub fn confirm_seconds(&self) -> &Histogram {
        &self.confirm_seconds
    }

    /// The `webhook_sink_ack_to_confirm_seconds` series (shared: the live histogram).
    pub fn ack_confirm_seconds(&self) -> &Histogram {
        &self.ack_confirm_seconds
    }

    fn words(&self) -> std::sync::MutexGuard<'_, Words> {
        self.words.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this sink has done with the event spooled as `seq`.
    pub fn done(&self, seq: u64) -> Done {
        let confirmed = *self.confirmed.borrow();
        let l = self.ledger();
        if seq <= l.started_at {
            return Done::BeforeStart;
        }
        if seq > confirmed {
            return Done::Pending;
        }
        // In the order they finished, which with several in flight is not sequence order.
        if let Some(&(_, at)) = l.dead.iter().rev().find(|&&(s, _)| s == seq) {
            return Done::DeadLettered(at);
        }
        if seq <= l.dead_forgotten {
            return Done::Unknown;
        }
        if seq <= l.floor {
            return Done::Delivered(None);
        }
        // The first step that reached `seq`.
        let step = l.confirmed.partition_point(|&(c, _)| c < seq);
        Done::Delivered(l.confirmed.get(step).map(|&(_, t)| t))
    }

    /// Called by the runner only (one writer), so the check and the two writes cannot interleave
    /// with another publish. The ledger gets the step first: whoever sees the new point (a
    /// `wait_confirmed`, the page) finds its time there.
    pub(crate) fn publish_confirmed(&self, seq: u64) {
        if seq <= *self.confirmed.borrow() {
            return;
        }
        {
            let mut l = self.ledger();
            if l.confirmed.len() >= LEDGER_CAP {
                if let Some((c, _)) = l.confirmed.pop_front() {
                    l.floor = c;
                }
            }
            l.confirmed.push_back((seq, Utc::now()));
        }
        self.confirmed.send_if_modified(|c| {
            let changed = seq > *c;
            *c = (*c).max(seq);
            changed
        });
    }

    /// `seq` was dead-lettered (recorded before its confirmation is published).
    pub(crate) fn on_dead_lettered(&self, seq: u64) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let mut l = self.ledger();
        if l.dead.len() >= LEDGER_CAP {
            if let Some((s, _)) = l.dead.pop_front() {
                l.dead_forgotten = l.dead_forgotten.max(s);
            }
        }
        l.dead.push_back((seq, Utc::now()));
    }

    pub(crate) fn set_oldest(&self, received_at_ms: Option<i64>) {
        self.oldest_ms
            .store(received_at_ms.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    /// A delivery succeeded: connected (said once per reconnection).
    /// `acked_us`: when the event was acknowledged (Unix µs), when known
    /// ([`SpoolHandle::acked_at`](super::spool::SpoolHandle::acked_at)).
    pub(crate) fn on_delivered(&self, event: &Event, acked_us: Option<i64>) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let now = Utc::now();
        let us = (now - event.received_at)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        self.confirm_seconds.observe(us.max(0) as f64 / 1e6);
        if let Some(acked) = acked_us {
            let us = now.timestamp_micros().saturating_sub(acked);
            self.ack_confirm_seconds.observe(us.max(0) as f64 / 1e6);
        }
        let from = self.state();
        if from != SinkState::Paused && self.set_state(SinkState::Connected) {
            tracing::info!(sink = %self.name, "sink connected");
        }
    }

    /// A delivery failed and will be tried again after `delay`.
    pub(crate) fn on_retry(&self, error: &str, delay: Duration) {
        self.retried.fetch_add(1, Ordering::Relaxed);
        self.words().last_error = Some(error.to_owned());
        if self.state() != SinkState::Paused && self.set_state(SinkState::Retrying) {
            tracing::warn!(sink = %self.name, %error, retry_in_ms = delay.as_millis() as u64,
                "sink unavailable; events wait in the spool");
        }
    }

    pub(crate) fn on_error(&self, error: String) {
        self.words().last_error = Some(error);
    }

    pub(crate) fn on_paused(&self, reason: &str) {
        {
            let mut w = self.words();
            w.paused_reason = Some(reason.to_owned());
            w.last_error = Some(reason.to_owned());
        }
        if self.set_state(SinkState::Paused) {
            tracing::error!(sink = %self.name, %reason,
                "sink paused by its destination; events wait in the spool until a reload");
        }
    }

    pub(crate) fn on_resumed(&self) {
        self.words().paused_reason = None;
        if self.set_state(SinkState::Connecting) {
            tracing::info!(sink = %self.name, "sink resumed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_says_when_each_event_was_passed_and_forgets_the_oldest_times() {
        let (_durable, rx) = watch::channel(0);
        let st = SinkStatus::new("s", rx, 10);
        assert_eq!(st.done(10), Done::BeforeStart);
        assert_eq!(st.done(11), Done::Pending);
        st.publish_confirmed(12);
        let Done::Delivered(Some(first)) = st.done(11) else {
            panic!("{:?}", st.done(11))
        };
        assert_eq!(
            st.done(12),
            Done::Delivered(Some(first)),
            "one step confirmed both"
        );
        st.on_dead_lettered(13);
        st.publish_confirmed(13);
        assert!(matches!(st.done(13), Done::DeadLettered(_)));
        st.publish_confirmed(13); // no move: no step
        for c in 14..14 + LEDGER_CAP as u64 {
            st.publish_confirmed(c);
        }
        assert_eq!(st.done(12), Done::Delivered(None), "its step fell out");
        assert!(
            matches!(st.done(13), Done::DeadLettered(_)),
            "dead letters kept apart"
        );
        assert!(matches!(
            st.done(14 + LEDGER_CAP as u64 - 1),
            Done::Delivered(Some(_))
        ));
        for seq in 0..LEDGER_CAP as u64 {
            st.on_dead_lettered(100_000 + seq);
        }
        assert_eq!(
            st.done(13),
            Done::Unknown,
            "a dead letter forgotten: no longer known which"
        );
    }
}
