//! The memory budget: body bytes held by all requests at once (`max_buffered_bytes`).
//!
//! A body is read into a [`BodyBuf`] whose allocated capacity is always covered by bytes reserved
//! from the budget: the declared `Content-Length` is reserved before the first byte is read, and a
//! chunked (or longer than declared) body reserves each time its buffer grows. A reservation that
//! does not fit fails at once ([`OverBudget`]), never waits: a flood of large bodies is refused
//! while small ones still fit. The reservation is given back when the last [`Bytes`] of the body
//! is dropped, not when the request's future ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shared pool of body bytes; one per process (its size is read at start only).
#[derive(Debug, Clone)]
pub struct Budget {
    /// One permit per byte. `Semaphore` rather than an atomic counter because its permits give
    /// themselves back on drop, on every path out of a request, error or panic.
    bytes: Arc<Semaphore>,
    /// The size it started with, for `/metrics` and the diagnostics.
    total: usize,
}

/// A reservation that did not fit: `needed` more bytes, `free` left of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("max_buffered_bytes: {needed} more body bytes needed, {free} of {total} free")]
pub struct OverBudget {
    pub needed: usize,
    pub free: usize,
    pub total: usize,
}

impl Budget {
    pub fn new(total: usize) -> Budget {
        // Semaphore::MAX_PERMITS is usize::MAX >> 3: far above any memory a config can name.
        let total = total.min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved by bodies being read or still referenced.
    pub fn held(&self) -> usize {
        self.total.saturating_sub(self.bytes.available_permits())
    }

    /// An empty body buffer with `capacity` bytes reserved and allocated up front (the declared
    /// length), or the refusal when they do not fit.
    pub fn buffer(&self, capacity: usize) -> Result<BodyBuf, OverBudget> {
        let permit = self.reserve(capacity)?;
        Ok(BodyBuf {
            buf: Vec::with_capacity(capacity),
            permit,
            budget: self.clone(),
        })
    }

    fn reserve(&self, n: usize) -> Result<OwnedSemaphorePermit, OverBudget> {
        let over = || OverBudget {
            needed: n,
            free: self.bytes.available_permits(),
            total: self.total,
        };
        // One acquisition takes at most u32::MAX permits; a larger body is refused as not fitting.
        let n32 = u32::try_from(n).map_err(|_| over())?;
        self.bytes
            .clone()
            .try_acquire_many_owned(n32)
            .map_err(|_| over())
    }
}

/// A body being read; its capacity is reserved from the [`Budget`].
#[derive(Debug)]
pub struct BodyBuf {
    buf: Vec<u8>,
    /// Covers `buf.capacity()` exactly.
    permit: OwnedSemaphorePermit,
    budget: Budget,
}

impl BodyBuf {
    /// Appends `data`, first reserving whatever the buffer has to grow by (the growth is computed
    /// here, not left to `Vec`, so what is allocated is what is reserved).
    pub fn extend(&mut self, data: &[u8]) -> Result<(), OverBudget> {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            // Doubling keeps a chunked body to O(log n) reservations and copies.
            let target = need
                .max(self.buf.capacity().saturating_mul(2))
                .max(8 * 1024);
            let grow = target - self.buf.capacity();
            // When the doubled step does not fit, the exact need might: refuse only what cannot.
            let (more, target) = match self.budget.reserve(grow) {
                Ok(p) => (p, target),
                Err(_) => (self.budget.reserve(need - self.buf.capacity())?, need),
            };
            self.permit.merge(more);
            // Exact for `u8`: std allocates what `reserve_exact` asks for.
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The body as [`Bytes`] that keep the reservation until the last clone is dropped.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(Frozen {
            buf: self.buf,
            _permit: self.permit,
        })
    }
}

/// The owner behind a frozen body: its bytes and their reservation, dropped together.
struct Frozen {
    buf: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Frozen {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// How often a refusal for memory is written to the diagnostics: a flood of them must not become
/// a flood of lines (each is still counted in `webhook_requests_total{outcome="over_budget"}`).
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one refusal diagnostic through per [`REFUSAL_LOG_INTERVAL`] and counts the others.
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// When the last line was written, and how many refusals were not written since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    /// `Some(n)`: write a line now, saying `n` refusals were left out since the last one.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another refusal panicked mid-count; the count is still usable.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0 {
            Some(last) if now.duration_since(last) < REFUSAL_LOG_INTERVAL => {
                state.1 += 1;
                None
            }
            _ => {
                let skipped = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(skipped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_is_reserved_up_front_and_refused_when_it_does_not_fit() {
        let b = Budget::new(1000);
        let first = b.buffer(600).unwrap();
        assert_eq!(b.held(), 600);
        let err = b.buffer(500).unwrap_err();
        assert_eq!(
            err,
            OverBudget {
                needed: 500,
                free: 400,
                total: 1000
            }
        );
        // Small ones still fit beside it.
        let small = b.buffer(400).unwrap();
        assert_eq!(b.held(), 1000);
        drop((first, small));
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_growing_body_reserves_its_capacity_and_stops_at_the_budget() {
        let b = Budget::new(100_000);
        let mut buf = b.buffer(0).unwrap();
        let piece = [b'x'; 10_000];
        let mut refused = None;
        for i in 0..20 {
            match buf.extend(&piece) {
                Ok(()) => assert!(b.held() >= buf.buf.capacity(), "capacity not covered"),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = refused.expect("200 kB cannot fit 100 kB");
        assert!(
            i >= 9,
            "refused after {i} pieces: the exact need should still fit"
        );
        assert_eq!(e.total, 100_000);
        assert!(b.held() <= 100_000);
        drop(buf);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn frozen_bytes_keep_the_reservation_until_the_last_clone_goes() {
        let b = Budget::new(1 << 20);
        let mut buf = b.buffer(5).unwrap();
        buf.extend(b"hello").unwrap();
        let bytes = buf.freeze();
        let clone = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(&clone[..], b"el");
        assert_eq!(b.held(), 5);
        drop(clone);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn refusals_are_written_once_per_interval_with_the_count_left_out() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(log.admit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(log.admit(t0 + REFUSAL_LOG_INTERVAL), Some(5));
        assert_eq!(log.admit(t0 + REFUSAL_LOG_INTERVAL), None);
    }

    #[test]
    fn more_than_one_acquisition_can_take_is_refused_not_wrapped() {
        let b = Budget::new(usize::MAX);
        assert!(b.buffer(u32::MAX as usize + 1).is_err());
    }
}
