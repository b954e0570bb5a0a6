//! The sinks' series, built from their live status on every scrape.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;

use crate::forward::{Forwarding, StatusSnapshot};

pub(super) struct SinkCollector(pub(super) Arc<Forwarding>);

impl std::fmt::Debug for SinkCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkCollector")
    }
}

type Value = fn(&StatusSnapshot, bool) -> f64;

/// (name, help, type, value): one family each, one series per sink.
const FAMILIES: &[(&str, &str, MetricType, Value)] = &[
    (
        "webhook_sink_delivered",
        "Events a sink's destination confirmed",
        MetricType::Counter,
        |s, _| s.delivered as f64,
    ),
    (
        "webhook_sink_retried",
        "Deliveries that failed with a retryable error and were tried again",
        MetricType::Counter,
        |s, _| s.retried as f64,
    ),
    (
        "webhook_sink_dead_lettered",
        "Events written to the sink's dead-letter file",
        MetricType::Counter,
        |s, _| s.dead_lettered as f64,
    ),
    (
        "webhook_sink_lag_events",
        "Durable events the sink has not finished",
        MetricType::Gauge,
        |s, _| s.lag_events as f64,
    ),
    (
        "webhook_sink_lag_seconds",
        "Age of the oldest event the sink is working on",
        MetricType::Gauge,
        |s, _| s.lag_seconds,
    ),
    (
        "webhook_sink_in_flight",
        "Deliveries the sink has started and not finished (commands running, requests or publishes awaiting an answer)",
        MetricType::Gauge,
        |s, _| s.in_flight as f64,
    ),
    (
        "webhook_sink_paused",
        "1 while the destination has paused the sink (HTTP 410) until a reload",
        MetricType::Gauge,
        |s, _| f64::from(u8::from(s.paused_reason.is_some())),
    ),
    (
        "webhook_sink_connected",
        "1 while the sink holds a connection to its destination",
        MetricType::Gauge,
        |_, connected| f64::from(u8::from(connected)),
    ),
];

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sinks = self.0.sinks();
        let snaps: Vec<(String, StatusSnapshot, bool, [Histogram; 2])> = sinks
            .iter()
            .map(|s| {
                let confirm = [
                    s.status.confirm_seconds().clone(),
                    s.status.ack_confirm_seconds().clone(),
                ];
                (s.name.clone(), s.status.snapshot(), s.connected(), confirm)
            })
            .collect();
        for (name, help, kind, value) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, *kind)?;
            for (sink, snap, connected, _) in &snaps {
                let labels = [("sink", sink.as_str())];
                let v = value(snap, *connected);
                let series = family.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(v as u64).encode(series)?,
                    _ => ConstGauge::new(v).encode(series)?,
                }
            }
        }
        let histograms = [
            (
                "webhook_sink_confirm_seconds",
                "Seconds from an event's arrival to its destination's confirmation",
            ),
            (
                "webhook_sink_ack_to_confirm_seconds",
                "Seconds from an event's 2xx (durable) to its destination's confirmation",
            ),
        ];
        for (i, (name, help)) in histograms.iter().enumerate() {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (sink, _, _, confirm) in &snaps {
                confirm[i].encode(family.encode_family(&[("sink", sink.as_str())])?)?;
            }
        }
        Ok(())
    }
}
