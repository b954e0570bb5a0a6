//! The sinks as the operator page shows them: each one's state, lag, counters and last error, and
//! for one accepted delivery what each sink has done with it. Read from the running
//! [`Forwarding`] when a page is rendered (a reload swaps its list), never on the request path.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::record::Summary;
use crate::forward::status::Done;
use crate::forward::{ActiveSink, Forwarding};

/// One sink's panel row and `/api/sinks` entry. Its `target` has no URL credentials and its
/// errors were scrubbed of them by the sink; the page escapes everything.
#[derive(Debug, Clone, Serialize)]
pub struct SinkView {
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    /// `connecting`, `connected`, `retrying` or `paused`.
    pub state: &'static str,
    pub connected: bool,
    pub required: bool,
    pub lag_events: u64,
    pub lag_seconds: f64,
    pub in_flight: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Passed over by the sink's `hooks`/`events` filter.
    pub filtered: u64,
    /// Spooled events that could not be read back.
    pub lost: u64,
    pub last_error: Option<String>,
    pub paused_reason: Option<String>,
}

impl SinkView {
    pub fn of(s: &ActiveSink) -> SinkView {
        let st = s.status.snapshot();
        SinkView {
            name: s.name.clone(),
            kind: s.kind,
            target: s.target.clone(),
            state: st.state.as_str(),
            connected: s.connected(),
            required: s.required_timeout.is_some(),
            lag_events: st.lag_events,
            lag_seconds: st.lag_seconds,
            in_flight: st.in_flight,
            delivered: st.delivered,
            retried: st.retried,
            dead_lettered: st.dead_lettered,
            filtered: st.filtered,
            lost: st.lost,
            last_error: st.last_error,
            paused_reason: st.paused_reason,
        }
    }
}

/// Every running sink, in name order; empty without forwarding.
pub fn views(forward: Option<&Forwarding>) -> Vec<SinkView> {
    forward.map_or_else(Vec::new, |f| {
        f.sinks().iter().map(|s| SinkView::of(s)).collect()
    })
}

/// What one sink has done with one accepted delivery.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveredTo {
    pub name: String,
    /// `delivered`, `dead_lettered`, `pending`, `not_for_this_sink`, `before_start` (spooled
    /// before this sink's runner started: an earlier run or none had it), `done_unknown`.
    pub state: &'static str,
    pub delivered: bool,
    /// When the sink's confirmed point passed the event (it confirms in order, so an event
    /// delivered while an older one was still being retried counts from when that one finished);
    /// `None` when not delivered or when the step is older than the status keeps.
    #[serde(serialize_with = "opt_rfc3339")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "opt_rfc3339")]
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

impl DeliveredTo {
    /// In words, for the page.
    pub fn words(&self) -> &'static str {
        match self.state {
            "delivered" => "delivered",
            "dead_lettered" => "dead-lettered (attempts exhausted or refused for good)",
            "pending" => "not yet delivered",
            "not_for_this_sink" => "not for this sink (its hooks/events filter)",
            "before_start" => "spooled before this sink's runner started; not known here",
            _ => "done (delivered or dead-lettered; no longer known which)",
        }
    }
}

/// For an accepted delivery that was spooled, each running sink's progress with it; `None`
/// otherwise (refused, a duplicate, or no sinks configured).
pub fn delivered_to(forward: Option<&Forwarding>, s: &Summary) -> Option<Vec<DeliveredTo>> {
    let (forward, seq) = (forward?, s.seq?);
    let rows = forward
        .sinks()
        .iter()
        .map(|sink| {
            let takes = sink.filter.takes(&s.hook, s.event.as_deref());
            let done = if takes {
                sink.status.done(seq)
            } else {
                Done::Pending
            };
            let (state, delivered_at, dead_lettered_at) = match done {
                _ if !takes => ("not_for_this_sink", None, None),
                Done::Pending => ("pending", None, None),
                Done::BeforeStart => ("before_start", None, None),
                Done::Delivered(at) => ("delivered", at, None),
                Done::DeadLettered(at) => ("dead_lettered", None, Some(at)),
                Done::Unknown => ("done_unknown", None, None),
            };
            DeliveredTo {
                name: sink.name.clone(),
                state,
                delivered: state == "delivered",
                delivered_at,
                dead_lettered_at,
            }
        })
        .collect();
    Some(rows)
}

fn opt_rfc3339<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        None => s.serialize_none(),
    }
}
