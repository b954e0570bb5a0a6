//! What happens to a verified request: a handshake (a sender checking the endpoint: Slack, Twitch,
//! Zoom, Discord) is answered apart, in [`handshake`]; any other body is parsed per the hook's
//! payload kind, checked against recent delivery ids, appended to the event log, and accepted only
//! once it is durable.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::HookRequest;
use super::observe::Seen;
use super::AppState;
use crate::dedupe::Claim;
use crate::diagnostics::is_hostile;
use crate::event_log::{EventRecord, Payload};
use crate::forward::{Event, Forwarding};
use crate::live_config::Hook;
use crate::metrics::Outcome;
use crate::payload::{self, PayloadKind};
use crate::signature::{self, DeliveryIdSource, EventSource, Handshake, Scheme, Verified};

/// Room for a line's fields besides the body (time, ids, hook, event, client, ...): most lines
/// then need one allocation.
const LINE_FIELDS_BYTES: usize = 320;

/// How a hook request succeeded.
#[derive(Debug)]
pub enum Accepted {
    /// Appended to the event log, durably.
    Event,
    /// A delivery id already accepted within the dedupe window: not logged again.
    Duplicate,
    /// A sender checking the endpoint, answered as it expects and not logged.
    Handshake(Handshake),
}

impl Accepted {
    pub fn outcome(&self) -> Outcome {
        match self {
            Accepted::Event | Accepted::Handshake(_) => Outcome::accepted,
            Accepted::Duplicate => Outcome::duplicate,
        }
    }

    /// The answer's status code, as [`IntoResponse`] sends it.
    pub fn status(&self) -> u16 {
        match self {
            Accepted::Handshake(Handshake::NoContent) => 204,
            _ => 200,
        }
    }

    /// What the operator's page says beyond the outcome.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Accepted::Event => None,
            Accepted::Duplicate => Some("duplicate of an accepted delivery (not logged again)"),
            Accepted::Handshake(_) => Some("a sender checking the endpoint (handshake), answered"),
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        // Constant bodies: building a serde_json::Value per request is measurable on this path.
        let body: &'static [u8] = match self {
            Accepted::Handshake(Handshake::PlainText(text)) => {
                let plain = HeaderValue::from_static("text/plain");
                return (StatusCode::OK, [(header::CONTENT_TYPE, plain)], text).into_response();
            }
            Accepted::Handshake(Handshake::Json(text)) => {
                let json = HeaderValue::from_static("application/json");
                return (StatusCode::OK, [(header::CONTENT_TYPE, json)], text).into_response();
            }
            Accepted::Handshake(Handshake::NoContent) => {
                return StatusCode::NO_CONTENT.into_response()
            }
            Accepted::Duplicate => br#"{"result":"ok","duplicate":true}"#,
            Accepted::Event => br#"{"result":"ok"}"#,
        };
        let json = HeaderValue::from_static("application/json");
        (StatusCode::OK, [(header::CONTENT_TYPE, json)], body).into_response()
    }
}

