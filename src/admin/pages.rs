//! The operator's HTML, server-rendered with maud: every value goes through maud's escaping
//! (bodies and headers are attacker-written), no inline script or style (the CSP forbids both), and
//! everything works without JavaScript; `/assets/app.js` only adds the live rows.

use maud::{html, Markup, DOCTYPE};

use super::record::{signature_headers, Record, Summary};
use super::recorder::HookStats;
use super::sinks::{DeliveredTo, SinkView};
use super::{assets, OUTCOMES};
use crate::live_config::Hook;
use crate::signature::Scheme;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · webhook-listener" }
                link rel="stylesheet" href=(assets::STYLE_PATH) integrity=(assets::style_integrity());
            }
            body {
                header {
                    a.brand href="/" { "webhook-listener" }
                    span.muted { " operator page (read-only)" }
                }
                main { (body) }
                script src=(assets::SCRIPT_PATH) integrity=(assets::script_integrity()) defer {}
            }
        }
    }
}

/// One hook's panel row, with what to paste into the sender.
pub struct HookView<'a> {
    pub hook: &'a Hook,
    pub stats: HookStats,
    /// Over the kept records.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// `http://host:port`, as far as the listener knows it.
    pub public_base: &'a str,
}

/// The selected filters, as given (already checked).
#[derive(Default)]
pub struct Filters<'a> {
    pub hook: Option<&'a str>,
    pub outcome: Option<&'a str>,
}

