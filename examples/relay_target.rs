//! relay_target: the internal service at the other end of an http relay sink, for
//! `scripts/bench-relay.sh`: verifies every request with the `standardwebhooks` crate (an
//! implementation independent of ours), answers 204, and counts. `GET /count` answers
//! `verified=N failed=M`; `GET /gone` makes it answer 410 to everything (the relay pauses, so a
//! backlog builds up) until `GET /back`. Run it by hand with:
//!
//! ```sh
//! RELAY_SECRET=whsec_... cargo run --release --example relay_target -- 127.0.0.1:9100
//! ```
//!
//! The first line on stdout is `listening on ADDR`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;

struct Counts {
    verifier: standardwebhooks::Webhook,
    verified: AtomicU64,
    failed: AtomicU64,
    gone: AtomicBool,
}

async fn receive(State(c): State<Arc<Counts>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if c.gone.load(Ordering::Relaxed) {
        StatusCode::GONE
    } else if c.verifier.verify(&body, &headers).is_ok() {
        c.verified.fetch_add(1, Ordering::Relaxed);
        StatusCode::NO_CONTENT
    } else {
        c.failed.fetch_add(1, Ordering::Relaxed);
        StatusCode::UNAUTHORIZED
    }
}

async fn count(State(c): State<Arc<Counts>>) -> String {
    format!(
        "verified={} failed={}\n",
        c.verified.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed)
    )
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let secret = std::env::var("RELAY_SECRET").expect("RELAY_SECRET (whsec_...)");
    let counts = Arc::new(Counts {
        verifier: standardwebhooks::Webhook::new(&secret).expect("a whsec_ secret"),
        verified: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        gone: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/count", get(count))
        .route("/gone", get(|State(c): State<Arc<Counts>>| async move { c.gone.store(true, Ordering::Relaxed) }))
        .route("/back", get(|State(c): State<Arc<Counts>>| async move { c.gone.store(false, Ordering::Relaxed) }))
        .fallback(receive)
        .with_state(counts);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let local = listener.local_addr().expect("local addr");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {local}");
    let _ = out.flush();
    axum::serve(listener, app).await.expect("serve");
}
