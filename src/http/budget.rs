//! The memory budget: body bytes held by all requests at once (`max_buffered_bytes`), and each
//! client address's share of it and of the request slots.
//!
//! A body is read into a [`BodyBuf`] whose allocated capacity is always covered by bytes reserved
//! from the budget, and reserved as the bytes arrive (never ahead of them): a client that declares
//! a large `Content-Length` and sends nothing holds nothing. A reservation that does not fit fails
//! at once ([`OverBudget`]), never waits: a flood of large bodies is refused while small ones still
//! fit. The reservation is given back when the last [`Bytes`] of the body is dropped, not when the
//! request's future ends.
//!
//! Every reservation is also counted against the client address it came from ([`Share`]), so
//! that one address (IPv6: one /64, what one host is usually given) cannot hold the whole budget
//! or every request slot while others are refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client_ip::Client;

/// The shared pool of body bytes; one per process (its size is read at start only).
#[derive(Debug, Clone)]
pub struct Budget {
    /// One permit per byte. `Semaphore` rather than an atomic counter because its permits give
    /// themselves back on drop, on every path out of a request, error or panic.
    bytes: Arc<Semaphore>,
    /// The size it started with, for `/metrics` and the diagnostics.
    total: usize,
    /// What each client address holds now.
    clients: Arc<Clients>,
}

/// How much of the budget and of the request slots one client address may hold, from one config
/// snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub bytes: usize,
    pub requests: usize,
}

impl Share {
    /// 1/`divisor` of each, but never less than one request of the largest body (a share smaller
    /// than that would refuse a valid sender forever).
    pub fn new(budget: usize, slots: usize, divisor: usize, max_body_bytes: usize) -> Share {
        let divisor = divisor.max(1);
        Share {
            bytes: (budget / divisor).max(max_body_bytes).min(budget),
            requests: (slots / divisor).max(1),
        }
    }
}

/// A reservation that did not fit: in the whole budget, or in the client address's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error("max_buffered_bytes: {needed} more body bytes needed, {free} of {total} free")]
    Total {
        needed: usize,
        free: usize,
        total: usize,
    },
    #[error(
        "client address share: {needed} more body bytes needed, it holds {held} of its {share}"
    )]
    Client {
        needed: usize,
        held: usize,
        share: usize,
    },
}

/// A client address already has its share of the request slots in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client address share: {held} of its {share} requests already in flight")]
pub struct OverShare {
    pub held: usize,
    pub share: usize,
}

/// Why a request was not admitted before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Bytes(OverBudget),
    Requests(OverShare),
}

/// The key a client is counted under: its address, IPv6 by its /64 (one host gets a whole /64,
/// so one address each would let it take every share), as one number so that looking it up hashes
/// once. IPv4 is its IPv4-mapped IPv6 form; clients whose address is unknown share `u128::MAX`,
/// which no masked /64 and no mapped address can be.
type ClientKey = u128;

fn client_key(client: Client) -> ClientKey {
    match client.ip() {
        None => u128::MAX,
        Some(IpAddr::V4(v4)) => u128::from(v4.to_ipv6_mapped()),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6) & !((1u128 << 64) - 1),
        },
    }
}

/// What one client address holds now, shared by its requests: only admission looks the address
/// up; reserving and giving back are atomic operations on this.
#[derive(Debug, Default)]
struct Usage {
    bytes: AtomicUsize,
    requests: AtomicUsize,
}

/// The client addresses seen, and the map size at which the ones no request refers to any more
/// are forgotten (twice what was left by the last sweep, so sweeping stays O(1) a request and
/// the map about as large as the requests in flight).
#[derive(Debug, Default)]
struct Clients(Mutex<(HashMap<ClientKey, Arc<Usage>>, usize)>);

/// Below this many addresses the map is never swept.
const MIN_SWEEP: usize = 64;

impl Clients {
    fn lock(&self) -> MutexGuard<'_, (HashMap<ClientKey, Arc<Usage>>, usize)> {
        // A poisoned lock only means a panic mid-update of a map of counters; it is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The usage of `key`, added if new.
    fn usage(&self, key: ClientKey) -> Arc<Usage> {
        let mut guard = self.lock();
        let (map, sweep_at) = &mut *guard;
        if map.len() >= (*sweep_at).max(MIN_SWEEP) {
            // Held only by the map: no request and no body of that address is left.
            map.retain(|_, u| Arc::strong_count(u) > 1);
            *sweep_at = map.len() * 2;
        }
        map.entry(key).or_default().clone()
    }

