use std::os::unix::fs::FileExt;

use super::*;
use crate::forward::testing::{event, event_sized};

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 4096,
    }
}

fn open(cfg: &SpoolConfig) -> (Spool, OpenReport) {
    Spool::open(cfg.clone()).expect("open")
}

/// A spool with no sink registered keeps nothing it has synced; these tests register one that
/// never advances, so the spool keeps everything.
fn open_held(cfg: &SpoolConfig) -> (Spool, Checkpoint) {
    let (spool, _) = open(cfg);
    let hold = spool.handle().register("hold").expect("register");
    (spool, hold)
}

fn append_synced(spool: &mut Spool, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        spool.append(&event(n)).expect("append");
    }
    spool.sync().expect("sync");
}

fn read_all(reader: &mut SpoolReader) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().expect("read") {
        out.push(r);
    }
    out
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

#[test]
fn appended_records_become_readable_only_after_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, report) = open(&config(dir.path()));
    assert_eq!((report.next_seq, report.torn_tail.clone()), (1, None));
    let handle = spool.handle();
    let durable = handle.durable();
    let mut reader = handle.reader(1).expect("reader");

    assert_eq!(spool.append(&event(1)).expect("append"), 1);
    assert_eq!(spool.append(&event(2)).expect("append"), 2);
    assert!(
        reader.next_record().expect("read").is_none(),
        "not synced yet"
    );
    assert_eq!(*durable.borrow(), 0);

    spool.sync().expect("sync");
    assert_eq!(*durable.borrow(), 2);
    let records = read_all(&mut reader);
    assert_eq!(seqs(&records), [1, 2]);
    assert_eq!(records[1].event, event(2));
}

#[test]
fn a_reader_follows_appends_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _hold) = open_held(&config(dir.path()));
    let handle = spool.handle();
    let mut reader = handle.reader(1).expect("reader");
    let mut seen = Vec::new();
    for round in 0..10 {
        append_synced(&mut spool, round * 10 + 1..=round * 10 + 10);
        seen.extend(seqs(&read_all(&mut reader)));
    }
    assert_eq!(seen, (1..=100).collect::<Vec<_>>());
    assert!(segment::list(dir.path()).expect("list").len() > 2, "rolled");
}

#[test]
fn a_reader_starts_inside_a_segment_and_ahead_of_the_durable_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _hold) = open_held(&config(dir.path()));
    append_synced(&mut spool, 1..=30);
    let handle = spool.handle();
    assert_eq!(
        seqs(&read_all(&mut handle.reader(17).expect("r"))),
        (17..=30).collect::<Vec<_>>()
    );
    let mut ahead = handle.reader(33).expect("reader");
    assert!(ahead.next_record().expect("read").is_none());
    append_synced(&mut spool, 31..=35);
    assert_eq!(seqs(&read_all(&mut ahead)), [33, 34, 35]);
}

#[test]
fn a_restart_continues_the_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    {
        let (mut spool, _hold) = open_held(&cfg);
        append_synced(&mut spool, 1..=20);
    }
    let (mut spool, report) = open(&cfg);
    let _hold = spool.handle().register("hold").expect("register");
    assert_eq!((report.next_seq, report.torn_tail), (21, None));
    assert_eq!(spool.append(&event(21)).expect("append"), 21);
    spool.sync().expect("sync");
    let records = read_all(&mut spool.handle().reader(1).expect("reader"));
    assert_eq!(seqs(&records), (1..=21).collect::<Vec<_>>());
}

