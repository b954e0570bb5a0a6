//! The operator's listener (`[admin]`): every delivery, accepted or refused and why, live; its JSON
//! API; and `/metrics`. A listener of its own, never the public one: loopback by default, and a
//! bearer token required for any other address.
//!
//! - [`recorder`]: the bounded ring the request path feeds (through [`crate::http::observe`]) and
//!   the broadcast the live page reads;
//! - [`record`]: one delivery as kept, credentials masked, body capped;
//! - [`routes`]: the router, the token check, the SSE stream;
//! - [`host`]: which `Host` it answers (loopback, its own address, `allowed_hosts`), against DNS
//!   rebinding;
//! - [`sinks`]: each sink's state for the page, and what each did with one delivery;
//! - [`pages`]: the server-rendered HTML.

mod host;
mod pages;
pub mod record;
pub mod recorder;
mod routes;
pub mod sinks;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::{defaults, AdminConfig};
use crate::http::observe::Observer;
use crate::http::AppState;
use crate::metrics::Outcome;
pub use recorder::Recorder;

/// The outcomes a hook request can end with, in the order the page lists them (a path without a
/// hook is not a delivery and is not recorded).
pub const OUTCOMES: [Outcome; 10] = [
    Outcome::accepted,
    Outcome::duplicate,
    Outcome::rejected_signature,
    Outcome::too_large,
    Outcome::invalid_payload,
    Outcome::forbidden,
    Outcome::unavailable,
    Outcome::overloaded,
    Outcome::timeout,
    Outcome::method_not_allowed,
];

/// A bound admin listener and the recorder it shows.
pub struct Admin {
    listener: TcpListener,
    recorder: Arc<Recorder>,
    config: AdminConfig,
}

/// Keeps the admin listener serving; dropping it stops it (open live streams included).
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Admin {
    /// Binds `[admin] listen`; `Ok(None)` when it is off, or when the *default* address is taken
    /// (a second instance on one host, a test run): the intake must not fail for the page, so that
    /// is a warning. An address set in the file that cannot be bound fails start-up.
    pub async fn bind(config: &AdminConfig) -> Result<Option<Admin>, (SocketAddr, io::Error)> {
        let Some(addr) = config.listen else {
            return Ok(None);
        };
        match TcpListener::bind(addr).await {
            Ok(listener) => Ok(Some(Admin {
                listener,
                recorder: Arc::new(Recorder::new(config.recent)),
                config: config.clone(),
            })),
            Err(e) if defaults::ADMIN_LISTEN.parse() == Ok(addr) => {
                tracing::warn!(admin = %addr, error = %e,
                    "admin listener not started: its default address is taken; serving without the operator page");
                Ok(None)
            }
            Err(e) => Err((addr, e)),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the public router feeds.
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.recorder.clone()
    }

    /// Serves the page for `state` (whose public listener is `public`) until the guard drops.
    pub fn spawn(self, state: Arc<AppState>, public: SocketAddr) -> Running {
        let router = routes::router(routes::AdminState::new(
            state,
            self.recorder,
            &self.config,
            public,
        ));
        let listener = self.listener;
        Running(tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            // A stalled client must not hold a connection: the same bound as the public side.
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(true);
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let router = router.clone();
                // For the Host check: the address the client dialled is a name it may use.
                let local = tcp.local_addr().ok().map(routes::LocalAddr);
                let svc =
                    hyper::service::service_fn(move |mut req: axum::extract::Request<Incoming>| {
                        if let Some(l) = local {
                            req.extensions_mut().insert(l);
                        }
                        router.clone().oneshot(req)
                    });
                let conn = http.serve_connection(TokioIo::new(tcp), svc);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        }))
    }
}

/// The page's script and style: compiled in, served from this listener only, pinned by their
/// SHA-256 in the `integrity` attribute.
mod assets {
    use std::sync::OnceLock;

    use base64::Engine;
    use sha2::{Digest, Sha256};

    pub const SCRIPT: &str = include_str!("assets/app.js");
    pub const STYLE: &str = include_str!("assets/style.css");
    pub const SCRIPT_PATH: &str = "/assets/app.js";
    pub const STYLE_PATH: &str = "/assets/style.css";

    fn integrity(text: &str) -> String {
        let digest = Sha256::digest(text.as_bytes());
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    pub fn script_integrity() -> &'static str {
        static H: OnceLock<String> = OnceLock::new();
        H.get_or_init(|| integrity(SCRIPT))
    }

    pub fn style_integrity() -> &'static str {
        static H: OnceLock<String> = OnceLock::new();
        H.get_or_init(|| integrity(STYLE))
    }
}