/// The hook endpoint, after [`HookRequest::read`] checked everything up to the signature. Tells
/// `seen` (for an observer) the ids and event type it finds.
pub async fn receive(
    state: &AppState,
    req: HookRequest,
    mut seen: Option<&mut Seen>,
) -> Result<Accepted, ApiError> {
    let hook = &req.hook;
    let body = req.verified.body();
    if let Some(answer) = handshake(hook, &req.verified) {
        return Ok(Accepted::Handshake(answer));
    }

    let netbox;
    let payload = match hook.payload {
        PayloadKind::Netbox => {
            netbox = payload::netbox(body)?;
            Payload::Netbox(&netbox, body)
        }
        PayloadKind::Json => {
            payload::json(body)?;
            Payload::Json(body)
        }
        PayloadKind::Raw => Payload::Raw(body),
    };

    let delivery_id = delivery_id(hook, &req.verified);
    let event = event_type(hook, &req.verified, &payload);
    if let Some(s) = seen.as_deref_mut() {
        s.delivery_id = delivery_id.as_deref().map(str::to_owned);
        s.event = event.as_deref().map(str::to_owned);
    }
    let claim = match &delivery_id {
        Some(id) => match state.dedupe.claim(&hook.path, id).await {
            Claim::Duplicate => return Ok(Accepted::Duplicate),
            Claim::New(guard) => Some(guard),
        },
        None => None,
    };

    let event_id = uuid::Uuid::now_v7();
    let provider = hook.verifier.scheme().provider().name();
    if matches!(hook.verifier.scheme(), Scheme::Twitch) && event.as_deref() == Some("revocation") {
        tracing::warn!(
            hook = &*hook.path,
            "twitch revoked an EventSub subscription (logged as event=revocation)"
        );
    }
    // The line is a second copy of the body, up to 6x its size where characters need escapes (a
    // DEL is `\u007f`): it is reserved from the same budget and client share as the body, first
    // for the usual size, then for whatever writing it took beyond that. Nothing awaits between
    // the write and the second reservation, so at most one line per runtime worker is ever
    // outside the budget, and only for that moment; a line that does not fit is refused (503).
    let usual = body.len() + LINE_FIELDS_BYTES;
    let mut line_held = req.admission.reserve(usual)?;
    let mut line = Vec::with_capacity(usual);
    EventRecord {
        received_at: req.received_at,
        event_id,
        hook: &hook.path,
        provider,
        delivery_id: delivery_id.as_deref(),
        event: event.as_deref(),
        client: req.client,
        content_type: req.content_type.as_deref(),
        payload,
    }
    .write(state.log_format, &mut line);
    if line.capacity() > line_held.len() {
        if line.capacity() > 2 * usual {
            // Grown by doubling (escapes): up to twice what it holds, given back before it is
            // counted. A line that only outgrew the usual size is not worth the copy.
            line.shrink_to_fit();
        }
        line_held.merge(req.admission.reserve(line.capacity() - line_held.len())?);
    }
    let event = state.forward.as_ref().map(|_| Event {
        id: event_id,
        hook: hook.path.to_string(),
        provider: provider.to_owned(),
        event_type: event.as_deref().map(str::to_owned),
        delivery_id: delivery_id.as_deref().map(str::to_owned),
        received_at: req.received_at,
        content_type: req.content_type.clone(),
        client: Some(req.client.to_string()),
        body: body.clone(),
    });
    let seq = state.log.append(line, event).await?;
    // The writer has the line written (and dropped) once `append` answers.
    drop(line_held);
    if let Some(s) = seen {
        // Once the line is written: the id the page shows is the one in the log and the sinks.
        s.event_id = Some(event_id);
        s.seq = seq;
    }
    if let (Some(seq), Some(forward)) = (seq, &state.forward) {
        // The claim is committed only once every required sink has the event, so a duplicate
        // that arrives meanwhile waits for this outcome (and a 503 here lets the retry through).
        required_sinks_confirm(forward, seq).await?;
    }
    if let Some(guard) = claim {
        guard.commit();
    }
    Ok(Accepted::Event)
}

/// Waits, each within its own timeout, until every `required = true` sink is done with `seq`.
async fn required_sinks_confirm(forward: &Forwarding, seq: u64) -> Result<(), ApiError> {
    let sinks = forward.sinks();
    let waits = sinks.iter().filter_map(|s| {
        let timeout = s.required_timeout?;
        Some(async move {
            match tokio::time::timeout(timeout, s.status.wait_confirmed(seq)).await {
                Ok(Ok(())) => Ok(()),
                _ => Err(ApiError::NotForwarded {
                    sink: s.name.clone(),
                    waited_secs: timeout.as_secs(),
                }),
            }
        })
    });
    futures_util::future::try_join_all(waits).await.map(|_| ())
}

