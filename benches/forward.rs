//! What a sink's delivery costs our forwarding thread per event, before the broker sees it: the
//! NATS header map of one event, and the Redis batch script call for a default batch (128
//! events). The body is the ~1.6 kB NetBox fixture. The allocator is the server's: mimalloc,
//! returning freed memory at once (`purge_delay` 0, as `cli.rs` sets it), since large buffers
//! then cost page faults each time.
//!
//! ```sh
//! cargo bench --bench forward
//! ```

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use webhook_listener::forward::{nats, redis, Event};

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn benches(c: &mut Criterion) {
    // As the server does before any thread starts (criterion has started none yet).
    webhook_listener::cli::return_freed_memory_promptly();
    let body = common::netbox_body();
    let one = common::netbox_event(&body);
    let batch: Vec<Event> = (0..128).map(|_| common::netbox_event(&body)).collect();
    let mut g = c.benchmark_group("forward");
    g.throughput(Throughput::Elements(1));
    g.bench_function("nats_headers", |b| {
        b.iter(|| black_box(nats::headers(black_box(&one))))
    });
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("redis_batch_command/128x1.6kB", |b| {
        b.iter(|| {
            let cmd = redis::batch_command("webhooks", 1_000_000, 600, black_box(&batch));
            black_box(cmd.get_packed_command().len())
        })
    });
    g.finish();
}

criterion_group!(forward_benches, benches);
criterion_main!(forward_benches);
