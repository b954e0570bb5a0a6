//! Duplicate deliveries: a delivery id accepted within the window is answered 200 and not logged again.
//!
//! Senders retry when an acknowledgement is slow or lost, with the same delivery id. An id is
//! *claimed* before its event is written and *committed* only once the write is durable; a second
//! request with an id whose first delivery is still being written waits for that outcome, so a
//! duplicate is never acknowledged for an event that then failed to be stored. Memory is bounded by
//! age (the window) and by count (oldest committed ids evicted first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

enum Entry {
    /// Being written; the channel says `true` when committed, `false` (or closes) when it failed.
    Pending(watch::Receiver<bool>),
    Done(Instant),
}

struct Inner {
    entries: HashMap<String, Entry>,
    /// Committed ids in commit order, for eviction.
    order: VecDeque<(Instant, String)>,
}

/// The store shared by all hooks; keys are `hook path` + id, so hooks never collide.
#[derive(Clone)]
pub struct Dedupe {
    inner: Arc<Mutex<Inner>>,
    window: Duration,
    max_entries: usize,
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
    store: Dedupe,
    key: String,
    tx: Option<watch::Sender<bool>>,
}

impl Dedupe {
    pub fn new(window: Duration, max_entries: usize) -> Dedupe {
        Dedupe {
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            })),
            window,
            max_entries,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `id` for `hook`, waiting while another request with the same id is being written.
    pub async fn claim(&self, hook: &str, id: &str) -> Claim {
        let key = format!("{hook}\u{0}{id}");
        loop {
            let mut wait = {
                let mut inner = self.lock();
                let now = Instant::now();
                self.evict(&mut inner, now);
                match inner.entries.get(&key) {
                    Some(Entry::Done(at)) if now.duration_since(*at) <= self.window => {
                        return Claim::Duplicate
                    }
                    Some(Entry::Pending(rx)) => rx.clone(),
                    _ => {
                        let (tx, rx) = watch::channel(false);
                        inner.entries.insert(key.clone(), Entry::Pending(rx));
                        return Claim::New(ClaimGuard {
                            store: self.clone(),
                            key,
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

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while let Some((at, _)) = inner.order.front() {
            let expired = now.duration_since(*at) > self.window;
            if !expired && inner.order.len() <= self.max_entries {
                break;
            }
            if let Some((at, key)) = inner.order.pop_front() {
                if matches!(inner.entries.get(&key), Some(Entry::Done(t)) if *t == at) {
                    inner.entries.remove(&key);
                }
            }
        }
    }

    /// Number of ids remembered (pending and committed).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ClaimGuard {
    /// Records the id as accepted: later deliveries within the window are duplicates.
    pub fn commit(mut self) {
        let now = Instant::now();
        {
            let mut inner = self.store.lock();
            inner.entries.insert(self.key.clone(), Entry::Done(now));
            inner.order.push_back((now, self.key.clone()));
            self.store.evict(&mut inner, now);
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let mut inner = self.store.lock();
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

    #[tokio::test]
    async fn second_claim_after_commit_is_duplicate_and_other_hooks_are_separate() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim("/a", "x").await else {
            panic!("first is new")
        };
        g.commit();
        assert!(matches!(d.claim("/a", "x").await, Claim::Duplicate));
        assert!(matches!(d.claim("/b", "x").await, Claim::New(_)));
    }

    #[tokio::test]
    async fn failed_write_releases_the_id() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim("/a", "x").await else {
            panic!()
        };
        drop(g);
        assert!(matches!(d.claim("/a", "x").await, Claim::New(_)));
    }

    #[tokio::test]
    async fn concurrent_duplicate_waits_for_the_first_outcome() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        let Claim::New(g) = d.claim("/a", "x").await else {
            panic!()
        };
        let d2 = d.clone();
        let waiter =
            tokio::spawn(async move { matches!(d2.claim("/a", "x").await, Claim::Duplicate) });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        g.commit();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn bounded_by_count_and_age() {
        let d = Dedupe::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            if let Claim::New(g) = d.claim("/a", &i.to_string()).await {
                g.commit();
            }
        }
        assert!(d.len() <= 4, "len {}", d.len());
        assert!(
            matches!(d.claim("/a", "0").await, Claim::New(_)),
            "oldest evicted"
        );

        let d = Dedupe::new(Duration::from_millis(0), 100);
        if let Claim::New(g) = d.claim("/a", "x").await {
            g.commit();
        }
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(d.claim("/a", "x").await, Claim::New(_)), "expired");
    }
}
