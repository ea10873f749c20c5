//! The Prometheus text exposition format (version 0.0.4): [`Metrics::render`], the gateway's
//! connection gauges, and the escaping and number formats both use.

use std::fmt::{Display, Write as _};

use super::{DURATION_BUCKETS, Histogram, LATENCY_BUCKETS, Metrics, SOURCES};
use crate::event::{BreakerState, RejectReason, Source};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const LATENCY: &str = "breakerbox_first_event_latency_seconds";

impl Metrics {
    /// The Prometheus text exposition format (version 0.0.4); serve it as [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        family(
            o,
            "breakerbox_build_info",
            "gauge",
            "Always 1, labelled with the version of breakerbox serving.",
        );
        sample(
            o,
            "breakerbox_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        self.render_breakers(o);
        self.render_requests(o);
        self.render_attempts(o);
        counter(
            o,
            "breakerbox_failovers_total",
            "Requests answered by a provider other than their chain's first.",
            self.failovers
                .iter()
                .map(|((from, to), n)| ([("from", from.as_str()), ("to", to)], n)),
        );
        self.render_latency(o);
        self.render_usage(o);
        self.render_rate_limits(o);
        counter(
            o,
            "breakerbox_rewinds_total",
            "Streams rewound (text already shown was discarded), by provider.",
            self.rewinds
                .iter()
                .map(|(provider, n)| (self.with_pool(&[("provider", provider)]), n)),
        );
        counter(
            o,
            "breakerbox_recovery_probes_total",
            "Recovery probes sent to providers whose breaker was open, by outcome (answered, failed).",
            self.probes.iter().map(|((provider, ok), n)| {
                let outcome = if *ok { "answered" } else { "failed" };
                (
                    self.with_pool(&[("provider", provider), ("outcome", outcome)]),
                    n,
                )
            }),
        );
        self.render_pools(o);
        // The family always (dashboards and alerts name it); its sample in a fleet only.
        let name = "breakerbox_cluster_connected";
        family(
            o,
            name,
            "gauge",
            "1 while the fleet's Redis ([cluster]) is reachable and breakers are shared, 0 while this instance carries on alone; no sample outside a fleet.",
        );
        if let Some(connected) = self.cluster_connected {
            sample(o, name, &[] as &[(&str, &str)], u64::from(connected));
        }
        counter(
            o,
            "breakerbox_operator_actions_total",
            "Operator actions (trip, force closed, reset, set fault), by action.",
            self.operator_actions
                .iter()
                .map(|(action, n)| ([("action", *action)], n)),
        );
        counter(
            o,
            "breakerbox_events_missed_total",
            "Events the metrics missed because their consumer fell behind the bus.",
            [([], self.events_missed)],
        );
        out
    }

    /// One gauge per provider and state: 1 for the current state, 0 for the others.
    fn render_breakers(&self, o: &mut String) {
        let name = "breakerbox_breaker_state";
        family(
            o,
            name,
            "gauge",
            "Circuit breaker state per provider: 1 for the current state, 0 for the others.",
        );
        for (provider, current) in &self.breakers {
            for state in BreakerState::ALL {
                let labels = self.with_pool(&[("provider", provider), ("state", state.as_str())]);
                sample(o, name, &labels, u64::from(state == *current));
            }
        }
    }

    fn render_requests(&self, o: &mut String) {
        counter(
            o,
            "breakerbox_requests_total",
            "Requests started, by where they came from.",
            SOURCES
                .iter()
                .zip(self.requests)
                .map(|(s, n)| ([("source", source_name(*s))], n)),
        );
        counter(
            o,
            "breakerbox_requests_finished_total",
            "Requests finished, by outcome.",
            [("ok", self.finished_ok), ("error", self.finished_error)]
                .map(|(outcome, n)| ([("outcome", outcome)], n)),
        );
        let name = "breakerbox_requests_in_flight";
        family(o, name, "gauge", "Requests started and not finished yet.");
        sample(o, name, &[], self.primaries.len());
        let name = "breakerbox_request_duration_seconds";
        family(
            o,
            name,
            "histogram",
            "Whole requests, from start to the last byte of the answer (or the error), by outcome.",
        );
        for (outcome, h) in ["ok", "error"].into_iter().zip(&self.durations) {
            histogram(o, name, &[("outcome", outcome)], h, &DURATION_BUCKETS);
        }
        counter(
            o,
            "breakerbox_gateway_rejected_total",
            "Requests the gateway refused itself before any provider saw them, by reason \
             (unknown_model, auth, bad_request, bad_header, too_large, body_timeout).",
            RejectReason::ALL
                .iter()
                .zip(self.rejected)
                .map(|(r, n)| ([("reason", r.as_str())], n)),
        );
    }

    fn render_attempts(&self, o: &mut String) {
        counter(
            o,
            "breakerbox_attempts_total",
            "Attempts started, by provider.",
            self.attempts
                .iter()
                .map(|(provider, n)| (self.with_pool(&[("provider", provider)]), n)),
        );
        counter(
            o,
            "breakerbox_attempt_failures_total",
            "Failed attempts, by provider, error class and whether the failure was retryable.",
            self.failures
                .iter()
                .map(|((provider, class, retryable), n)| {
                    let retryable = if *retryable { "true" } else { "false" };
                    let labels = [
                        ("provider", provider.as_str()),
                        ("class", *class),
                        ("retryable", retryable),
                    ];
                    (self.with_pool(&labels), n)
                }),
        );
        counter(
            o,
            "breakerbox_attempts_skipped_total",
            "Targets skipped without an attempt, by provider and reason.",
            self.skipped.iter().map(|((provider, reason), n)| {
                (
                    self.with_pool(&[("provider", provider), ("reason", reason)]),
                    n,
                )
            }),
        );
    }

    /// The first-event latency histogram: cumulative buckets, `+Inf`, sum and count per provider.
    fn render_latency(&self, o: &mut String) {
        family(
            o,
            LATENCY,
            "histogram",
            "Time from sending an attempt to its first healthy event, by provider.",
        );
        let bucket = format!("{LATENCY}_bucket");
        for (provider, h) in &self.latency {
            let provider = provider.as_str();
            let mut cumulative = 0u64;
            for ((_, le), n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                cumulative = cumulative.saturating_add(n);
                sample(
                    o,
                    &bucket,
                    &self.with_pool(&[("provider", provider), ("le", le)]),
                    cumulative,
                );
            }
            sample(
                o,
                &bucket,
                &self.with_pool(&[("provider", provider), ("le", "+Inf")]),
                h.count,
            );
            let labels = self.with_pool(&[("provider", provider)]);
            sample(o, &format!("{LATENCY}_sum"), &labels, Millis(h.sum_ms));
            sample(o, &format!("{LATENCY}_count"), &labels, h.count);
        }
    }

    fn render_usage(&self, o: &mut String) {
        let tokens = self.tokens.iter().flat_map(|(provider, counts)| {
            counts
                .by_kind()
                .map(|(kind, n)| (self.with_pool(&[("provider", provider), ("kind", kind)]), n))
        });
        counter(
            o,
            "breakerbox_tokens_total",
            "Tokens reported (or estimated) in usage, by provider and kind.",
            tokens,
        );
        counter(
            o,
            "breakerbox_cost_usd_total",
            "Spend in US dollars, by provider, failed attempts and recovery probes included.",
            self.cost_usd
                .iter()
                .map(|(provider, usd)| (self.with_pool(&[("provider", provider)]), Float(*usd))),
        );
        let unpriced = self.unpriced_tokens.iter().flat_map(|(provider, counts)| {
            counts
                .by_kind()
                .map(|(kind, n)| ([("provider", provider.as_str()), ("kind", kind)], n))
        });
        counter(
            o,
            "breakerbox_unpriced_tokens_total",
            "Tokens of models without a price, by provider and kind: breakerbox_cost_usd_total \
             leaves them out, so it is a lower bound wherever this is above zero.",
            unpriced,
        );
    }

    /// Each pool's members with their weights.
    fn render_pools(&self, o: &mut String) {
        let name = "breakerbox_pool_member_weight";
        family(
            o,
            name,
            "gauge",
            "The providers of each pool of equivalent providers, by pool and provider: the \
             member's weight.",
        );
        for ((pool, provider), weight) in &self.weights {
            let labels = [("pool", pool.as_str()), ("provider", provider.as_str())];
            sample(o, name, &labels, weight);
        }
    }

    /// `labels`, and after a `provider` label that names a pool's member, its `pool`.
    fn with_pool<'a>(&'a self, labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::with_capacity(labels.len() + 1);
        for &(key, value) in labels {
            out.push((key, value));
            if key == "provider"
                && let Some(pool) = self.pools.get(value)
            {
                out.push(("pool", pool.as_str()));
            }
        }
        out
    }
}