#[test]
fn a_torn_tail_is_cut_reported_and_its_sequence_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let newest = {
        let (mut spool, _) = open(&cfg);
        append_synced(&mut spool, 1..=3);
        segment::path(dir.path(), spool.active_first)
    };
    let intact = fs::metadata(&newest).expect("stat").len();
    // A crash mid-write: the start of a fourth record, cut short.
    let mut fourth = Vec::new();
    frame::encode(4, &event(4), &mut fourth).expect("encode");
    let f = OpenOptions::new().write(true).open(&newest).expect("open");
    f.write_all_at(&fourth[..fourth.len() / 2], intact)
        .expect("write");

    let (mut spool, report) = open(&cfg);
    let tail = report.torn_tail.expect("reported");
    assert_eq!(tail.offset, intact);
    assert_eq!(tail.bytes_cut, (fourth.len() / 2) as u64);
    assert_eq!(tail.records_cut, 1);
    assert!(matches!(
        tail.damage,
        Damage::Frame(FrameError::LengthPastEnd { .. })
    ));
    assert_eq!(fs::metadata(&newest).expect("stat").len(), intact);
    assert_eq!(report.next_seq, 4);
    append_synced(&mut spool, 4..=4);
    let records = read_all(&mut spool.handle().reader(1).expect("reader"));
    assert_eq!(seqs(&records), [1, 2, 3, 4]);
    assert_eq!(records[3].event, event(4));
}

#[test]
fn a_damaged_record_before_intact_ones_cuts_them_all_and_says_how_many() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let newest = {
        let (mut spool, _) = open(&cfg);
        append_synced(&mut spool, 1..=5);
        segment::path(dir.path(), spool.active_first)
    };
    let mut two = Vec::new();
    frame::encode(1, &event(1), &mut two).expect("encode");
    frame::encode(2, &event(2), &mut two).expect("encode");
    let f = OpenOptions::new().write(true).open(&newest).expect("open");
    let third = two.len() as u64;
    f.write_all_at(&[0xAA], third + 60).expect("write"); // a bit flip inside record 3

    let (_, report) = open(&cfg);
    let tail = report.torn_tail.expect("reported");
    assert_eq!(tail.offset, third);
    assert_eq!(
        tail.records_cut, 3,
        "the damaged one and two intact ones after it"
    );
    assert!(matches!(
        tail.damage,
        Damage::Frame(FrameError::ChecksumMismatch { .. })
    ));
    assert_eq!(report.next_seq, 3);
}

#[test]
fn segments_are_deleted_only_once_every_checkpoint_passed_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = open(&config(dir.path()));
    let handle = spool.handle();
    let fast = handle.register("fast").expect("register");
    let slow = handle.register("slow").expect("register");
    append_synced(&mut spool, 1..=100);
    let before = segment::list(dir.path()).expect("list");
    assert!(before.len() >= 4, "{before:?}");

    fast.store(100).expect("store");
    spool.sync().expect("sync");
    spool.remover.flush();
    assert_eq!(
        segment::list(dir.path()).expect("list"),
        before,
        "slow holds them"
    );

    // Slow passes exactly the first two segments.
    slow.store(before[2] - 1).expect("store");
    spool.sync().expect("sync");
    spool.remover.flush();
    assert_eq!(segment::list(dir.path()).expect("list"), before[2..]);

    // A stopped runner's handle going away does not release its segments (shutdown: the writer
    // still commits groups after the runners stopped)...
    drop(slow);
    spool.sync().expect("sync");
    spool.remover.flush();
    assert_eq!(segment::list(dir.path()).expect("list"), before[2..]);
    // ...and the sink takes its registration up again where it was.
    let slow = handle.register("slow").expect("re-register");
    assert_eq!(slow.get(), before[2] - 1);
    assert!(matches!(
        handle.register("slow"),
        Err(SpoolError::AlreadyRegistered(_))
    ));

    // Unregistering (a reload removed the sink) stops it holding segments back.
    drop(slow);
    handle.unregister("slow");
    spool.sync().expect("sync");
    spool.remover.flush();
    assert_eq!(
        segment::list(dir.path()).expect("list"),
        [spool.active_first],
        "only the active segment is left"
    );
    let records = read_all(&mut handle.reader(101 - 3).expect("reader"));
    assert_eq!(seqs(&records).last(), Some(&100));
}

