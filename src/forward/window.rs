//! The runner's bookkeeping of which read events are finished, so the checkpoint advances only over
//! the contiguous finished prefix when several deliveries are in flight and finish out of order.

use std::collections::VecDeque;

/// Read events not yet finished, in sequence order, and how far the finished prefix reaches.
/// Finished entries next to each other merge, so its length stays about twice the events in hand.
pub(crate) struct Window {
    entries: VecDeque<Slot>,
    /// Everything up to here is finished: what the checkpoint may advance to.
    pub confirmed: u64,
}

struct Slot {
    /// The last sequence number the slot covers (a finished slot may cover a run).
    last: u64,
    done: bool,
    received_ms: i64,
}

impl Window {
    pub fn new(confirmed: u64) -> Self {
        Window {
            entries: VecDeque::new(),
            confirmed,
        }
    }

    pub fn push_done(&mut self, last: u64) {
        match self.entries.back_mut() {
            None => self.confirmed = last,
            Some(s) if s.done => s.last = last,
            Some(_) => self.entries.push_back(Slot {
                last,
                done: true,
                received_ms: 0,
            }),
        }
    }

    pub fn push_pending(&mut self, seq: u64, received_ms: i64) {
        self.entries.push_back(Slot {
            last: seq,
            done: false,
            received_ms,
        });
    }

    pub fn finish(&mut self, seq: u64) {
        if let Ok(i) = self.entries.binary_search_by_key(&seq, |s| s.last) {
            self.entries[i].done = true;
        }
        while self.entries.front().is_some_and(|s| s.done) {
            if let Some(s) = self.entries.pop_front() {
                self.confirmed = s.last;
            }
        }
    }

    pub fn oldest(&self) -> Option<i64> {
        self.entries.iter().find(|s| !s.done).map(|s| s.received_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmed_prefix_waits_for_the_oldest_and_runs_of_done_merge() {
        let mut w = Window::new(10);
        w.push_pending(11, 1_000);
        w.push_done(12); // filtered
        w.push_done(13);
        w.push_pending(14, 2_000);
        w.push_pending(15, 3_000);
        assert_eq!(w.entries.len(), 4, "12 and 13 share a slot");
        w.finish(15);
        w.finish(14);
        assert_eq!((w.confirmed, w.oldest()), (10, Some(1_000)));
        w.finish(11);
        assert_eq!((w.confirmed, w.oldest()), (15, None));
        assert!(w.entries.is_empty());
        w.push_done(16);
        assert_eq!(
            w.confirmed, 16,
            "with nothing in hand a pass-over confirms at once"
        );
    }
}
