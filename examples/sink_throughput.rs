//! Events/s into each broker from one sink, sequentially and with several publishes in flight, and
//! the publish→confirmation latency (p50/p99). Starts its own `nats-server -js` and `redis-server`
//! (AOF, `appendfsync always`) on loopback, like the tests.
//!
//! ```sh
//! cargo run --release --example sink_throughput -- [events] [in_flight]   # default 5000 8
//! ```

#[path = "../tests/common/brokers.rs"]
mod brokers;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use uuid::Uuid;
use webhook_listener::forward::nats::{NatsConfig, NatsSink};
use webhook_listener::forward::redis::{RedisConfig, RedisSink};
use webhook_listener::forward::{Event, Sink};

/// A GitHub-sized push body.
const BODY_BYTES: usize = 2048;

fn events(n: usize) -> Vec<Event> {
    let body = Bytes::from(format!(
        "{{\"ref\":\"refs/heads/main\",\"pad\":\"{}\"}}",
        "x".repeat(BODY_BYTES - 40)
    ));
    (0..n)
        .map(|i| Event {
            id: Uuid::now_v7(),
            hook: "/github".into(),
            provider: "github".into(),
            event_type: Some("push".into()),
            delivery_id: Some(format!("bench-{i}-{}", Uuid::new_v4())),
            received_at: chrono::Utc::now(),
            content_type: Some("application/json".into()),
            client: None,
            body: body.clone(),
        })
        .collect()
}

struct Run {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(sink: &impl Sink, evs: &[Event], in_flight: usize) -> Run {
    let started = Instant::now();
    let mut lat: Vec<Duration> = futures_util::stream::iter(evs)
        .map(|ev| async move {
            let t = Instant::now();
            sink.deliver(ev)
                .await
                .unwrap_or_else(|e| panic!("deliver: {e}"));
            t.elapsed()
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let total = started.elapsed();
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    Run {
        per_sec: evs.len() as f64 / total.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn row(broker: &str, in_flight: usize, r: &Run) {
    println!(
        "| {broker:<22} | {in_flight:>9} | {:>10.0} | {:>9.3} | {:>9.3} |",
        r.per_sec,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let in_flight: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);

    let nats = brokers::Nats::start();
    let mut cfg = NatsConfig::new("bench", nats.url());
    cfg.stream = Some("BENCH".into());
    let nats_sink = NatsSink::new(cfg).await.expect("nats sink");
    let redis = brokers::Redis::start();
    let redis_sink =
        RedisSink::new(RedisConfig::new("bench", redis.url(), "bench")).expect("redis sink");

    // Warm-up: connections, stream creation, script load.
    run(&nats_sink, &events(200), 1).await;
    run(&redis_sink, &events(200), 1).await;

    println!("{n} events of {BODY_BYTES} B, one sink task, loopback");
    println!("| broker                 | in flight | events/s   | p50 ms    | p99 ms    |");
    println!("|------------------------|-----------|------------|-----------|-----------|");
    for k in [1, in_flight] {
        row(
            "NATS JetStream (file)",
            k,
            &run(&nats_sink, &events(n), k).await,
        );
        row(
            "Redis (AOF always)",
            k,
            &run(&redis_sink, &events(n), k).await,
        );
    }
}