#[test]
fn full_refuses_appends_then_recovers_once_checkpoints_advance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        max_bytes: 16 << 10,
        segment_bytes: 4 << 10,
        ..config(dir.path())
    };
    let (mut spool, _) = open(&cfg);
    let handle = spool.handle();
    let sink = handle.register("bus").expect("register");
    let mut n = 0;
    let err = loop {
        n += 1;
        match spool.append(&event_sized(n, 1600)) {
            Ok(_) => spool.sync().expect("sync"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, SpoolError::Full { .. }), "{err}");
    assert!(handle.is_full());
    assert!(handle.used_bytes() <= cfg.max_bytes);
    let stored = n - 1;
    assert!(matches!(
        spool.append(&event_sized(n, 1600)),
        Err(SpoolError::Full { .. })
    ));

    sink.store(stored).expect("store");
    let seq = spool.append(&event_sized(n, 1600)).expect("room again");
    assert_eq!(
        seq,
        stored + 1,
        "no sequence number was used up by the refusals"
    );
    assert!(!handle.is_full());
    spool.sync().expect("sync");
    let records = read_all(&mut handle.reader(stored).expect("reader"));
    assert_eq!(seqs(&records), [stored, stored + 1]);
}

#[test]
fn a_new_sink_starts_at_the_durable_end_and_a_known_one_at_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    {
        let (mut spool, _) = open(&cfg);
        let a = spool.handle().register("a").expect("register");
        append_synced(&mut spool, 1..=10);
        a.store(4).expect("store");
        assert!(matches!(
            spool.handle().register("a"),
            Err(SpoolError::AlreadyRegistered(_))
        ));
    }
    let (spool, _) = open(&cfg);
    let h = spool.handle();
    assert_eq!(h.register("a").expect("register").get(), 4);
    assert_eq!(h.register("b").expect("register").get(), 10);
    assert!(matches!(
        h.register("../x"),
        Err(SpoolError::InvalidSinkName(_))
    ));
}

#[test]
fn the_sequence_never_restarts_below_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    {
        let (mut spool, _) = open(&cfg);
        let a = spool.handle().register("a").expect("register");
        append_synced(&mut spool, 1..=10);
        a.store(10).expect("store");
    }
    for first in segment::list(dir.path()).expect("list") {
        fs::remove_file(segment::path(dir.path(), first)).expect("remove");
    }
    let (mut spool, report) = open(&cfg);
    assert_eq!(report.next_seq, 11);
    assert_eq!(spool.append(&event(11)).expect("append"), 11);
}

#[test]
fn a_second_process_cannot_open_the_same_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_spool, _) = open(&config(dir.path()));
    assert!(matches!(
        Spool::open(config(dir.path())),
        Err(SpoolError::Locked(_))
    ));
}

#[test]
fn settings_that_could_never_free_room_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        max_bytes: 4096,
        segment_bytes: 4096,
        ..config(dir.path())
    };
    assert!(matches!(Spool::open(cfg), Err(SpoolError::Config(_))));
}

#[test]
fn damage_in_an_older_segment_is_reported_then_stepped_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _hold) = open_held(&config(dir.path()));
    append_synced(&mut spool, 1..=60);
    let firsts = segment::list(dir.path()).expect("list");
    let f = OpenOptions::new()
        .write(true)
        .open(segment::path(dir.path(), firsts[0]))
        .expect("open");
    let mut one = Vec::new();
    frame::encode(1, &event(1), &mut one).expect("encode");
    f.write_all_at(b"XXXX", one.len() as u64).expect("write"); // record 2's magic

    let mut reader = spool.handle().reader(1).expect("reader");
    assert_eq!(reader.next_record().expect("read").map(|r| r.seq), Some(1));
    let err = reader.next_record().expect_err("damage is an error");
    assert!(
        matches!(
            err,
            SpoolError::Corrupt {
                damage: Damage::Frame(FrameError::BadMagic),
                ..
            }
        ),
        "{err}"
    );
    let skipped = reader
        .skip_damaged()
        .expect("skip")
        .expect("something follows");
    assert_eq!(skipped, Skipped { from: 2, to: 3 });
    assert_eq!(seqs(&read_all(&mut reader)), (3..=60).collect::<Vec<_>>());
}

