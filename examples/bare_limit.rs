//! bare_limit: the floor for webhook-listener's throughput with `fsync = false`: a minimal axum
//! server that does only what no webhook receiver can skip: read the body, check its NetBox
//! signature (HMAC-SHA512, lowercase hex in `X-Hook-Signature`, constant-time compare) and answer
//! 200 `{"result":"ok"}`. No parsing, no log, no limits, no metrics.
//!
//! Used by `scripts/bench.sh` as the reference for `fsync = false`. Run it by hand with:
//!
//! ```sh
//! WEBHOOK_SECRET=my-webhook-secret cargo run --release --example bare_limit -- 127.0.0.1:9000
//! ```
//!
//! The first line on stdout is `listening on ADDR` (the default, 127.0.0.1:0, picks a free port).

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use axum::Router;
use hmac::{Hmac, Mac};

#[path = "shared/mod.rs"]
mod shared;
use sha2::Sha512;
use std::io::Write;
use std::sync::Arc;

/// Answers 200 when `X-Hook-Signature` is the HMAC-SHA512 hex of `body`, else 401.
async fn receive(key: Arc<Hmac<Sha512>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let (status, text) = if shared::signed(&key, &headers, &body) {
        (StatusCode::OK, r#"{"result":"ok"}"#)
    } else {
        (StatusCode::UNAUTHORIZED, r#"{"result":"unauthorized"}"#)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], text)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_default();
    let key = Arc::new(Hmac::<Sha512>::new_from_slice(secret.as_bytes()).expect("any key"));
    let app = Router::new().fallback(axum::routing::post(move |h, b| receive(key.clone(), h, b)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    // Same as webhook-listener: no Nagle delay on small responses.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    std::io::stdout().flush()?;
    axum::serve(listener, app).await
}
