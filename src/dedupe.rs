//! Duplicate deliveries: a delivery id accepted within the window is answered 200 and not logged again.
//!
//! Senders retry when an acknowledgement is slow or lost, with the same delivery id. An id is
//! *claimed* before its event is written and *committed* only once the write is durable; a second
//! request with an id whose first delivery is still being written waits for that outcome, so a
//! duplicate is never acknowledged for an event that then failed to be stored. Memory is bounded by
//! age (the window) and by count (oldest committed ids evicted first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// At most one warning per hook this often about ids evicted before their window ended.
const EVICTION_WARNING_INTERVAL: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Entry {
    /// Being written; the channel says `true` when committed, `false` (or closes) when it failed.
    Pending(watch::Receiver<bool>),
    Done(Instant),
}

struct Inner {
    entries: HashMap<String, Entry>,
    /// Committed ids in commit order, for eviction.
    order: VecDeque<(Instant, String)>,
    /// Ids evicted early since the last warning, and when that warning was.
    unreported_evictions: u64,
    last_warning: Option<Instant>,
}

/// One hook's ids. Each hook has its own, so a hook whose ids a stranger controls (a static token,
/// an unsigned hook) can only flush its own replay protection, never another hook's.
struct Table {
    hook: Arc<str>,
    inner: Mutex<Inner>,
    /// Ids dropped by the count bound while still inside the window: each is a replay that would
    /// be accepted again.
    evictions: Counter,
}

/// The tables of all hooks, by path. Held outside the reloadable config, so a SIGHUP that keeps a
/// hook keeps the ids it accepted.
#[derive(Clone)]
pub struct Dedupe {
    tables: Arc<Mutex<HashMap<Arc<str>, Arc<Table>>>>,
    window: Duration,
    /// Per hook.
    max_entries: usize,
    metrics: Arc<Metrics>,
}

/// The outcome of [`Dedupe::claim`].
pub enum Claim {
    /// First delivery: write the event, then [`ClaimGuard::commit`].
    New(ClaimGuard),
    /// Already accepted within the window.
    Duplicate,
}

/// Holds a pending id; dropping it without `commit` releases the id for a retry.
pub struct ClaimGuard {
    table: Arc<Table>,
    window: Duration,
    max_entries: usize,
    key: String,
    tx: Option<watch::Sender<bool>>,
}

impl Dedupe {
    /// Remembers ids for `window`, at most `max_entries` per hook.
    pub fn new(window: Duration, max_entries: usize, metrics: Arc<Metrics>) -> Dedupe {
        Dedupe {
            tables: Arc::default(),
            window,
            max_entries,
            metrics,
        }
    }

    fn table(&self, hook: &Arc<str>) -> Arc<Table> {
        lock(&self.tables)
            .entry(hook.clone())
            .or_insert_with(|| {
                Arc::new(Table {
                    hook: hook.clone(),
                    inner: Mutex::new(Inner {
                        entries: HashMap::new(),
                        order: VecDeque::new(),
                        unreported_evictions: 0,
                        last_warning: None,
                    }),
                    evictions: self.metrics.dedupe_evictions(hook),
                })
            })
            .clone()
    }

    /// Forgets the tables of hooks no longer configured (after a reload).
    pub fn retain_hooks(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.tables).retain(|path, _| keep(path));
    }

    /// Claims `id` for `hook`, waiting while another request with the same id is being written.
    pub async fn claim(&self, hook: &Arc<str>, id: &str) -> Claim {
        let table = self.table(hook);
        loop {
            let mut wait = {
                let mut inner = lock(&table.inner);
                let now = Instant::now();
                table.evict(&mut inner, now, self.window, self.max_entries);
                match inner.entries.get(id) {
                    Some(Entry::Done(at)) if now.duration_since(*at) <= self.window => {
                        return Claim::Duplicate
                    }
                    Some(Entry::Pending(rx)) => rx.clone(),
                    _ => {
                        let (tx, rx) = watch::channel(false);
                        inner.entries.insert(id.to_string(), Entry::Pending(rx));
                        return Claim::New(ClaimGuard {
                            table: table.clone(),
                            window: self.window,
                            max_entries: self.max_entries,
                            key: id.to_string(),
                            tx: Some(tx),
                        });
                    }
                }
            };
            // The first delivery is being written: its outcome decides ours.
            if wait.wait_for(|committed| *committed).await.is_ok() {
                return Claim::Duplicate;
            }
        }
    }

    /// Number of ids `hook` remembers (pending and committed).
    pub fn len(&self, hook: &Arc<str>) -> usize {
        lock(&self.table(hook).inner).entries.len()
    }
}