    /// Addresses some request or body still refers to (for the tests).
    #[cfg(test)]
    fn live(&self) -> usize {
        self.lock()
            .0
            .values()
            .filter(|u| Arc::strong_count(u) > 1)
            .count()
    }
}

impl Budget {
    pub fn new(total: usize) -> Budget {
        // Semaphore::MAX_PERMITS is usize::MAX >> 3: far above any memory a config can name.
        let total = total.min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            clients: Arc::default(),
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes reserved by bodies being read or still referenced.
    pub fn held(&self) -> usize {
        self.total.saturating_sub(self.bytes.available_permits())
    }

    /// Takes one of `client`'s request slots, if its share has one free and a body of `declared`
    /// bytes would fit beside what is held now (checked, not reserved: the bytes are reserved as
    /// they arrive). A refusal here costs the client nothing and us no body byte.
    pub fn admit(
        &self,
        client: Client,
        share: Share,
        declared: Option<usize>,
    ) -> Result<Admission, Refused> {
        let usage = self.clients.usage(client_key(client));
        let held = usage.requests.fetch_add(1, Ordering::AcqRel);
        let refused = if held >= share.requests {
            Some(Refused::Requests(OverShare {
                held,
                share: share.requests,
            }))
        } else {
            declared.and_then(|needed| {
                let held = usage.bytes.load(Ordering::Acquire);
                let free = self.bytes.available_permits();
                if share.bytes < self.total && held.saturating_add(needed) > share.bytes {
                    Some(Refused::Bytes(OverBudget::Client {
                        needed,
                        held,
                        share: share.bytes,
                    }))
                } else {
                    (needed > free).then_some(Refused::Bytes(OverBudget::Total {
                        needed,
                        free,
                        total: self.total,
                    }))
                }
            })
        };
        if let Some(refused) = refused {
            usage.requests.fetch_sub(1, Ordering::AcqRel);
            return Err(refused);
        }
        Ok(Admission {
            budget: self.clone(),
            usage,
            share,
        })
    }

    /// Reserves `n` bytes for the client of `usage`, within its share and the whole budget.
    fn reserve(&self, usage: &Arc<Usage>, share: usize, n: usize) -> Result<Held, OverBudget> {
        if share < self.total {
            usage
                .bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    held.checked_add(n).filter(|&after| after <= share)
                })
                .map_err(|held| OverBudget::Client {
                    needed: n,
                    held,
                    share,
                })?;
        } else {
            // A share of the whole budget is no share: the budget's own refusal says more.
            usage.bytes.fetch_add(n, Ordering::AcqRel);
        }
        let over = || OverBudget::Total {
            needed: n,
            free: self.bytes.available_permits(),
            total: self.total,
        };
        // One acquisition takes at most u32::MAX permits; a larger body is refused as not fitting.
        let permit = u32::try_from(n).map_err(|_| over()).and_then(|n32| {
            self.bytes
                .clone()
                .try_acquire_many_owned(n32)
                .map_err(|_| over())
        });
        match permit {
            Ok(permit) => Ok(Held {
                permit,
                usage: usage.clone(),
                client_bytes: n,
            }),
            Err(e) => {
                usage.bytes.fetch_sub(n, Ordering::AcqRel);
                Err(e)
            }
        }
    }
}

/// One of a client address's request slots, held until the response is built; it also reserves
/// that request's bytes against the same address.
#[derive(Debug)]
pub struct Admission {
    budget: Budget,
    usage: Arc<Usage>,
    share: Share,
}

impl Admission {
    /// An empty body buffer; `declared` (the `Content-Length`) only bounds how far it grows in one
    /// step, nothing is reserved for it.
    pub fn buffer(&self, declared: Option<usize>) -> BodyBuf {
        BodyBuf {
            buf: Vec::new(),
            held: None,
            budget: self.budget.clone(),
            usage: self.usage.clone(),
            share: self.share.bytes,
            expected: declared.unwrap_or(usize::MAX),
        }
    }

