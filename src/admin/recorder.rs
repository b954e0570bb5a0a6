//! The recorder: the last `recent` deliveries in a bounded ring, per-hook counts, and a broadcast
//! of each new record to the live page.
//!
//! The request path pays for building one [`Record`] and one short critical section (push, evict,
//! count, broadcast); nothing in it awaits, and a slow browser cannot hold it: the broadcast is a
//! bounded tokio channel whose lagging receivers skip ahead and are told how many they missed.
//! Push and broadcast happen under the same lock as a subscriber's backlog snapshot, so a stream
//! that resumes after a `Last-Event-ID` neither loses nor repeats a row.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::record::Record;
use crate::http::observe::{Observed, Observer};
use crate::metrics::Outcome;

/// Records a live page may fall behind by before it skips ahead: a burst of this many is shown
/// whole, a browser slower than that for longer is told it missed some.
const STREAM_BUFFER: usize = 256;

pub struct Recorder {
    inner: Mutex<Ring>,
    tx: broadcast::Sender<Arc<Record>>,
}

struct Ring {
    /// The id the next record gets; ids start at 1, so `Last-Event-ID: 0` means "everything".
    next_id: u64,
    /// Oldest first.
    recent: VecDeque<Arc<Record>>,
    cap: usize,
    /// Since start, by hook path, so the counts outlive the ring.
    stats: BTreeMap<String, HookStats>,
}

/// Counts by outcome and the last accepted time of one hook, since start.
#[derive(Debug, Clone, Default)]
pub struct HookStats {
    pub counts: BTreeMap<&'static str, u64>,
    pub last_accepted: Option<DateTime<Utc>>,
}

/// What a new stream starts with: the kept records after its last id, then the live ones.
pub struct Subscription {
    pub backlog: Vec<Arc<Record>>,
    /// Records after the last id that the ring no longer holds (the stream says so).
    pub missed: u64,
    pub live: broadcast::Receiver<Arc<Record>>,
}

impl Recorder {
    pub fn new(recent: usize) -> Recorder {
        Recorder {
            inner: Mutex::new(Ring {
                next_id: 1,
                recent: VecDeque::with_capacity(recent.min(4096)),
                cap: recent.max(1),
                stats: BTreeMap::new(),
            }),
            tx: broadcast::channel(STREAM_BUFFER).0,
        }
    }

    /// A poisoned lock only means another request panicked mid-push; the ring is still whole.
    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers `record`, keeps it, counts it and sends it to the live pages.
    pub fn push(&self, mut record: Record) -> u64 {
        let mut ring = self.lock();
        let id = ring.next_id;
        ring.next_id += 1;
        record.summary.id = id;
        let count = |stats: &mut HookStats| {
            *stats.counts.entry(record.summary.outcome).or_default() += 1;
            if record.summary.outcome == Outcome::accepted.as_str() {
                stats.last_accepted = Some(record.summary.received_at);
            }
        };
        // The hook's key is allocated the first time it is seen, not per request.
        match ring.stats.get_mut(&*record.summary.hook) {
            Some(stats) => count(stats),
            None => {
                let mut stats = HookStats::default();
                count(&mut stats);
                ring.stats.insert(record.summary.hook.to_string(), stats);
            }
        }
        let record = Arc::new(record);
        if ring.recent.len() >= ring.cap {
            ring.recent.pop_front();
        }
        ring.recent.push_back(record.clone());
        // Nobody has the page open: nothing to send (and no error built to say so).
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(record);
        }
        id
    }

    /// The kept records, newest first, that `keep` selects, at most `limit`.
    pub fn list(&self, limit: usize, keep: impl Fn(&Record) -> bool) -> Vec<Arc<Record>> {
        let ring = self.lock();
        ring.recent
            .iter()
            .rev()
            .filter(|r| keep(r))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Record>> {
        let ring = self.lock();
        // Ids are consecutive in the ring: index arithmetic instead of a search.
        let first = ring.recent.front()?.summary.id;
        let at = usize::try_from(id.checked_sub(first)?).ok()?;
        ring.recent.get(at).cloned()
    }

    /// Counts by hook since start.
    pub fn stats(&self) -> BTreeMap<String, HookStats> {
        self.lock().stats.clone()
    }

    /// Latencies (ms) of the kept records of each hook, for percentiles.
    pub fn latencies(&self) -> BTreeMap<String, Vec<f64>> {
        let ring = self.lock();
        let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &ring.recent {
            out.entry(r.summary.hook.to_string())
                .or_default()
                .push(r.summary.latency_ms);
        }
        out
    }

    /// The id of the newest record (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.lock().next_id - 1
    }

    /// A stream's start: every kept record after `after`, and the live ones from then on. Taken
    /// under the push lock, so the two meet exactly.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let ring = self.lock();
        let live = self.tx.subscribe();
        let Some(after) = after else {
            return Subscription {
                backlog: Vec::new(),
                missed: 0,
                live,
            };
        };
        let newest = ring.next_id - 1;
        // An id this process never gave (the page outlived a restart): start from the oldest kept.
        let after = if after > newest { 0 } else { after };
        let backlog: Vec<_> = ring
            .recent
            .iter()
            .filter(|r| r.summary.id > after)
            .cloned()
            .collect();
        let missed = (newest - after).saturating_sub(backlog.len() as u64);
        Subscription {
            backlog,
            missed,
            live,
        }
    }
}