/// The event type, one value per event for the log and every sink: the scheme's header (GitHub
/// adds the body's `action`: `pull_request.opened`), or its body field (`type`), or for NetBox
/// `<model>.<event>` (`dcim.site.created`). Body fields are read only from a JSON payload.
pub fn event_type<'a>(
    hook: &Hook,
    verified: &'a Verified,
    payload: &Payload<'_>,
) -> Option<Cow<'a, str>> {
    let json_body = match payload {
        Payload::Netbox(ev, _) => {
            // Each part capped before they are joined: a 1 MB `event` is never copied whole.
            let event = signature::cap_label(&ev.event);
            return match ev.model() {
                Some(model) => body_label(format!("{}.{event}", signature::cap_label(model))),
                None => body_label(event.to_owned()),
            };
        }
        Payload::Json(body) => Some(*body),
        Payload::Raw(_) => None,
    };
    match hook.verifier.scheme().event_source() {
        EventSource::None => None,
        EventSource::Verifier => verified.event_type().map(Cow::Borrowed),
        EventSource::Header { action, .. } => {
            let name = verified.event_header()?;
            let action = action
                .zip(json_body)
                .and_then(|(field, body)| payload::top_level_string(body, field));
            Some(
                action
                    .and_then(|a| body_label(format!("{name}.{a}")))
                    .unwrap_or(Cow::Borrowed(name)),
            )
        }
        EventSource::Body(paths) => {
            let body = json_body?;
            paths
                .iter()
                .find_map(|p| payload::string_at(body, p))
                .and_then(body_label)
        }
    }
}

/// An event type read from the body, held to the rule a header's already meets: capped at
/// [`signature::MAX_EVENT_LEN`], and dropped when it holds a control character, a line separator
/// or a bidi control ([`is_hostile`]), since it becomes an exec argument and environment
/// variable, a relay header and an admin label.
fn body_label<'a>(mut s: String) -> Option<Cow<'a, str>> {
    let capped = signature::cap_label(&s).len();
    s.truncate(capped);
    if s.capacity() > 2 * signature::MAX_EVENT_LEN {
        // A huge value read from the body: keep 256 bytes of it, not its allocation.
        s.shrink_to_fit();
    }
    (!s.is_empty() && !s.chars().any(is_hostile)).then_some(Cow::Owned(s))
}

/// Every handshake, answered here and nowhere else. The provider verifiers recognise theirs
/// (Twitch `webhook_callback_verification`, Zoom `endpoint.url_validation`, Discord PINGs), signed
/// like any message; Slack checks a Request URL with a signed `url_verification` event and expects
/// its `challenge` back. `None` for every other body (an event, or a Slack handshake without a
/// challenge, which goes the generic way as before).
fn handshake(hook: &Hook, verified: &Verified) -> Option<Handshake> {
    if let Some(h) = verified.handshake() {
        return Some(h.clone());
    }
    let body = verified.body();
    let is_slack = matches!(hook.verifier.scheme(), Scheme::Slack)
        && hook.payload == PayloadKind::Json
        && payload::top_level_string(body, "type").as_deref() == Some("url_verification");
    let challenge = is_slack
        .then(|| payload::top_level_string(body, "challenge"))
        .flatten()?;
    Some(Handshake::Json(
        serde_json::json!({ "result": "ok", "challenge": challenge }).to_string(),
    ))
}

/// The key for de-duplication: the scheme's delivery-id header when it sent one, else (Stripe,
/// Slack) a top-level field of a JSON body, capped the same way; `None` when the sender gives no id.
fn delivery_id<'a>(hook: &Hook, verified: &'a Verified) -> Option<Cow<'a, str>> {
    if let Some(id) = verified.delivery_id() {
        return Some(Cow::Borrowed(id));
    }
    match hook.verifier.scheme().delivery_id_source() {
        DeliveryIdSource::BodyField(field) if hook.payload != PayloadKind::Raw => {
            payload::top_level_string(verified.body(), field)
                .map(|id| Cow::Owned(signature::delivery_key(&id)))
        }
        _ => None,
    }
}
