//! Reading a hook request: finds the hook, applies the address allowlist and the in-flight cap,
//! enforces the body cap (declared `Content-Length` first, then the bytes actually read) and the
//! memory budget ([`super::budget`]), and verifies the signature. The body leaves this module only inside [`Verified`], so the handler
//! that takes a [`HookRequest`] only ever sees a verified body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

use super::budget::{Admission, BodyBuf, Share};
use super::error::ApiError;
use super::observe::Seen;
use super::AppState;
use crate::client_ip::{client_ip, Client};
use crate::live_config::Hook;
use crate::signature::Verified;

/// What is known about a hook request before its body is read: the config snapshot it is served
/// under, its hook (if the path has one) and the client address (through trusted proxies).
/// Resolved once per request and shared by [`HookRequest::read`] and the fallback that observes
/// how the request ended.
pub struct HookTarget {
    pub hook: Option<Arc<Hook>>,
    pub client: Client,
    /// The body cap and timeout of the same config snapshot as `hook`.
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// The body's minimum average rate after its first second (0: unchecked), same snapshot.
    pub min_body_bytes_per_sec: u64,
    /// One client address's share of the body budget and the request slots, same snapshot.
    pub share: Share,
}

impl HookTarget {
    pub fn resolve(state: &AppState, req: &Request) -> HookTarget {
        // A guard, not a clone of the whole snapshot: one shared reference count less per request.
        let live = state.live.load();
        let hook = live.hooks.get(req.uri().path()).cloned();
        let client =
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(Client::Unknown, |c| {
                    client_ip(
                        c.0.ip(),
                        req.headers(),
                        &live.trusted_proxies,
                        live.client_ip_header,
                    )
                });
        HookTarget {
            hook,
            client,
            max_body_bytes: live.max_body_bytes,
            request_timeout: live.request_timeout,
            min_body_bytes_per_sec: live.min_body_bytes_per_sec,
            share: Share::new(
                state.budget.total(),
                state.max_in_flight,
                live.client_share_divisor,
                live.max_body_bytes,
            ),
        }
    }
}

/// Longer `Content-Type` values are not forwarded; real ones are a few dozen bytes.
const MAX_CONTENT_TYPE: usize = 256;

/// A request to a hook whose body passed every check up to and including the signature.
pub struct HookRequest {
    /// The hook of the config snapshot the request is served under.
    pub hook: Arc<Hook>,
    /// The body, and the delivery id the scheme's headers carried.
    pub verified: Verified,
    /// The client address, through trusted proxies.
    pub client: Client,
    /// One clock read for the log line and the signature's time check.
    pub received_at: DateTime<Utc>,
    /// The request's `Content-Type`, forwarded with the event (capped: it comes from outside).
    pub content_type: Option<String>,
    /// This request's slot in its client address's share; also what its event line reserves from.
    pub admission: Admission,
    /// Held until the response is built, so the in-flight cap counts the whole request.
    _permit: OwnedSemaphorePermit,
}

impl HookRequest {
    /// Runs every check for a request whose [`HookTarget`] is already resolved; hands the body,
    /// once read, to `seen` (for an observer) whatever the signature says.
    pub async fn read(
        req: Request,
        state: &AppState,
        target: &HookTarget,
        seen: Option<&mut Seen>,
    ) -> Result<Self, ApiError> {
        let received_at = Utc::now();
        let hook = target.hook.clone().ok_or(ApiError::NotFound)?;
        let client = target.client;
        // Before the method: a 405 where another path gets 404 would tell a client outside the
        // list which paths are hooks.
        if !hook.allow_ips.is_empty() {
            match client {
                Client::Known(ip) if hook.allow_ips.iter().any(|n| n.contains(&ip)) => {}
                Client::Known(_) => return Err(ApiError::Forbidden),
                Client::Unknown => return Err(ApiError::ForbiddenUnknownClient),
            }
        }
        if req.method() != Method::POST {
            return Err(ApiError::MethodNotAllowed);
        }
        let limit = target.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            // Refused before a single body byte is read.
            return Err(ApiError::TooLarge { limit });
        }
        // At most `limit` (checked above), so it fits a usize.
        let declared = declared.map(|len| len as usize);

        let permit = state
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded)?;
        // A declared body that cannot be held now is refused before it is read; nothing is
        // reserved for it, though: bytes are reserved as they arrive, so a client that declares
        // a large body and then stalls holds no memory, only its slot, until the pace cuts it.
        let admission = state.budget.admit(client, target.share, declared)?;
        let mut buf = admission.buffer(declared);
        let (parts, body) = req.into_parts();
        let pace = Pace {
            start: tokio::time::Instant::now(),
            timeout: target.request_timeout,
            min_rate: target.min_body_bytes_per_sec,
        };
        read_body(body, &mut buf, limit, pace).await?;
        let body = buf.freeze();
        if let Some(seen) = seen {
            seen.body = Some(body.clone());
        }

        let verified = hook.verifier.verify_request(
            &parts.headers,
            parts.uri.query(),
            body,
            received_at.timestamp_millis(),
        )?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_CONTENT_TYPE)
            .map(str::to_owned);
        Ok(HookRequest {
            hook,
            verified,
            client,
            received_at,
            content_type,
            admission,
            _permit: permit,
        })
    }
}

/// How fast a body must arrive: whole within `timeout`, and, after [`PACE_GRACE`], at
/// `min_rate` bytes a second on average since `start` (its headers were read).
#[derive(Debug, Clone, Copy)]
struct Pace {
    start: tokio::time::Instant,
    timeout: Duration,
    min_rate: u64,
}

/// The first second of a body is not paced: a sender may wait for `100 Continue` or a slow
/// start, and a single-packet body needs no check at all.
const PACE_GRACE: Duration = Duration::from_secs(1);

impl Pace {
    fn end(&self) -> tokio::time::Instant {
        self.start + self.timeout
    }

    /// When `received` bytes stop being enough: the time at which they fall below the minimum
    /// average, never before the grace period, never after the timeout.
    fn deadline(&self, received: usize) -> tokio::time::Instant {
        if self.min_rate == 0 {
            return self.end();
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        (self.start + earned.max(PACE_GRACE)).min(self.end())
    }
}

/// Copies the body's frames into `buf` as they arrive (each frame is dropped at once, so hyper's
/// read buffer is free again), refusing it past `limit`, past the memory budget, or once it falls
/// behind `pace` (a trickle is cut after about a second, not at the request timeout).
async fn read_body(
    mut body: axum::body::Body,
    buf: &mut BodyBuf,
    limit: usize,
    pace: Pace,
) -> Result<(), ApiError> {
    // One timer for the whole body, moved forward as bytes earn more time.
    let mut deadline = pace.deadline(0);
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        let frame = tokio::select! {
            // The body first: bytes that are already there are taken before the timer is asked.
            biased;
            frame = body.frame() => frame,
            () = &mut sleep => {
                return Err(if deadline >= pace.end() {
                    ApiError::Timeout { secs: pace.timeout.as_secs() }
                } else {
                    ApiError::TooSlow {
                        received: buf.len(),
                        elapsed_ms: pace.start.elapsed().as_millis() as u64,
                        min_rate: pace.min_rate,
                    }
                });
            }
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        buf.extend(&data)?;
        let next = pace.deadline(buf.len());
        if next != deadline {
            deadline = next;
            sleep.as_mut().reset(deadline);
        }
    }
}