    /// `n` bytes reserved for something this request builds from its body (its event line), so
    /// that copies of a body count against the same budget and share as the body.
    pub fn reserve(&self, n: usize) -> Result<Held, OverBudget> {
        self.budget.reserve(&self.usage, self.share.bytes, n)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.usage.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bytes reserved from the budget and from one client address's share; given back on drop.
#[derive(Debug)]
pub struct Held {
    permit: OwnedSemaphorePermit,
    usage: Arc<Usage>,
    client_bytes: usize,
}

impl Held {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.client_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.client_bytes == 0
    }

    /// Adds `more` (of the same budget and client) to this reservation.
    pub fn merge(&mut self, more: Held) {
        let mut more = more;
        // `more` is dropped with an empty permit of the same semaphore and no client bytes.
        let empty = self.permit.split(0).expect("zero permits always split");
        self.permit
            .merge(std::mem::replace(&mut more.permit, empty));
        self.client_bytes += std::mem::take(&mut more.client_bytes);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.client_bytes > 0 {
            self.usage
                .bytes
                .fetch_sub(self.client_bytes, Ordering::AcqRel);
        }
    }
}

/// A body being read; its capacity is reserved from the [`Budget`] and the client's share.
#[derive(Debug)]
pub struct BodyBuf {
    buf: Vec<u8>,
    /// Covers `buf.capacity()` exactly; `None` while nothing is allocated.
    held: Option<Held>,
    budget: Budget,
    usage: Arc<Usage>,
    /// The client's share of body bytes.
    share: usize,
    /// The declared length: a growth step never goes past it.
    expected: usize,
}

impl BodyBuf {
    /// Appends `data`, first reserving whatever the buffer has to grow by (the growth is computed
    /// here, not left to `Vec`, so what is allocated is what is reserved).
    pub fn extend(&mut self, data: &[u8]) -> Result<(), OverBudget> {
        let need = self.buf.len() + data.len();
        if need > self.buf.capacity() {
            // Doubling keeps a chunked body to O(log n) reservations and copies; the declared
            // length, when there is one, is where it ends.
            let target = need
                .max(self.buf.capacity().saturating_mul(2))
                .max(8 * 1024)
                .min(self.expected.max(need));
            let grow = target - self.buf.capacity();
            // When the doubled step does not fit, the exact need might: refuse only what cannot.
            let (more, target) = match self.budget.reserve(&self.usage, self.share, grow) {
                Ok(p) => (p, target),
                Err(_) => (
                    self.budget
                        .reserve(&self.usage, self.share, need - self.buf.capacity())?,
                    need,
                ),
            };
            match &mut self.held {
                Some(held) => held.merge(more),
                None => self.held = Some(more),
            }
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
            _held: self.held,
        })
    }
}

/// The owner behind a frozen body: its bytes and their reservation, dropped together.
struct Frozen {
    buf: Vec<u8>,
    _held: Option<Held>,
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