impl Table {
    fn evict(&self, inner: &mut Inner, now: Instant, window: Duration, max_entries: usize) {
        while let Some((at, _)) = inner.order.front() {
            let expired = now.duration_since(*at) > window;
            if !expired && inner.order.len() <= max_entries {
                break;
            }
            if let Some((at, key)) = inner.order.pop_front() {
                if matches!(inner.entries.get(&key), Some(Entry::Done(t)) if *t == at) {
                    inner.entries.remove(&key);
                    if !expired {
                        self.evictions.inc();
                        inner.unreported_evictions += 1;
                    }
                }
            }
        }
        let due = inner
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= EVICTION_WARNING_INTERVAL);
        if inner.unreported_evictions > 0 && due {
            tracing::warn!(
                hook = %self.hook,
                evicted = inner.unreported_evictions,
                max_entries,
                window_secs = window.as_secs(),
                "delivery ids evicted before their dedupe window ended: a replay of them would be accepted; raise dedupe_max_entries"
            );
            inner.unreported_evictions = 0;
            inner.last_warning = Some(now);
        }
    }
}

impl ClaimGuard {
    /// Records the id as accepted: later deliveries within the window are duplicates.
    pub fn commit(mut self) {
        let now = Instant::now();
        {
            let mut inner = lock(&self.table.inner);
            inner.entries.insert(self.key.clone(), Entry::Done(now));
            inner.order.push_back((now, self.key.clone()));
            self.table
                .evict(&mut inner, now, self.window, self.max_entries);
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let mut inner = lock(&self.table.inner);
            if matches!(inner.entries.get(&self.key), Some(Entry::Pending(_))) {
                inner.entries.remove(&self.key);
            }
            drop(inner);
            // Waiters see the channel close and claim the id themselves.
            drop(tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(window: Duration, max: usize) -> Dedupe {
        Dedupe::new(window, max, Arc::new(Metrics::new()))
    }

    fn p(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn second_claim_after_commit_is_duplicate_and_other_hooks_are_separate() {
        let d = store(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim(&p("/a"), "x").await else {
            panic!("first is new")
        };
        g.commit();
        assert!(matches!(d.claim(&p("/a"), "x").await, Claim::Duplicate));
        assert!(matches!(d.claim(&p("/b"), "x").await, Claim::New(_)));
    }

    #[tokio::test]
    async fn failed_write_releases_the_id() {
        let d = store(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim(&p("/a"), "x").await else {
            panic!()
        };
        drop(g);
        assert!(matches!(d.claim(&p("/a"), "x").await, Claim::New(_)));
    }

    #[tokio::test]
    async fn concurrent_duplicate_waits_for_the_first_outcome() {
        let d = store(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim(&p("/a"), "x").await else {
            panic!()
        };
        let d2 = d.clone();
        let waiter =
            tokio::spawn(async move { matches!(d2.claim(&p("/a"), "x").await, Claim::Duplicate) });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        g.commit();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn bounded_by_count_and_age() {
        let d = store(Duration::from_secs(60), 3);
        for i in 0..10 {
            if let Claim::New(g) = d.claim(&p("/a"), &i.to_string()).await {
                g.commit();
            }
        }
        assert!(d.len(&p("/a")) <= 4, "len {}", d.len(&p("/a")));
        assert!(
            matches!(d.claim(&p("/a"), "0").await, Claim::New(_)),
            "oldest evicted"
        );

        let d = store(Duration::from_millis(0), 100);
        if let Claim::New(g) = d.claim(&p("/a"), "x").await {
            g.commit();
        }
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            matches!(d.claim(&p("/a"), "x").await, Claim::New(_)),
            "expired"
        );
    }

    #[tokio::test]
    async fn one_hooks_flood_does_not_evict_anothers_ids_and_early_evictions_are_counted() {
        let metrics = Arc::new(Metrics::new());
        let d = Dedupe::new(Duration::from_secs(60), 3, metrics.clone());
        if let Claim::New(g) = d.claim(&p("/a"), "x").await {
            g.commit();
        }
        for i in 0..10 {
            if let Claim::New(g) = d.claim(&p("/b"), &i.to_string()).await {
                g.commit();
            }
        }
        assert!(matches!(d.claim(&p("/a"), "x").await, Claim::Duplicate));
        let m = metrics.encode();
        assert!(
            m.contains("webhook_listener_dedupe_evictions_total{hook=\"/b\"} 7"),
            "{m}"
        );
        assert!(!m.contains("{hook=\"/a\"} 1"), "{m}");
    }
}