impl Metrics {
    /// What the providers' latest responses said of their rate limits, and who is throttled.
    fn render_rate_limits(&self, o: &mut String) {
        type Value = fn(&super::RateLimitGauges) -> Option<u64>;
        let gauges: [(&str, &str, Value); 3] = [
            (
                "breakerbox_rate_limit_remaining",
                "What is left of a provider's rate limit, by dimension, as its latest response said.",
                |g| g.remaining,
            ),
            (
                "breakerbox_rate_limit_limit",
                "A provider's rate limit, by dimension, as its latest response said.",
                |g| g.limit,
            ),
            (
                "breakerbox_rate_limit_reset_seconds",
                "Seconds from a provider's latest response until that rate limit resets, by dimension.",
                |g| g.reset_ms,
            ),
        ];
        for (name, help, value) in gauges {
            family(o, name, "gauge", help);
            for ((provider, dimension), g) in &self.rate_limits {
                let Some(v) = value(g) else { continue };
                let labels = [("provider", provider.as_str()), ("dimension", *dimension)];
                if name.ends_with("_seconds") {
                    sample(o, name, &labels, Millis(v));
                } else {
                    sample(o, name, &labels, v);
                }
            }
        }
        let name = "breakerbox_throttled";
        family(
            o,
            name,
            "gauge",
            "1 while a provider is throttled (close to a rate limit: requests go to the next target first), else 0.",
        );
        for (provider, throttled) in &self.throttled {
            sample(
                o,
                name,
                &[("provider", provider.as_str())],
                u64::from(*throttled),
            );
        }
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Prompt => "prompt",
        Source::Load => "load",
        Source::Ask => "ask",
        Source::Gateway => "gateway",
    }
}

