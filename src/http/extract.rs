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

use super::budget::BodyBuf;
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
        let permit = state
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded)?;

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

        // Reserved before a byte is read: a body that cannot be held is refused now, not after
        // the client has made us buffer most of it.
        let mut buf = state
            .budget
            .buffer(declared.map_or(0, |len| len as usize))?;
        let (parts, body) = req.into_parts();
        let body =
            match tokio::time::timeout(target.request_timeout, read_body(body, &mut buf, limit))
                .await
            {
                Err(_) => {
                    return Err(ApiError::Timeout {
                        secs: target.request_timeout.as_secs(),
                    })
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => buf.freeze(),
            };
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
            _permit: permit,
        })
    }
}

/// Copies the body's frames into `buf` as they arrive (each frame is dropped at once, so hyper's
/// read buffer is free again), refusing it past `limit` or past the memory budget.
async fn read_body(
    mut body: axum::body::Body,
    buf: &mut BodyBuf,
    limit: usize,
) -> Result<(), ApiError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(ApiError::TooLarge { limit });
        }
        buf.extend(&data)?;
    }
    Ok(())
}