    const A: Client = Client::Known(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Client = Client::Known(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    /// No per-address share: the whole budget and 100 slots for anyone.
    fn whole(b: &Budget) -> Share {
        Share {
            bytes: b.total(),
            requests: 100,
        }
    }

    fn usage_bytes(b: &Budget, c: Client) -> usize {
        b.clients.lock().0[&client_key(c)]
            .bytes
            .load(Ordering::Acquire)
    }

    fn v6(s: &str) -> Client {
        Client::Known(s.parse().unwrap())
    }

    #[test]
    fn a_declared_length_is_checked_up_front_but_reserved_only_as_bytes_arrive() {
        let b = Budget::new(1000);
        let first = b.admit(A, whole(&b), Some(600)).unwrap();
        let mut buf = first.buffer(Some(600));
        assert_eq!(b.held(), 0, "declaring reserves nothing");
        buf.extend(&[b'x'; 100]).unwrap();
        assert!((100..=600).contains(&b.held()), "{}", b.held());
        buf.extend(&[b'x'; 500]).unwrap();
        assert_eq!(b.held(), 600, "never grown past the declared length");
        let err = b.admit(B, whole(&b), Some(500)).unwrap_err();
        assert_eq!(
            err,
            Refused::Bytes(OverBudget::Total {
                needed: 500,
                free: 400,
                total: 1000
            })
        );
        // Small ones still fit beside it.
        let small = b.admit(B, whole(&b), Some(400)).unwrap();
        let mut sbuf = small.buffer(Some(400));
        sbuf.extend(&[b'y'; 400]).unwrap();
        assert_eq!(b.held(), 1000);
        drop((buf, sbuf, first, small));
        assert_eq!(b.held(), 0);
        assert_eq!(b.clients.live(), 0, "nothing held, nothing kept");
    }

    #[test]
    fn a_growing_body_reserves_its_capacity_and_stops_at_the_budget() {
        let b = Budget::new(100_000);
        let adm = b.admit(A, whole(&b), None).unwrap();
        let mut buf = adm.buffer(None);
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
        assert!(matches!(
            e,
            OverBudget::Client { .. } | OverBudget::Total { .. }
        ));
        assert!(b.held() <= 100_000);
        drop(buf);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn frozen_bytes_keep_the_reservation_until_the_last_clone_goes() {
        let b = Budget::new(1 << 20);
        let adm = b.admit(A, whole(&b), Some(5)).unwrap();
        let mut buf = adm.buffer(Some(5));
        buf.extend(b"hello").unwrap();
        let bytes = buf.freeze();
        drop(adm);
        let clone = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(&clone[..], b"el");
        assert_eq!(b.held(), 5);
        assert_eq!(usage_bytes(&b, A), 5);
        drop(clone);
        assert_eq!(b.held(), 0);
        assert_eq!(b.clients.live(), 0);
    }

    #[test]
    fn one_address_holds_at_most_its_share_of_bytes_and_slots_and_others_still_fit() {
        let b = Budget::new(8000);
        let share = Share::new(b.total(), 16, 8, 500);
        assert_eq!(
            share,
            Share {
                bytes: 1000,
                requests: 2
            }
        );
        // Bytes: A's two requests fill its share as bytes arrive; a third byte is refused.
        let a1 = b.admit(A, share, None).unwrap();
        let a2 = b.admit(A, share, None).unwrap();
        let mut buf1 = a1.buffer(Some(600));
        buf1.extend(&[0; 600]).unwrap();
        let mut buf2 = a2.buffer(Some(600));
        let e = buf2.extend(&[0; 600]).unwrap_err();
        assert_eq!(
            e,
            OverBudget::Client {
                needed: 600,
                held: 600,
                share: 1000
            }
        );
        buf2.extend(&[0; 400]).unwrap();
        // Slots: a third request from A is refused, and so is a declared length over its share.
        assert_eq!(
            b.admit(A, share, None).unwrap_err(),
            Refused::Requests(OverShare { held: 2, share: 2 })
        );
        drop(buf2);
        drop(a2);
        assert_eq!(
            b.admit(A, share, Some(500)).unwrap_err(),
            Refused::Bytes(OverBudget::Client {
                needed: 500,
                held: 600,
                share: 1000
            })
        );
        // B is untouched by what A holds.
        let b1 = b.admit(B, share, Some(1000)).unwrap();
        let mut bbuf = b1.buffer(Some(1000));
        bbuf.extend(&[0; 1000]).unwrap();
        assert_eq!(b.held(), 1600);
        // The event line's reservation counts against the same share.
        assert!(a1.reserve(401).is_err());
        let line = a1.reserve(400).unwrap();
        assert_eq!(line.len(), 400);
        drop((buf1, line, a1, bbuf, b1));
        assert_eq!(b.held(), 0);
        assert_eq!(b.clients.live(), 0);
    }

    #[test]
    fn an_ipv6_host_is_one_client_per_64_and_unknown_clients_share_one() {
        let b = Budget::new(1 << 20);
        let share = Share {
            bytes: 1 << 20,
            requests: 1,
        };
        let one = b.admit(v6("2001:db8:1:2::1"), share, None).unwrap();
        // Another address of the same /64 is the same client; another /64 is not.
        assert!(b.admit(v6("2001:db8:1:2:ffff::7"), share, None).is_err());
        let other = b.admit(v6("2001:db8:1:3::1"), share, None).unwrap();
        // An IPv4-mapped address is its IPv4 address.
        let v4 = b.admit(v6("::ffff:192.0.2.1"), share, None).unwrap();
        assert!(b.admit(A, share, None).is_err());
        let unknown = b.admit(Client::Unknown, share, None).unwrap();
        assert!(b.admit(Client::Unknown, share, None).is_err());
        drop((one, other, v4, unknown));
        assert_eq!(b.clients.live(), 0);
    }

    #[test]
    fn addresses_nothing_refers_to_are_forgotten_so_the_map_stays_small() {
        let b = Budget::new(1 << 20);
        let share = whole(&b);
        let kept = b.admit(A, share, None).unwrap();
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(b.admit(Client::Known(ip), share, Some(10)).unwrap());
            assert!(b.clients.lock().0.len() <= 2 * MIN_SWEEP, "after {i}");
        }
        assert_eq!(b.clients.live(), 1, "the address still in flight is kept");
        drop(kept);
    }

    #[test]
    fn a_share_is_never_smaller_than_one_largest_body_or_one_slot() {
        assert_eq!(
            Share::new(4 << 20, 4, 8, 1_000_000),
            Share {
                bytes: 1_000_000,
                requests: 1
            }
        );
        assert_eq!(
            Share::new(1000, 10, 1, 1000),
            Share {
                bytes: 1000,
                requests: 10
            }
        );
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
        let share = whole(&b);
        let adm = b.admit(A, share, None).unwrap();
        assert!(adm.reserve(u32::MAX as usize + 1).is_err());
        assert_eq!(usage_bytes(&b, A), 0);
    }
}