#[test]
fn a_failed_group_is_rolled_back_and_its_sequence_numbers_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut spool, _) = open(&config(dir.path()));
    append_synced(&mut spool, 1..=2);
    spool.append(&event(3)).expect("append");
    spool.rollback();
    assert_eq!(spool.append(&event(30)).expect("append"), 3);
    spool.sync().expect("sync");
    let records = read_all(&mut spool.handle().reader(1).expect("reader"));
    assert_eq!(seqs(&records), [1, 2, 3]);
    assert_eq!(records[2].event, event(30));
}

/// The reader reads segments in chunks: records that straddle a chunk's end, a record larger than
/// a chunk, and records appended after a chunk was read all come back whole and in order.
#[test]
fn records_across_chunk_ends_and_larger_than_a_chunk_read_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        max_bytes: 64 << 20,
        segment_bytes: 16 << 20,
        ..config(dir.path())
    };
    let (mut spool, _hold) = open_held(&cfg);
    let handle = spool.handle();
    let mut reader = handle.reader(1).expect("reader");
    let sizes = |n: u64| match n {
        400 => 700 << 10,
        n => 1000 + (n as usize * 37) % 900,
    };
    let mut seen = Vec::new();
    for n in 1..=600 {
        spool.append(&event_sized(n, sizes(n))).expect("append");
        if n % 150 == 0 {
            spool.sync().expect("sync");
            seen.extend(read_all(&mut reader));
        }
    }
    assert_eq!(seqs(&seen), (1..=600).collect::<Vec<_>>());
    for r in &seen {
        assert_eq!(
            r.event,
            event_sized(r.seq, sizes(r.seq)),
            "record {}",
            r.seq
        );
    }
}

/// A chunk read while a group was not yet durable must not serve that group's records after the
/// group failed and its sequence numbers were written again.
#[test]
fn a_record_rewritten_after_a_failed_group_is_read_anew() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        max_bytes: 4 << 20,
        segment_bytes: 1 << 20,
        ..config(dir.path())
    };
    let (mut spool, _hold) = open_held(&cfg);
    let handle = spool.handle();
    append_synced(&mut spool, 1..=2);
    spool.append(&event(3)).expect("append");
    // Written but not yet synced: the chunk the reader reads for 1 and 2 holds record 3 too.
    spool.begin_sync().expect("write");
    let mut reader = handle.reader(1).expect("reader");
    assert_eq!(seqs(&read_all(&mut reader)), [1, 2]);
    let failed = spool.end_sync(Err(io::Error::other("injected sync failure")));
    assert!(failed.is_err());
    assert_eq!(spool.append(&event(30)).expect("append"), 3);
    spool.sync().expect("sync");
    let records = read_all(&mut reader);
    assert_eq!(seqs(&records), [3]);
    assert_eq!(records[0].event, event(30));
}

#[test]
fn each_group_commit_says_when_its_events_were_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 8 << 10,
    };
    let (mut spool, _) = Spool::open(cfg.clone()).expect("open");
    let h = spool.handle();
    let before = chrono::Utc::now().timestamp_micros();
    for n in 1..=3 {
        spool.append(&event(n)).expect("append");
    }
    spool.sync().expect("sync");
    let first = h.acked_at(1).expect("group 1 timed");
    assert!(first >= before, "{first} < {before}");
    assert_eq!(h.acked_at(3), Some(first), "one time for the whole group");
    spool.append(&event(4)).expect("append");
    assert_eq!(h.acked_at(4), None, "not durable yet");
    spool.sync().expect("sync");
    assert!(h.acked_at(4).expect("group 2 timed") >= first);
    drop(spool);
    // After a restart, what was spooled before is not timed (it was answered by the last run).
    let (mut spool, _) = Spool::open(cfg).expect("reopen");
    let h = spool.handle();
    assert_eq!(h.acked_at(2), None);
    spool.append(&event(5)).expect("append");
    spool.sync().expect("sync");
    assert!(h.acked_at(5).is_some());
}
