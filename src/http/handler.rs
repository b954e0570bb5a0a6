//! What happens to a verified request: the Slack handshake is answered apart; any other body is
//! parsed per the hook's payload kind, checked against recent delivery ids, appended to the event
//! log, and accepted only once it is durable.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::ApiError;
use super::extract::HookRequest;
use super::observe::Seen;
use super::AppState;
use crate::dedupe::Claim;
use crate::event_log::{EventRecord, Payload};
use crate::live_config::Hook;
use crate::metrics::Outcome;
use crate::payload::{self, PayloadKind};
use crate::signature::{self, DeliveryIdSource, EventSource, Scheme, Verified};

/// How a hook request succeeded.
#[derive(Debug)]
pub enum Accepted {
    /// Appended to the event log, durably.
    Event,
    /// A delivery id already accepted within the dedupe window: not logged again.
    Duplicate,
    /// Slack's `url_verification` handshake, answered with its challenge and not logged.
    Challenge(String),
}

impl Accepted {
    pub fn outcome(&self) -> Outcome {
        match self {
            Accepted::Event | Accepted::Challenge(_) => Outcome::accepted,
            Accepted::Duplicate => Outcome::duplicate,
        }
    }

    /// What the operator's page says beyond the outcome.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Accepted::Event => None,
            Accepted::Duplicate => Some("duplicate of an accepted delivery (not logged again)"),
            Accepted::Challenge(_) => Some("Slack url_verification handshake, answered"),
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        // Constant bodies: building a serde_json::Value per request is measurable on this path.
        let body: &'static [u8] = match self {
            Accepted::Challenge(challenge) => {
                return (
                    StatusCode::OK,
                    Json(serde_json::json!({ "result": "ok", "challenge": challenge })),
                )
                    .into_response()
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

    let netbox;
    let payload = match hook.payload {
        PayloadKind::Netbox => {
            netbox = payload::netbox(body)?;
            if let Some(s) = seen.as_deref_mut() {
                s.event_id = netbox.request_id().map(|id| id.to_string());
            }
            Payload::Netbox(&netbox, body)
        }
        PayloadKind::Json => {
            payload::json(body)?;
            Payload::Json(body)
        }
        PayloadKind::Raw => Payload::Raw(body),
    };
    if let Some(challenge) = slack_challenge(hook, body) {
        return Ok(Accepted::Challenge(challenge));
    }

    let delivery_id = delivery_id(hook, &req.verified);
    let event = event_type(hook, &req.verified, &payload);
    if let Some(s) = seen {
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

    let mut line = Vec::with_capacity(body.len() + 320);
    EventRecord {
        received_at: req.received_at,
        hook: &hook.path,
        provider: hook.verifier.scheme().provider().name(),
        delivery_id: delivery_id.as_deref(),
        event: event.as_deref(),
        client: req.client,
        payload,
    }
    .write(state.log_format, &mut line);
    state.log.append(line).await?;
    if let Some(guard) = claim {
        guard.commit();
    }
    Ok(Accepted::Event)
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
            return Some(Cow::Owned(match ev.model() {
                Some(model) => format!("{model}.{}", ev.event),
                None => ev.event.to_string(),
            }))
        }
        Payload::Json(body) => Some(*body),
        Payload::Raw(_) => None,
    };
    let capped = |s: String| Cow::Owned(signature::cap_label(&s).to_owned());
    match hook.verifier.scheme().event_source() {
        EventSource::None => None,
        EventSource::Header { action, .. } => {
            let name = verified.event_header()?;
            let action = action
                .zip(json_body)
                .and_then(|(field, body)| payload::top_level_string(body, field));
            Some(match action {
                Some(a) => capped(format!("{name}.{a}")),
                None => Cow::Borrowed(name),
            })
        }
        EventSource::Body(paths) => {
            let body = json_body?;
            paths
                .iter()
                .find_map(|p| payload::string_at(body, p))
                .map(capped)
        }
    }
}

/// Slack checks a Request URL by sending a signed `url_verification` event and expecting its
/// `challenge` back; it is a handshake, not an event. `None` for every other body (an event, or a
/// handshake without a challenge, which goes the generic way as before).
fn slack_challenge(hook: &Hook, body: &[u8]) -> Option<String> {
    let is_handshake = matches!(hook.verifier.scheme(), Scheme::Slack)
        && hook.payload == PayloadKind::Json
        && payload::top_level_string(body, "type").as_deref() == Some("url_verification");
    is_handshake
        .then(|| payload::top_level_string(body, "challenge"))
        .flatten()
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
