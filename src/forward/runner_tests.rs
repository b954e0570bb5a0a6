//! The runner against a small in-test sink (a peer that answers as each test scripts it) over a
//! real spool in a temp dir. Nothing sleeps to wait: every wait is on the status or a watch, with
//! a generous timeout so a bug fails the test instead of hanging it.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use tokio::sync::Semaphore;
use uuid::Uuid;

use super::*;
use crate::forward::spool::{Spool, SpoolConfig};
use crate::forward::status::{Done, SinkState};
use crate::forward::testing::event;

const WAIT: Duration = Duration::from_secs(20);

type Answer = Box<dyn Fn(&Event, u32) -> Result<(), DeliveryError> + Send + Sync>;

/// The destination: answers per (event, attempt) as scripted, records what it accepted.
struct Peer {
    answer: Answer,
    attempts: Mutex<HashMap<Uuid, u32>>,
    accepted: Mutex<Vec<Uuid>>,
    accepted_count: watch::Sender<usize>,
    /// An event that waits for a permit before it is answered.
    hold: Option<(Uuid, Arc<Semaphore>)>,
    active: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Clone)]
struct PeerSink(Arc<Peer>);

impl Sink for PeerSink {
    fn name(&self) -> &str {
        "peer"
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        let p = &self.0;
        let attempt = {
            let mut a = p.attempts.lock().expect("lock");
            let n = a.entry(event.id).or_insert(0);
            *n += 1;
            *n
        };
        let now = p.active.fetch_add(1, Ordering::SeqCst) + 1;
        p.peak.fetch_max(now, Ordering::SeqCst);
        if let Some((id, gate)) = &p.hold {
            if *id == event.id {
                let _permit = gate.acquire().await.expect("gate open");
            }
        }
        let answer = (p.answer)(event, attempt);
        if answer.is_ok() {
            p.accepted.lock().expect("lock").push(event.id);
            p.accepted_count.send_modify(|c| *c += 1);
        }
        p.active.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

fn peer(answer: impl Fn(&Event, u32) -> Result<(), DeliveryError> + Send + Sync + 'static) -> Peer {
    Peer {
        answer: Box::new(answer),
        attempts: Mutex::default(),
        accepted: Mutex::default(),
        accepted_count: watch::Sender::new(0),
        hold: None,
        active: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    }
}

fn always_ok() -> Peer {
    peer(|_, _| Ok(()))
}

/// The `n` in `event(n)`, from its id.
fn n_of(id: &Uuid) -> u64 {
    (id.as_u128() & 0xffff) as u64
}

struct Setup {
    _dir: tempfile::TempDir,
    spool: Spool,
    shutdown: CancellationToken,
    /// Registered before any append: a sink registered later starts at the durable end.
    checkpoint: Option<Checkpoint>,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = SpoolConfig {
            dir: dir.path().to_path_buf(),
            max_bytes: 1 << 20,
            segment_bytes: 8 << 10,
        };
        let (spool, _) = Spool::open(cfg).expect("open");
        let checkpoint = Some(spool.handle().register("peer").expect("register"));
        Setup {
            _dir: dir,
            spool,
            shutdown: CancellationToken::new(),
            checkpoint,
        }
    }

    fn append(&mut self, range: std::ops::RangeInclusive<u64>) {
        for n in range {
            self.spool.append(&event(n)).expect("append");
        }
        self.spool.sync().expect("sync");
    }

    fn start(&mut self, peer: &Arc<Peer>, config: RunnerConfig) -> (Runner, Checkpoint) {
        let handle = self.spool.handle();
        let cp = match self.checkpoint.take() {
            Some(cp) => cp,
            None => handle.register("peer").expect("register"),
        };
        let runner = Runner::spawn(
            PeerSink(peer.clone()),
            &handle,
            cp.clone(),
            config,
            &self.shutdown,
        )
        .expect("spawn");
        (runner, cp)
    }

    fn dead_letters(&self) -> Vec<DeadLetter> {
        let path = dead_letter::path(self.spool.handle().dir(), "peer");
        match dead_letter::Reader::open(&path).expect("open") {
            None => Vec::new(),
            Some(r) => r
                .map(|e| e.expect("read").letter.expect("parses"))
                .collect(),
        }
    }
}

fn fast() -> RunnerConfig {
    RunnerConfig {
        retry_initial: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        shutdown_timeout: Duration::from_millis(200),
        ..RunnerConfig::default()
    }
}

async fn confirmed(runner: &Runner, seq: u64) {
    tokio::time::timeout(WAIT, runner.status().wait_confirmed(seq))
        .await
        .expect("confirmed in time")
        .expect("runner alive");
}

async fn state(runner: &Runner, want: SinkState) {
    let mut rx = runner.status().watch_state();
    tokio::time::timeout(WAIT, rx.wait_for(|s| *s == want))
        .await
        .expect("state in time")
        .expect("runner alive");
}

async fn stop(runner: Runner) {
    runner.stop();
    tokio::time::timeout(WAIT, runner.join())
        .await
        .expect("stops in time");
}

fn accepted(p: &Peer) -> Vec<u64> {
    p.accepted.lock().expect("lock").iter().map(n_of).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_one_in_flight_events_go_in_order_and_the_checkpoint_follows() {
    let mut s = Setup::new();
    s.append(1..=10);
    let p = Arc::new(always_ok());
    let (runner, cp) = s.start(&p, fast());
    confirmed(&runner, 10).await;
    // Appended while the runner waits: it is woken by the durable watch.
    s.append(11..=25);
    confirmed(&runner, 25).await;
    assert_eq!(accepted(&p), (1..=25).collect::<Vec<_>>());
    assert_eq!(p.peak.load(Ordering::SeqCst), 1);
    let snap = runner.status().snapshot();
    assert_eq!(
        (snap.delivered, snap.lag_events, snap.state),
        (25, 0, SinkState::Connected)
    );
    stop(runner).await;
    assert_eq!(cp.get(), 25, "the last checkpoint is written on stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_until_delivered_once() {
    let mut s = Setup::new();
    s.append(1..=3);
    let p = Arc::new(peer(|_, attempt| {
        if attempt < 3 {
            Err(DeliveryError::retry("broker away"))
        } else {
            Ok(())
        }
    }));
    let (runner, _cp) = s.start(&p, fast());
    confirmed(&runner, 3).await;
    assert_eq!(accepted(&p), [1, 2, 3]);
    assert!(p.attempts.lock().expect("lock").values().all(|&a| a == 3));
    let snap = runner.status().snapshot();
    assert_eq!((snap.retried, snap.dead_lettered), (6, 0));
    assert_eq!(snap.last_error.as_deref(), Some("broker away"));
    assert_eq!(snap.state, SinkState::Connected);
    assert!(s.dead_letters().is_empty());
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_attempts_is_dead_lettered_and_the_rest_flow() {
    let mut s = Setup::new();
    s.append(1..=4);
    let p = Arc::new(peer(|e, _| {
        if n_of(&e.id) == 2 {
            Err(DeliveryError::retry("503 from relay"))
        } else {
            Ok(())
        }
    }));
    let (runner, _cp) = s.start(
        &p,
        RunnerConfig {
            max_attempts: Some(3),
            ..fast()
        },
    );
    confirmed(&runner, 4).await;
    assert_eq!(accepted(&p), [1, 3, 4]);
    let letters = s.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].attempts, letters[0].error.as_str()),
        (3, "503 from relay")
    );
    assert_eq!(letters[0].event, event(2));
    assert_eq!(runner.status().snapshot().dead_lettered, 1);
    // What the operator page asks per event: the dead one, the delivered ones and when.
    let st = runner.status();
    assert!(
        matches!(st.done(2), Done::DeadLettered(_)),
        "{:?}",
        st.done(2)
    );
    for seq in [1, 3, 4] {
        assert!(
            matches!(st.done(seq), Done::Delivered(Some(_))),
            "{seq}: {:?}",
            st.done(seq)
        );
    }
    assert_eq!(st.done(5), Done::Pending);
    assert_eq!(st.done(0), Done::BeforeStart);
    stop(runner).await;
}

/// The test events were received in 2023: past a one-hour `max_age`, one failed attempt is the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_older_than_max_age_is_tried_once_then_dead_lettered() {
    let mut s = Setup::new();
    s.append(1..=3);
    let p = Arc::new(peer(|e, _| {
        if n_of(&e.id) == 2 {
            Err(DeliveryError::retry("503 from relay"))
        } else {
            Ok(())
        }
    }));
    let (runner, _cp) = s.start(
        &p,
        RunnerConfig {
            max_age: Some(Duration::from_secs(3600)),
            ..fast()
        },
    );
    confirmed(&runner, 3).await;
    assert_eq!(accepted(&p), [1, 3]);
    let letters = s.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(
        letters[0].error,
        "503 from relay (given up: the event is older than max_age_secs = 3600)"
    );
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_dead_lettered_at_once() {
    let mut s = Setup::new();
    s.append(1..=3);
    let p = Arc::new(peer(|e, _| {
        if n_of(&e.id) == 2 {
            Err(DeliveryError::Permanent("message too large".into()))
        } else {
            Ok(())
        }
    }));
    let (runner, _cp) = s.start(&p, fast());
    confirmed(&runner, 3).await;
    assert_eq!(accepted(&p), [1, 3]);
    let letters = s.dead_letters();
    assert_eq!((letters.len(), letters[0].attempts), (1, 1));
    assert_eq!(runner.status().snapshot().retried, 0);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_everything_until_resumed() {
    let mut s = Setup::new();
    s.append(1..=5);
    let p = Arc::new(peer(|e, attempt| {
        if n_of(&e.id) == 3 && attempt == 1 {
            Err(DeliveryError::Pause("410 Gone".into()))
        } else {
            Ok(())
        }
    }));
    let (runner, _cp) = s.start(&p, fast());
    state(&runner, SinkState::Paused).await;
    let snap = runner.status().snapshot();
    assert_eq!(snap.paused_reason.as_deref(), Some("410 Gone"));
    assert_eq!(*runner.status().confirmed().borrow(), 2);
    assert_eq!(snap.lag_events, 3);
    assert!(snap.lag_seconds > 0.0, "the held event's age");
    assert_eq!(accepted(&p), [1, 2]);
    assert!(s.dead_letters().is_empty(), "a pause drops nothing");

    runner.resume();
    confirmed(&runner, 5).await;
    assert_eq!(accepted(&p), [1, 2, 3, 4, 5]);
    assert_eq!(runner.status().state(), SinkState::Connected);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_in_flight_the_checkpoint_waits_for_the_oldest() {
    let mut s = Setup::new();
    s.append(1..=6);
    let gate = Arc::new(Semaphore::new(0));
    let mut p = always_ok();
    p.hold = Some((event(1).id, gate.clone()));
    let p = Arc::new(p);
    let (runner, cp) = s.start(
        &p,
        RunnerConfig {
            max_in_flight: 4,
            ..fast()
        },
    );
    // 2, 3, 4 are confirmed by the peer while 1 is still held...
    let mut count = p.accepted_count.subscribe();
    tokio::time::timeout(WAIT, count.wait_for(|&c| c >= 3))
        .await
        .expect("in time")
        .expect("peer alive");
    // ...and nothing past the gap is confirmed or checkpointed.
    assert_eq!(*runner.status().confirmed().borrow(), 0);
    assert_eq!(cp.get(), 0);
    assert!(p.peak.load(Ordering::SeqCst) >= 2);
    assert!(p.peak.load(Ordering::SeqCst) <= 4);
    gate.add_permits(1);
    confirmed(&runner, 6).await;
    let mut got = accepted(&p);
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4, 5, 6]);
    stop(runner).await;
    assert_eq!(cp.get(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_events_are_passed_over_not_held() {
    let mut s = Setup::new();
    s.append(1..=8); // odd: pull_request.opened, even: push
    let p = Arc::new(always_ok());
    let filter = EventFilter {
        hooks: Some(vec!["/github".into()]),
        events: Some(vec!["pull_request.*".into()]),
    };
    let (runner, _cp) = s.start(&p, RunnerConfig { filter, ..fast() });
    confirmed(&runner, 8).await;
    assert_eq!(accepted(&p), [1, 3, 5, 7]);
    assert_eq!(runner.status().snapshot().filtered, 4);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_after_the_checkpoint() {
    let mut s = Setup::new();
    s.append(1..=5);
    let first = Arc::new(always_ok());
    let (runner, cp) = s.start(&first, fast());
    confirmed(&runner, 5).await;
    stop(runner).await;
    assert_eq!(cp.get(), 5);
    drop(cp);

    s.append(6..=9);
    let second = Arc::new(always_ok());
    let (runner, _cp) = s.start(&second, fast());
    confirmed(&runner, 9).await;
    assert_eq!(accepted(&second), [6, 7, 8, 9]);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_a_stuck_delivery_after_the_timeout_and_keeps_it_spooled() {
    let mut s = Setup::new();
    s.append(1..=3);
    let gate = Arc::new(Semaphore::new(0));
    let mut p = always_ok();
    p.hold = Some((event(2).id, gate));
    let p = Arc::new(p);
    let (runner, cp) = s.start(&p, fast());
    confirmed(&runner, 1).await;
    s.shutdown.cancel();
    tokio::time::timeout(WAIT, runner.join())
        .await
        .expect("stops in time");
    assert_eq!(
        cp.get(),
        1,
        "the stuck event and those after it stay for the next start"
    );
    assert_eq!(accepted(&p), [1]);
}

#[test]
fn a_retry_after_hint_is_honoured_within_bounds() {
    let hint = |secs| DeliveryError::Retry {
        error: "429".into(),
        retry_after: Some(Duration::from_secs(secs)),
    };
    let ours = Some(Duration::from_secs(2));
    assert_eq!(retry_after(&hint(30), ours), Some(Duration::from_secs(30)));
    assert_eq!(
        retry_after(&hint(1), ours),
        ours,
        "never sooner than our backoff"
    );
    assert_eq!(retry_after(&hint(1 << 30), ours), Some(MAX_RETRY_AFTER));
    assert_eq!(
        retry_after(&hint(30), None),
        None,
        "out of attempts stays out"
    );
    assert_eq!(retry_after(&DeliveryError::retry("x"), ours), ours);
}

/// A broker on one connection: answers a whole batch per call and records each call. It
/// de-duplicates like the real ones (an event it already stored is `Ok` and stored once), and
/// `pipelined` says whether it goes on past a refused event (a broker that refused one message) or
/// stops there (a connection lost mid-batch: the rest never arrived).
struct BatchPeer {
    peer: Arc<Peer>,
    pipelined: bool,
    calls: Mutex<Vec<Vec<u64>>>,
    duplicates: AtomicUsize,
    /// [`Sink::pipeline_depth`]; with 2 the first call is answered only once a second one came
    /// (or after 5 s), and calls are answered in the order they were made, as on one connection.
    depth: usize,
    started: watch::Sender<usize>,
    connection: tokio::sync::Mutex<()>,
    overlapped: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct BatchSink(Arc<BatchPeer>);

impl BatchSink {
    fn new(peer: Peer, pipelined: bool) -> BatchSink {
        Self::with_depth(peer, pipelined, 1)
    }

    fn with_depth(peer: Peer, pipelined: bool, depth: usize) -> BatchSink {
        BatchSink(Arc::new(BatchPeer {
            peer: Arc::new(peer),
            pipelined,
            calls: Mutex::default(),
            duplicates: AtomicUsize::new(0),
            depth,
            started: watch::Sender::new(0),
            connection: tokio::sync::Mutex::new(()),
            overlapped: Default::default(),
        }))
    }

    fn answer(&self, event: &Event) -> Result<(), DeliveryError> {
        let p = &self.0.peer;
        let attempt = {
            let mut a = p.attempts.lock().expect("lock");
            let n = a.entry(event.id).or_insert(0);
            *n += 1;
            *n
        };
        let answer = (p.answer)(event, attempt);
        if answer.is_ok() {
            let mut accepted = p.accepted.lock().expect("lock");
            if accepted.contains(&event.id) {
                self.0.duplicates.fetch_add(1, Ordering::SeqCst);
            } else {
                accepted.push(event.id);
            }
        }
        answer
    }

    fn calls(&self) -> Vec<Vec<u64>> {
        self.0.calls.lock().expect("lock").clone()
    }
}

impl Sink for BatchSink {
    fn name(&self) -> &str {
        "peer"
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        self.answer(event)
    }

    fn pipeline_depth(&self) -> usize {
        self.0.depth
    }

    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), DeliveryError>> {
        let ns = events.iter().map(|e| n_of(&e.id)).collect();
        let call = {
            let mut calls = self.0.calls.lock().expect("lock");
            calls.push(ns);
            calls.len()
        };
        self.0.started.send_replace(call);
        // Taken in call order (tokio's mutex is fair): answered in the order sent.
        let _connection = self.0.connection.lock().await;
        if self.0.depth > 1 && call == 1 {
            let mut started = self.0.started.subscribe();
            let second =
                tokio::time::timeout(Duration::from_secs(5), started.wait_for(|n| *n >= 2));
            if second.await.is_ok() {
                self.0.overlapped.store(true, Ordering::SeqCst);
            }
        }
        let mut results = Vec::new();
        for e in events {
            let r = self.answer(e);
            let failed = r.is_err();
            results.push(r);
            if failed && !self.0.pipelined {
                break;
            }
        }
        results
    }
}

impl Setup {
    fn start_batch(&mut self, sink: &BatchSink, config: RunnerConfig) -> (Runner, Checkpoint) {
        let handle = self.spool.handle();
        let cp = self.checkpoint.take().expect("first start");
        let runner = Runner::spawn(sink.clone(), &handle, cp.clone(), config, &self.shutdown)
            .expect("spawn");
        (runner, cp)
    }
}

fn run(range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    range.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_readable_goes_out_in_order_in_batches_of_at_most_max_batch() {
    let mut s = Setup::new();
    s.append(1..=300);
    let sink = BatchSink::new(always_ok(), true);
    let (runner, cp) = s.start_batch(
        &sink,
        RunnerConfig {
            max_batch: 128,
            ..fast()
        },
    );
    confirmed(&runner, 300).await;
    s.append(301..=310);
    confirmed(&runner, 310).await;
    assert_eq!(
        sink.calls(),
        [run(1..=128), run(129..=256), run(257..=300), run(301..=310)],
        "one call per batch, each in spool order"
    );
    assert_eq!(accepted(&sink.0.peer), run(1..=310));
    let snap = runner.status().snapshot();
    assert_eq!((snap.delivered, snap.lag_events), (310, 0));
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("confirm", "t", runner.status().confirm_seconds().clone());
    registry.register("ack", "t", runner.status().ack_confirm_seconds().clone());
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(
        text.contains("confirm_count 310") && text.contains("ack_count 310"),
        "each confirmation timed, from arrival and from the ack: {text}"
    );
    stop(runner).await;
    assert_eq!(cp.get(), 310);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_batch_resends_from_the_lost_event_in_order() {
    let mut s = Setup::new();
    s.append(1..=10);
    // Event 5 is lost on its first send, and the connection with it: 6..10 never arrive.
    let sink = BatchSink::new(
        peer(|e, attempt| {
            if n_of(&e.id) == 5 && attempt == 1 {
                Err(DeliveryError::retry("connection reset"))
            } else {
                Ok(())
            }
        }),
        false,
    );
    let (runner, _cp) = s.start_batch(&sink, fast());
    confirmed(&runner, 10).await;
    assert_eq!(sink.calls(), [run(1..=10), run(5..=10)]);
    assert_eq!(accepted(&sink.0.peer), run(1..=10), "in order, each once");
    assert_eq!(sink.0.duplicates.load(Ordering::SeqCst), 0);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_event_holds_the_batch_and_retries_it_whole_with_backoff() {
    let mut s = Setup::new();
    s.append(1..=4);
    let sink = BatchSink::new(
        peer(|e, attempt| {
            if n_of(&e.id) == 1 && attempt < 3 {
                Err(DeliveryError::retry("broker away"))
            } else {
                Ok(())
            }
        }),
        false,
    );
    let (runner, _cp) = s.start_batch(&sink, fast());
    confirmed(&runner, 4).await;
    assert_eq!(sink.calls(), [run(1..=4), run(1..=4), run(1..=4)]);
    assert_eq!(accepted(&sink.0.peer), run(1..=4));
    let snap = runner.status().snapshot();
    assert_eq!((snap.retried, snap.delivered), (2, 4));
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_refuses_one_and_stores_the_rest_gets_each_once_by_dedupe() {
    let mut s = Setup::new();
    s.append(1..=10);
    // The broker refuses 5 once (no stream leader for a moment) but stores 6..10 it already had.
    let sink = BatchSink::new(
        peer(|e, attempt| {
            if n_of(&e.id) == 5 && attempt == 1 {
                Err(DeliveryError::retry("no stream leader"))
            } else {
                Ok(())
            }
        }),
        true,
    );
    let (runner, _cp) = s.start_batch(&sink, fast());
    confirmed(&runner, 10).await;
    assert_eq!(sink.calls(), [run(1..=10), run(5..=10)], "re-sent in order");
    assert_eq!(
        sink.0.duplicates.load(Ordering::SeqCst),
        5,
        "6..10 sent twice"
    );
    // Each once; this is the one case where order breaks (documented in forward/nats.rs).
    assert_eq!(accepted(&sink.0.peer), [1, 2, 3, 4, 6, 7, 8, 9, 10, 5]);
    assert_eq!(runner.status().snapshot().delivered, 10);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_mid_batch_is_dead_lettered_and_the_rest_follow_in_order() {
    let mut s = Setup::new();
    s.append(1..=6);
    let sink = BatchSink::new(
        peer(|e, _| {
            if n_of(&e.id) == 3 {
                Err(DeliveryError::Permanent("message too large".into()))
            } else {
                Ok(())
            }
        }),
        false,
    );
    let (runner, _cp) = s.start_batch(&sink, fast());
    confirmed(&runner, 6).await;
    assert_eq!(sink.calls(), [run(1..=6), run(3..=6), run(4..=6)]);
    assert_eq!(accepted(&sink.0.peer), [1, 2, 4, 5, 6]);
    let letters = s.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event, event(3));
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_batch_1_delivers_each_event_alone_through_deliver() {
    let mut s = Setup::new();
    s.append(1..=3);
    let sink = BatchSink::new(always_ok(), true);
    let (runner, _cp) = s.start_batch(
        &sink,
        RunnerConfig {
            max_batch: 1,
            ..fast()
        },
    );
    confirmed(&runner, 3).await;
    assert!(sink.calls().is_empty(), "{:?}", sink.calls());
    assert_eq!(accepted(&sink.0.peer), [1, 2, 3]);
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_sink_gets_the_next_whole_batch_while_the_first_is_out() {
    let mut s = Setup::new();
    s.append(1..=300);
    let sink = BatchSink::with_depth(always_ok(), false, 2);
    let (runner, _cp) = s.start_batch(
        &sink,
        RunnerConfig {
            max_batch: 128,
            ..fast()
        },
    );
    confirmed(&runner, 300).await;
    assert!(
        sink.0.overlapped.load(Ordering::SeqCst),
        "the second batch went out while the first was out"
    );
    // The last 44 are not a whole batch: they wait for the two before them.
    assert_eq!(sink.calls(), [run(1..=128), run(129..=256), run(257..=300)]);
    assert_eq!(accepted(&sink.0.peer), run(1..=300));
    stop(runner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_first_batch_out_fails_the_one_behind_it_waits_and_order_holds() {
    let mut s = Setup::new();
    s.append(1..=256);
    // The connection drops under both batches: 1 and 129 are lost on their first send.
    let sink = BatchSink::with_depth(
        peer(|e, attempt| {
            if matches!(n_of(&e.id), 1 | 129) && attempt == 1 {
                Err(DeliveryError::retry("connection reset"))
            } else {
                Ok(())
            }
        }),
        false,
        2,
    );
    let (runner, _cp) = s.start_batch(
        &sink,
        RunnerConfig {
            max_batch: 128,
            ..fast()
        },
    );
    confirmed(&runner, 256).await;
    // The second batch is tried once and handed back; it goes out again only after the first,
    // retried with backoff, got through.
    assert_eq!(
        sink.calls(),
        [run(1..=128), run(129..=256), run(1..=128), run(129..=256)]
    );
    assert_eq!(accepted(&sink.0.peer), run(1..=256), "in order, each once");
    assert_eq!(sink.0.duplicates.load(Ordering::SeqCst), 0);
    let snap = runner.status().snapshot();
    assert_eq!(
        (snap.retried, snap.delivered),
        (1, 256),
        "only the first batch backs off"
    );
    stop(runner).await;
}
