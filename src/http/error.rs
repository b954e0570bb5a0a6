//! The HTTP boundary's errors: one variant per way a hook request can fail, each with its status.
//!
//! Bodies are always `{"result": "..."}` with a short message. A signature failure says only
//! "invalid signature": the precise reason ([`ApiError::detail`]) goes to the diagnostics, logged
//! by the hook fallback, not to a possible forger.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::budget::{OverBudget, OverShare, Refused};
use crate::event_log::SinkError;
use crate::metrics::Outcome;
use crate::payload::PayloadError;
use crate::signature::SignatureError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no hook at this path")]
    NotFound,
    #[error("method not allowed: hooks accept POST")]
    MethodNotAllowed,
    #[error("client address not allowed")]
    Forbidden,
    /// Same answer to the client; the diagnostic says why no address could be checked.
    #[error("client address not allowed")]
    ForbiddenUnknownClient,
    #[error("too many requests in flight; retry shortly")]
    Overloaded,
    /// This client address already has its share of the request slots (`client_share_divisor`).
    #[error("too many requests in flight; retry shortly")]
    ClientBusy(OverShare),
    /// The body would not fit in `max_buffered_bytes` beside the bodies already held.
    #[error("too many request bodies held in memory; retry shortly")]
    OverBudget(#[from] OverBudget),
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within {secs} s")]
    Timeout { secs: u64 },
    /// After its first second the body arrived slower than `min_body_bytes_per_sec` on average.
    #[error("request body arriving too slowly")]
    TooSlow {
        received: usize,
        elapsed_ms: u64,
        min_rate: u64,
    },
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("invalid signature")]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("event could not be stored; retry later")]
    Unavailable(#[from] SinkError),
    /// A `required = true` sink did not confirm within its timeout; the event stays spooled and
    /// is delivered later, where the sender's retry de-duplicates.
    #[error("event not yet forwarded; retry later")]
    NotForwarded { sink: String, waited_secs: u64 },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Forbidden | ApiError::ForbiddenUnknownClient => StatusCode::FORBIDDEN,
            ApiError::Overloaded
            | ApiError::ClientBusy(_)
            | ApiError::OverBudget(_)
            | ApiError::Unavailable(_)
            | ApiError::NotForwarded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout { .. } | ApiError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyRead(_) => StatusCode::BAD_REQUEST,
            ApiError::Signature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Payload(PayloadError::Syntax(_)) => StatusCode::BAD_REQUEST,
            ApiError::Payload(PayloadError::Shape(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            ApiError::NotFound => Outcome::not_found,
            ApiError::MethodNotAllowed => Outcome::method_not_allowed,
            ApiError::Forbidden | ApiError::ForbiddenUnknownClient => Outcome::forbidden,
            ApiError::Overloaded | ApiError::ClientBusy(_) => Outcome::overloaded,
            ApiError::OverBudget(_) => Outcome::over_budget,
            ApiError::TooLarge { .. } => Outcome::too_large,
            ApiError::Timeout { .. } | ApiError::TooSlow { .. } => Outcome::timeout,
            ApiError::BodyRead(_) | ApiError::Payload(_) => Outcome::invalid_payload,
            ApiError::Signature(_) => Outcome::rejected_signature,
            ApiError::Unavailable(_) | ApiError::NotForwarded { .. } => Outcome::unavailable,
        }
    }

    /// The full reason, for diagnostics only (never sent to the client).
    pub fn detail(&self) -> String {
        match self {
            ApiError::Signature(e) => format!("invalid signature: {e}"),
            ApiError::Unavailable(e) => e.to_string(),
            ApiError::OverBudget(e) => e.to_string(),
            ApiError::ClientBusy(e) => e.to_string(),
            ApiError::TooSlow { .. } => self.reason(),
            ApiError::NotForwarded { sink, waited_secs } => {
                format!("required sink {sink} did not confirm within {waited_secs} s")
            }
            ApiError::ForbiddenUnknownClient => "client address unknown: unparseable forwarding \
                 header from trusted proxy"
                .into(),
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// The reason in the operator's words, for the admin page and API (never sent to the client):
    /// the one mapping from a refusal to what an operator reads.
    pub fn reason(&self) -> String {
        match self {
            ApiError::NotFound => "no hook at this path".into(),
            ApiError::MethodNotAllowed => "method not allowed (hooks accept POST)".into(),
            ApiError::Forbidden => "client not allowed (not in the hook's allow_ips)".into(),
            ApiError::ForbiddenUnknownClient => "client not allowed: its address is unknown \
                 (unparseable forwarding header from a trusted proxy)"
                .into(),
            ApiError::Overloaded => "too many requests in flight (max_concurrent_requests)".into(),
            ApiError::ClientBusy(e) => {
                format!("too many requests in flight from this address: {e}")
            }
            ApiError::OverBudget(e) => format!("bodies held in memory at the cap: {e}"),
            ApiError::NotForwarded { sink, waited_secs } => {
                format!("required sink {sink} did not confirm within {waited_secs} s")
            }
            ApiError::TooLarge { limit } => format!("body larger than the cap ({limit} bytes)"),
            ApiError::Timeout { secs } => format!("body not received within {secs} s"),
            ApiError::TooSlow {
                received,
                elapsed_ms,
                min_rate,
            } => format!(
                "body arriving too slowly: {received} bytes in {elapsed_ms} ms, under the \
                 {min_rate} bytes/s min_body_bytes_per_sec"
            ),
            ApiError::BodyRead(e) => format!("body could not be read: {e}"),
            ApiError::Signature(e) => match e {
                SignatureError::Missing(h) => format!("no signature header ({h})"),
                SignatureError::Malformed { header, reason } => {
                    format!("malformed signature header {header}: {reason}")
                }
                SignatureError::Mismatch => {
                    "signature mismatch (no configured secret matches)".into()
                }
                SignatureError::OutsideTolerance {
                    skew_secs,
                    tolerance_secs,
                } => format!(
                    "timestamp {} s {}, outside the {tolerance_secs} s window",
                    skew_secs.unsigned_abs(),
                    if *skew_secs >= 0 {
                        "in the past"
                    } else {
                        "in the future"
                    }
                ),
                SignatureError::Provider(r) => format!("refused by the provider's check: {r}"),
            },
            ApiError::Payload(PayloadError::Syntax(e)) => format!("not JSON: {e}"),
            ApiError::Payload(PayloadError::Shape(e)) => format!("does not fit the payload: {e}"),
            ApiError::Unavailable(e) => format!("event log unavailable: {e}"),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> ApiError {
        match r {
            Refused::Bytes(e) => ApiError::OverBudget(e),
            Refused::Requests(e) => ApiError::ClientBusy(e),
        }
    }
}

/// `{"result": message}` with `status`.
/// `message` can quote the sender's own values (a 422 names what it found); a sender's delivery
/// page shows the answer, so those cannot reorder or break how it reads there.
pub fn result(status: StatusCode, message: &str) -> Response {
    let message = crate::diagnostics::escape_hostile(message);
    (status, Json(serde_json::json!({ "result": message }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = result(self.status(), &self.to_string());
        let headers = resp.headers_mut();
        match &self {
            ApiError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            ApiError::Overloaded
            | ApiError::ClientBusy(_)
            | ApiError::Unavailable(_)
            | ApiError::NotForwarded { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The body was not read: the sender retries, on a new connection.
            ApiError::OverBudget(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            // The body was not (fully) read: the connection cannot carry another request.
            ApiError::TooLarge { .. }
            | ApiError::Timeout { .. }
            | ApiError::TooSlow { .. }
            | ApiError::BodyRead(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever a message quotes (a sender's value, through any error type's formatting), the
    /// answer carries no raw control, line separator or bidi control.
    #[tokio::test]
    async fn an_answer_carries_no_raw_hostile_character() {
        let resp = result(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown variant `\u{202e}nimda\u{2066}`\u{2028}\u{1b}[2J",
        );
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        let text = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            !text.chars().any(crate::diagnostics::is_hostile),
            "{text:?}"
        );
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        assert_eq!(
            v["result"],
            r"unknown variant `\u{202e}nimda\u{2066}`\u{2028}\u{1b}[2J"
        );
    }
}
