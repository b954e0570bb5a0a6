//! What the spool adds to the event-log writer thread per accepted event: framing + buffered
//! append alone, append + `fdatasync` as one group commit would do it (groups of 1 and 32), and a
//! group of 32 beside an event-log file with the two syncs serial or side by side; and what a
//! sink's reader pays per record to read the spool back.
//! The body is the ~1.6 kB NetBox fixture. Files go under cargo's target tmp dir (the real disk,
//! not a tmpfs), and no sink is registered, so synced segments are deleted as the bench runs.
//!
//! ```sh
//! cargo bench --bench spool
//! cargo bench --bench spool -- append_sync/1   # one bench (a substring filter)
//! cargo bench --bench spool -- group_with_log  # the serial/parallel comparison
//! cargo bench --bench spool -- read             # reading back, per record (read_held: as in a drain)
//! ```

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use webhook_listener::forward::spool::{Spool, SpoolConfig};

mod common;

/// The server's allocator, so reads that pin chunks pay what they pay in a drain.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn spool(dir: &std::path::Path) -> Spool {
    let config = SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 40,
        segment_bytes: 64 << 20,
    };
    Spool::open(config).expect("open the spool").0
}

fn benches(c: &mut Criterion) {
    // As the server does before any thread starts (criterion has started none yet).
    webhook_listener::cli::return_freed_memory_promptly();
    let e = common::netbox_event(&common::netbox_body());
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut g = c.benchmark_group("spool");
    g.measurement_time(Duration::from_secs(3));
    g.sample_size(30);
    g.throughput(Throughput::Elements(1));

    // Append alone, timed per record; a sync every 1000 records (untimed) keeps the disk in use
    // bounded, as the writer thread's group commits would.
    g.bench_function("append/1.6kB", |b| {
        let mut s = spool(&tmp.path().join("append"));
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for chunk in 0..iters.div_ceil(1000) {
                let n = (iters - chunk * 1000).min(1000);
                let start = Instant::now();
                for _ in 0..n {
                    black_box(s.append(black_box(&e)).expect("append"));
                }
                spent += start.elapsed();
                s.sync().expect("sync");
            }
            spent
        });
    });

    for group in [1u64, 32] {
        g.throughput(Throughput::Elements(group));
        g.bench_function(format!("append_sync/{group}x1.6kB"), |b| {
            let mut s = spool(&tmp.path().join(format!("sync{group}")));
            b.iter(|| {
                for _ in 0..group {
                    black_box(s.append(black_box(&e)).expect("append"));
                }
                s.sync().expect("sync");
            });
        });
    }

    // One group commit as the writer thread would do it with a sink configured: 32 events into the
    // spool and 32 lines into an event-log file, then both synced, one after the other or side by
    // side (two files, two fdatasyncs that the disk can overlap).
    let line = vec![b'x'; e.body.len() + 200];
    for parallel in [false, true] {
        g.throughput(Throughput::Elements(32));
        let name = if parallel { "parallel" } else { "serial" };
        g.bench_function(format!("group_with_log/32x1.6kB/{name}"), |b| {
            let mut s = spool(&tmp.path().join(format!("log-{name}")));
            let mut log = std::fs::File::create(tmp.path().join(format!("log-{name}.log")))
                .expect("create the log");
            b.iter(|| {
                for _ in 0..32 {
                    black_box(s.append(black_box(&e)).expect("append"));
                    log.write_all(&line).expect("write");
                }
                if parallel {
                    std::thread::scope(|scope| {
                        let spool_sync = scope.spawn(|| s.sync());
                        log.sync_data().expect("log sync");
                        spool_sync.join().expect("join").expect("spool sync");
                    });
                } else {
                    log.sync_data().expect("log sync");
                    s.sync().expect("spool sync");
                }
            });
            // Keep the log file small between samples.
            log.set_len(0).expect("truncate");
        });
    }

    // What a sink's reader thread spends per event in the drain: 20 000 spooled records read back
    // in order (a registered sink keeps the segments), each event dropped once read, as a runner
    // drops it once delivered.
    {
        let mut s = spool(&tmp.path().join("read"));
        let handle = s.handle();
        let _keep = handle.register("bench").expect("register");
        const RECORDS: u64 = 20_000;
        for _ in 0..RECORDS {
            s.append(&e).expect("append");
        }
        s.sync().expect("sync");
        g.throughput(Throughput::Elements(RECORDS));
        g.bench_function("read/20000x1.6kB", |b| {
            b.iter(|| {
                let mut r = handle.reader(1).expect("reader");
                while let Some(rec) = r.next_record().expect("read") {
                    black_box(rec);
                }
            });
        });
        // As in a drain: ~600 events held (two batches out, the next collecting) before the
        // oldest is dropped, on another thread (the runner's, not the reader's), so chunks stay
        // pinned while the next ones are read and their memory is freed across threads.
        g.bench_function("read_held/20000x1.6kB", |b| {
            let (tx, rx) = std::sync::mpsc::sync_channel(64);
            let dropper = std::thread::spawn(move || rx.into_iter().for_each(drop::<Vec<_>>));
            b.iter(|| {
                let mut held = std::collections::VecDeque::with_capacity(601);
                let mut r = handle.reader(1).expect("reader");
                while let Some(rec) = r.next_record().expect("read") {
                    held.push_back(rec);
                    if held.len() >= 600 {
                        // A delivered batch's worth at a time, as a runner drops them.
                        tx.send(held.drain(..128).collect()).expect("dropper");
                    }
                }
                tx.send(held.into_iter().collect()).expect("dropper");
            });
            drop(tx);
            dropper.join().expect("dropper");
        });
    }
    g.finish();
}

criterion_group!(spool_benches, benches);
criterion_main!(spool_benches);
