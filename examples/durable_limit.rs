//! durable_limit: the floor for webhook-listener's throughput with `fsync = true`: `bare_limit`
//! (NetBox HMAC-SHA512 check over the raw body, 200 `{"result":"ok"}`) plus the one thing a
//! durable receiver cannot skip: the raw body and a newline are appended to a file, and the 200 is
//! sent only after `fdatasync`. One writer thread does group commit: it blocks for the first line,
//! takes every line already waiting, writes them with one `write_all`, syncs once, then answers
//! them all. No parsing, no log formatting, no limits, no metrics.
//!
//! Used by `scripts/bench.sh` as the reference for `fsync = true`. Run it by hand with:
//!
//! ```sh
//! WEBHOOK_SECRET=my-webhook-secret cargo run --release --example durable_limit -- \
//!     127.0.0.1:9000 /tmp/durable.log fsync     # or nofsync: write(2) only
//! ```
//!
//! Arguments: listen address (default 127.0.0.1:0), file (default durable_limit.log), fsync|nofsync
//! (default fsync). The first line on stdout is `listening on ADDR`.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use axum::Router;
use hmac::{Hmac, Mac};

#[path = "shared/mod.rs"]
mod shared;
use sha2::Sha512;
use tokio::sync::oneshot;

type Line = (Bytes, oneshot::Sender<bool>);

/// Owns the file: one write and (with `fsync`) one fdatasync per group of waiting lines.
fn writer(mut file: std::fs::File, fsync: bool, rx: mpsc::Receiver<Line>) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut waiters = Vec::new();
    while let Ok(first) = rx.recv() {
        for (body, done) in std::iter::once(first).chain(rx.try_iter()) {
            buf.extend_from_slice(&body);
            buf.push(b'\n');
            waiters.push(done);
        }
        let ok = file.write_all(&buf).is_ok() && (!fsync || file.sync_data().is_ok());
        for done in waiters.drain(..) {
            let _ = done.send(ok);
        }
        buf.clear();
    }
}

async fn receive(
    key: Arc<Hmac<Sha512>>,
    log: mpsc::Sender<Line>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let (status, text) = if shared::signed(&key, &headers, &body) {
        let (done, stored) = oneshot::channel();
        if log.send((body, done)).is_ok() && stored.await == Ok(true) {
            (StatusCode::OK, r#"{"result":"ok"}"#)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, r#"{"result":"error"}"#)
        }
    } else {
        (StatusCode::UNAUTHORIZED, r#"{"result":"unauthorized"}"#)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], text)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let path = args.next().unwrap_or_else(|| "durable_limit.log".into());
    let fsync = match args.next().as_deref() {
        None | Some("fsync") => true,
        Some("nofsync") => false,
        Some(other) => panic!("third argument must be fsync or nofsync, not {other:?}"),
    };
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_default();
    let key = Arc::new(Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("any key"));

    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let (tx, rx) = mpsc::channel::<Line>();
    std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || writer(file, fsync, rx))?;

    let app = Router::new().fallback(axum::routing::post(move |h, b| {
        receive(key.clone(), tx.clone(), h, b)
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    // Same as webhook-listener: no Nagle delay on small responses.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