/// The gateway's client connections, in the same exposition format: open now, the cap, and how
/// many were refused at the cap. Not a fold of events: the server counts them itself.
pub fn render_connections(open: u64, cap: u64, refused: u64) -> String {
    let mut out = String::new();
    let o = &mut out;
    family(
        o,
        "breakerbox_gateway_connections",
        "gauge",
        "Client connections open now.",
    );
    sample(o, "breakerbox_gateway_connections", &[], open);
    family(
        o,
        "breakerbox_gateway_connections_max",
        "gauge",
        "The most client connections allowed at once ([gateway] max_connections).",
    );
    sample(o, "breakerbox_gateway_connections_max", &[], cap);
    counter(
        o,
        "breakerbox_gateway_connections_refused_total",
        "Client connections refused with a 503 because the cap was reached.",
        [([], refused)],
    );
    out
}

/// The live OTLP exporter's counts (`serve --otlp-endpoint`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OtlpCounts {
    pub exported: u64,
    pub dropped: u64,
    pub failures: u64,
    pub events_missed: u64,
}

/// The live OTLP exporter's counters, in the same exposition format. Not a fold of events: the
/// exporter counts them itself.
pub fn render_otlp(counts: OtlpCounts) -> String {
    let mut out = String::new();
    let o = &mut out;
    counter(
        o,
        "breakerbox_otlp_spans_exported_total",
        "Spans the OpenTelemetry collector accepted.",
        [([], counts.exported)],
    );
    counter(
        o,
        "breakerbox_otlp_spans_dropped_total",
        "Spans never delivered: pushed out of the full export queue, or in a batch the collector \
         did not take.",
        [([], counts.dropped)],
    );
    counter(
        o,
        "breakerbox_otlp_export_failures_total",
        "Batches of spans the collector did not take, after sending them again.",
        [([], counts.failures)],
    );
    counter(
        o,
        "breakerbox_otlp_events_missed_total",
        "Events the span export missed because it fell behind the bus (their spans are incomplete).",
        [([], counts.events_missed)],
    );
    out
}

/// One histogram series: cumulative buckets, `+Inf`, sum (seconds) and count.
fn histogram<const N: usize>(
    o: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    h: &Histogram<N>,
    bounds: &[(u64, &str); N],
) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    for ((_, le), n) in bounds.iter().zip(h.buckets) {
        cumulative = cumulative.saturating_add(n);
        let mut with_le = labels.to_vec();
        with_le.push(("le", le));
        sample(o, &bucket, &with_le, cumulative);
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf"));
    sample(o, &bucket, &with_le, h.count);
    sample(o, &format!("{name}_sum"), labels, Millis(h.sum_ms));
    sample(o, &format!("{name}_count"), labels, h.count);
}

/// A counter family: its `# HELP` and `# TYPE` lines, then one sample per series.
fn counter<'a, L: AsRef<[(&'a str, &'a str)]>, V: Display>(
    out: &mut String,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) {
    family(out, name, "counter", help);
    for (labels, value) in series {
        sample(out, name, labels.as_ref(), value);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            escape_label_into(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the exposition format wants it: backslash, double quote and newline escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    escape_label_into(&mut out, value);
    out
}

fn escape_label_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Milliseconds written as seconds, exactly (`1234` → `1.234`).
struct Millis(u64);

impl Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, ms) = (self.0 / 1000, self.0 % 1000);
        if ms == 0 {
            write!(f, "{s}")
        } else {
            let frac = format!("{ms:03}");
            write!(f, "{s}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// A finite float in the shortest form that reads back the same (never an exponent, NaN or Inf).
struct Float(f64);

impl Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() {
            write!(f, "{}", self.0)
        } else {
            f.write_str("0")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_render_as_exact_seconds() {
        assert_eq!(Millis(0).to_string(), "0");
        assert_eq!(Millis(1234).to_string(), "1.234");
        assert_eq!(Millis(50).to_string(), "0.05");
        assert_eq!(Millis(30_000).to_string(), "30");
    }
}