impl Observer for Recorder {
    fn observe(&self, request: Observed<'_>) {
        // A path no hook has is a scanner's, not a delivery: counted in the metrics only.
        if request.hook.is_none() {
            return;
        }
        self.push(Record::new(request));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::record::Summary;

    fn record(hook: &str, outcome: Outcome) -> Record {
        Record {
            summary: Summary {
                id: 0,
                received_at: Utc::now(),
                hook: hook.into(),
                provider: Some("netbox"),
                client: crate::client_ip::Client::Known("192.0.2.1".parse().unwrap()),
                outcome: outcome.as_str(),
                status: 200,
                reason: None,
                size: Some(2),
                event: None,
                delivery_id: None,
                event_id: None,
                latency_ms: 1.0,
                seq: None,
            },
            method: axum::http::Method::POST,
            headers: Default::default(),
            body: Some(crate::admin::record::KeptBody::new(b"{}")),
            body_truncated: false,
            expected: None,
        }
    }

    fn ids(records: &[Arc<Record>]) -> Vec<u64> {
        records.iter().map(|r| r.summary.id).collect()
    }

    #[test]
    fn the_ring_keeps_the_newest_and_counts_everything() {
        let rec = Recorder::new(3);
        for _ in 0..5 {
            rec.push(record("/a", Outcome::accepted));
        }
        rec.push(record("/a", Outcome::rejected_signature));
        assert_eq!(ids(&rec.list(10, |_| true)), [6, 5, 4]);
        assert!(rec.get(3).is_none(), "evicted");
        assert_eq!(rec.get(5).unwrap().summary.id, 5);
        assert!(rec.get(7).is_none());
        let stats = &rec.stats()["/a"];
        assert_eq!(stats.counts["accepted"], 5, "counts outlive the ring");
        assert_eq!(stats.counts["rejected_signature"], 1);
        assert!(stats.last_accepted.is_some());
    }

    #[test]
    fn a_resumed_subscription_gets_what_is_kept_and_is_told_what_is_not() {
        let rec = Recorder::new(3);
        for _ in 0..5 {
            rec.push(record("/a", Outcome::accepted));
        }
        let sub = rec.subscribe(Some(1));
        assert_eq!(ids(&sub.backlog), [3, 4, 5]);
        assert_eq!(sub.missed, 1, "record 2 left the ring");
        let sub = rec.subscribe(Some(4));
        assert_eq!((ids(&sub.backlog), sub.missed), (vec![5], 0));
        // An id from before a restart: everything kept.
        assert_eq!(ids(&rec.subscribe(Some(99)).backlog), [3, 4, 5]);
        assert!(rec.subscribe(None).backlog.is_empty());
    }

    #[tokio::test]
    async fn a_slow_subscriber_never_blocks_a_push_and_learns_it_lagged() {
        let rec = Recorder::new(10);
        let mut sub = rec.subscribe(None);
        for _ in 0..STREAM_BUFFER + 5 {
            rec.push(record("/a", Outcome::accepted));
        }
        match sub.live.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(sub.live.recv().await.unwrap().summary.id, 6);
    }
}