/// The list page. `sinks` is `None` when no `[[sinks]]` are configured.
pub fn index(
    rows: &[std::sync::Arc<Record>],
    hooks: &[HookView<'_>],
    sinks: Option<&[SinkView]>,
    filters: &Filters<'_>,
    last_id: u64,
    recent: usize,
) -> Markup {
    let mut stream = format!("/api/stream?after={last_id}");
    for (key, value) in [("hook", filters.hook), ("outcome", filters.outcome)] {
        if let Some(v) = value {
            stream.push_str(&format!("&{key}={}", query_escape(v)));
        }
    }
    layout(
        "deliveries",
        html! {
            section {
                h2 { "Hooks" }
                (hooks_panel(hooks))
            }
            (sinks_panel(sinks))
            section {
                h2 { "Deliveries" }
                p.muted { "The last " (recent) " kept, newest first, accepted and refused alike. Reload for the latest; with JavaScript new ones appear as they arrive." }
                form.filters method="get" action="/" {
                    label { "hook "
                        select name="hook" {
                            option value="" { "all" }
                            @for h in hooks {
                                option value=(h.hook.path) selected[filters.hook == Some(&*h.hook.path)] { (h.hook.path) }
                            }
                        }
                    }
                    label { " outcome "
                        select name="outcome" {
                            option value="" { "all" }
                            @for o in OUTCOMES {
                                option value=(o.as_str()) selected[filters.outcome == Some(o.as_str())] { (o.as_str()) }
                            }
                        }
                    }
                    " "
                    button type="submit" { "filter" }
                }
                p #live .muted role="status" {}
                div.scroll {
                    table.deliveries {
                        thead { tr {
                            th { "#" } th { "time (UTC)" } th { "hook" } th { "provider" } th { "client" }
                            th { "outcome" } th { "reason" } th { "size" } th { "event" }
                            th { "delivery id" } th { "event id" } th { "ms" }
                        } }
                        tbody #rows data-stream=(stream) {
                            @for r in rows { (row(&r.summary)) }
                        }
                    }
                }
                @if rows.is_empty() { p #empty .muted { "No deliveries yet." } }
            }
        },
    )
}

/// One row; `app.js` builds the same cells from the stream's JSON.
fn row(s: &Summary) -> Markup {
    html! {
        tr data-outcome=(s.outcome) {
            td { a href={ "/deliveries/" (s.id) } { (s.id) } }
            td { (s.received_at.format("%Y-%m-%d %H:%M:%S%.3f")) }
            td { (s.hook) }
            td { (s.provider.unwrap_or("")) }
            td { (s.client) }
            td { span class={ "outcome " (s.outcome) } { (s.outcome) } }
            td { (s.reason.as_deref().unwrap_or("")) }
            td { (s.size.map(|n| n.to_string()).unwrap_or_default()) }
            td { (s.event.as_deref().unwrap_or("")) }
            td { (s.delivery_id.as_deref().unwrap_or("")) }
            td { @if let Some(id) = s.event_id { (id) } }
            td { (format!("{:.1}", s.latency_ms)) }
        }
    }
}

fn hooks_panel(hooks: &[HookView<'_>]) -> Markup {
    html! {
        div.scroll { table.hooks {
            thead { tr {
                th { "hook" } th { "provider" } th { "counts since start" } th { "last accepted" }
                th { "p50 / p99 ms (kept)" } th { "paste into the sender" }
            } }
            tbody {
                @for h in hooks {
                    @let scheme = h.hook.verifier.scheme();
                    tr {
                        td { (h.hook.path) }
                        td { (scheme.provider().name()) }
                        td {
                            @if h.stats.counts.is_empty() { span.muted { "none yet" } }
                            @for (outcome, n) in &h.stats.counts {
                                span class={ "outcome " (outcome) } { (outcome) " " (n) } " "
                            }
                        }
                        td { (h.stats.last_accepted.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "never".into())) }
                        td { (ms(h.p50_ms)) " / " (ms(h.p99_ms)) }
                        td.paste {
                            div { "URL " code { (h.public_base) (h.hook.path) } }
                            div { "header " code { (signature_headers(scheme).join(", ")) } }
                            div { "test " code { (sign_command(scheme)) } }
                        }
                    }
                }
            }
        } }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

/// Each sink's state, lag, counters and last error, as `/api/sinks` has them; read when the page
/// is rendered (a reload of the page shows the latest).
fn sinks_panel(sinks: Option<&[SinkView]>) -> Markup {
    html! {
        section.sinks {
            h2 { "Sinks" }
            @match sinks {
                None => p.muted { "No sinks configured: accepted events go to the event log only." },
                Some([]) => p.muted { "No sink is running (a reload may have left them out; see the diagnostics)." },
                Some(sinks) => div.scroll { table.sinks #sinks {
                    thead { tr {
                        th { "sink" } th { "state" } th { "lag" } th { "in flight" }
                        th { "delivered" } th { "retried" } th { "dead letters" } th { "filtered" }
                        th { "last error" }
                    } }
                    tbody {
                        @for s in sinks {
                            tr data-sink=(s.name) {
                                td {
                                    strong { (s.name) } " " span.muted { (s.kind) }
                                    @if s.required { " " span.muted { "required" } }
                                    div.muted { code { (s.target) } }
                                }
                                td {
                                    span class={ "state " (s.state) } { (s.state) }
                                    // The client's own view, which can differ from the last delivery's.
                                    @if !s.connected { " " span.muted { "(no connection)" } }
                                    @if let Some(why) = &s.paused_reason { div.error { "paused: " (why) } }
                                }
                                td { (s.lag_events) " events, " (format!("{:.1}", s.lag_seconds)) " s" }
                                td { (s.in_flight) }
                                td { (s.delivered) }
                                td { (s.retried) }
                                td { (s.dead_lettered) }
                                td { (s.filtered) @if s.lost > 0 { span.error { " (" (s.lost) " unreadable)" } } }
                                td.error { (s.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                } },
            }
        }
    }
}

/// The `webhook-listener sign` line that prints the headers a sender of `scheme` would send.
fn sign_command(scheme: &Scheme) -> String {
    let mut cmd = format!(
        "webhook-listener sign --provider {} --secret env:HOOK_SECRET",
        scheme.provider().name()
    );
    if let Scheme::Hmac {
        header,
        algorithm,
        encoding,
        prefix,
        ..
    } = scheme
    {
        let (a, e): (&str, &str) = ((*algorithm).into(), (*encoding).into());
        cmd.push_str(&format!(
            " --header {header} --algorithm {a} --encoding {e}"
        ));
        if !prefix.is_empty() {
            cmd.push_str(&format!(" --prefix '{}'", prefix.replace('\'', r"'\''")));
        }
    }
    cmd.push_str(" body.json");
    cmd
}

/// One delivery; `sinks` for an accepted one that was spooled (see [`super::sinks::delivered_to`]).
pub fn detail(r: &Record, pretty_body: Option<&str>, sinks: Option<&[DeliveredTo]>) -> Markup {
    let s = &r.summary;
    layout(
        &format!("delivery {}", s.id),
        html! {
            p { a href="/" { "← all deliveries" } }
            h2 { "Delivery " (s.id) " " span class={ "outcome " (s.outcome) } { (s.outcome) } }
            dl.summary {
                dt { "received (UTC)" } dd { (s.received_at.format("%Y-%m-%d %H:%M:%S%.3f")) }
                dt { "request" } dd { (r.method) " " (s.hook) " → " (s.status) }
                dt { "provider" } dd { (s.provider.unwrap_or("")) }
                dt { "client" } dd { (s.client) }
                dt { "reason" } dd #reason { (s.reason.as_deref().unwrap_or("accepted")) }
                dt { "size" } dd { (s.size.map_or_else(|| "not read".to_string(), |n| format!("{n} bytes"))) }
                dt { "event" } dd { (s.event.as_deref().unwrap_or("")) }
                dt { "delivery id" } dd { (s.delivery_id.as_deref().unwrap_or("")) }
                dt { "event id" } dd { @if let Some(id) = s.event_id { (id) } }
                dt { "latency" } dd { (format!("{:.2} ms", s.latency_ms)) }
            }
            @if let Some(e) = &r.expected {
                h3 { "What the hook expected" }
                dl.summary {
                    dt { "scheme" } dd { (e.provider) }
                    dt { "headers" } dd { code { (e.headers.join(", ")) } }
                    @if let Some(t) = e.tolerance_secs { dt { "timestamp tolerance" } dd { (t) " s" } }
                    @if !e.allow_ips.is_empty() { dt { "allow_ips" } dd { (e.allow_ips.join(", ")) } }
                }
            }
            @if let Some(sinks) = sinks {
                h3 { "Sinks" }
                @if sinks.is_empty() { p.muted { "No sink is running." } }
                @else {
                    div.scroll { table.sinks #delivered {
                        thead { tr { th { "sink" } th { "this event" } th { "when (UTC)" } } }
                        tbody {
                            @for d in sinks {
                                tr data-state=(d.state) {
                                    td { (d.name) }
                                    td { (d.words()) }
                                    td { (d.delivered_at.or(d.dead_lettered_at).map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()).unwrap_or_default()) }
                                }
                            }
                        }
                    } }
                }
            } @else if s.outcome == "accepted" {
                h3 { "Sinks" }
                p.muted { "No sinks configured: the event went to the event log only." }
            }
            h3 { "Headers" }
            p.muted { "Signature, token and cookie values are masked: only their scheme and length are kept." }
            div.scroll { table.headers #headers {
                @for (name, value) in r.headers.iter() { tr { th { (name) } td { (value) } } }
            } }
            h3 { "Body" }
            @match (pretty_body, &r.body) {
                (_, None) => p.muted { "Not read (refused before the body)." },
                (Some(p), _) => pre #body { (p) },
                (None, Some(b)) => pre #body { (b.text()) },
            }
            @if r.body_truncated { p.muted { "Only the first 64 KiB are kept." } }
        },
    )
}

pub fn login(wrong: bool) -> Markup {
    layout(
        "sign in",
        html! {
            h2 { "Sign in" }
            p.muted { "This page needs the admin token (scripts send it as Authorization: Bearer)." }
            @if wrong { p.error role="alert" { "Wrong token." } }
            form method="post" action="/login" {
                label { "token " input type="password" name="token" autocomplete="current-password" required; }
                " "
                button type="submit" { "sign in" }
            }
        },
    )
}

/// Token checks are paused after too many wrong ones (the 429's page).
pub fn login_paused(secs: u64) -> Markup {
    layout(
        "sign in",
        html! {
            h2 { "Sign in" }
            p.error role="alert" {
                "Too many wrong tokens: tokens are not checked for " (secs) " s. "
                "A browser already signed in keeps working."
            }
            p { a href="/login" { "try again" } }
        },
    )
}

pub fn not_found(what: &str) -> Markup {
    layout(
        "not found",
        html! { h2 { "Not found" } p { (what) } p { a href="/" { "← all deliveries" } } },
    )
}

/// Percent-encodes a query value (a hook path may hold `&` or `#`).
fn query_escape(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
