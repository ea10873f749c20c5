//! Prometheus metrics: a fold over the event stream, rendered as the text exposition format
//! (version 0.0.4) for the gateway's `/metrics`.
//!
//! [`Metrics`] folds the same [`Event`]s the console folds and [`Metrics::render`] writes every family
//! with its `# HELP` and `# TYPE` lines once, families in a fixed order and series sorted by their
//! labels, so two renders of the same fold are byte-identical.
//!
//! Memory is bounded whatever arrives: each free-form label (provider, skip reason, operator action)
//! keeps at most [`LABEL_VALUES_KEPT`] distinct values, later ones counted under `other`; label values
//! are cut to [`LABEL_VALUE_BYTES`]; the request → chain map used to spot failovers keeps at most
//! [`REQUESTS_TRACKED`] requests, the oldest dropped first.

use crate::text::cut;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use crate::engine::breaker::BreakerState;
use crate::event::{Event, EventKind, Outcome, Source};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Distinct values kept per free-form label; further ones are pooled as [`OTHER`].
pub const LABEL_VALUES_KEPT: usize = 64;

/// The label value that pools everything past [`LABEL_VALUES_KEPT`].
pub const OTHER: &str = "other";

/// Longest label value kept, in bytes (cut on a character boundary).
pub const LABEL_VALUE_BYTES: usize = 128;

/// Requests whose chain is remembered until they finish; the oldest are forgotten first.
pub const REQUESTS_TRACKED: usize = 100_000;

/// Longest request id kept as a key, in bytes.
const REQUEST_ID_BYTES: usize = 256;

/// Upper bounds of the first-event latency histogram, in milliseconds, and as written in `le`.
const LATENCY_BUCKETS: [(u64, &str); 9] = [
    (50, "0.05"),
    (100, "0.1"),
    (250, "0.25"),
    (500, "0.5"),
    (1_000, "1"),
    (2_000, "2"),
    (5_000, "5"),
    (10_000, "10"),
    (30_000, "30"),
];

const BREAKER_STATES: [BreakerState; 5] = BreakerState::ALL;

const SOURCES: [Source; 4] = [Source::Prompt, Source::Load, Source::Ask, Source::Gateway];

const TOKEN_KINDS: [&str; 4] = ["input", "output", "cache_read", "cache_write"];

/// The metrics of one engine, folded from its events.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    providers: Labels,
    skip_reasons: Labels,
    actions: Labels,
    /// Current breaker state of each known provider (never the pooled `other`).
    breakers: BTreeMap<String, BreakerState>,
    requests: [u64; SOURCES.len()],
    finished_ok: u64,
    finished_error: u64,
    attempts: BTreeMap<String, u64>,
    /// (provider, class, retryable)
    failures: BTreeMap<(String, &'static str, bool), u64>,
    /// (provider, reason)
    skipped: BTreeMap<(String, String), u64>,
    /// (from, to)
    failovers: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    tokens: BTreeMap<String, [u64; TOKEN_KINDS.len()]>,
    cost_usd: BTreeMap<String, f64>,
    rewinds: BTreeMap<String, u64>,
    operator_actions: BTreeMap<String, u64>,
    chains: Chains,
    events_missed: u64,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold one event. Never panics, whatever the strings hold.
    pub fn apply(&mut self, event: &Event) {
        self.apply_kind(&event.kind);
    }

    /// Fold one event's content (the metrics do not depend on its time or sequence number).
    pub fn apply_kind(&mut self, kind: &EventKind) {
        match kind {
            EventKind::SessionStarted { providers, .. } => {
                for info in providers {
                    self.known_provider(&info.name);
                }
            }
            EventKind::RequestStarted {
                request_id,
                source,
                chain,
                ..
            } => {
                let i = SOURCES.iter().position(|s| s == source).unwrap_or(0);
                bump(&mut self.requests[i], 1);
                if let Some(first) = chain.first() {
                    let first = self.provider(first);
                    self.chains.insert(request_id, first);
                }
            }
            EventKind::AttemptStarted { provider, .. } => {
                let p = self.provider(provider);
                bump(self.attempts.entry(p).or_default(), 1);
            }
            EventKind::AttemptFailed {
                provider,
                class,
                retryable,
                ..
            } => {
                let p = self.provider(provider);
                bump(
                    self.failures
                        .entry((p, class.as_str(), *retryable))
                        .or_default(),
                    1,
                );
            }
            EventKind::AttemptSkipped {
                provider, reason, ..
            } => {
                let p = self.provider(provider);
                let r = self.skip_reasons.admit(reason.as_str());
                bump(self.skipped.entry((p, r)).or_default(), 1);
            }
            EventKind::FirstEvent {
                provider,
                latency_ms,
                ..
            } => {
                let p = self.provider(provider);
                self.latency.entry(p).or_default().observe(*latency_ms);
            }
            EventKind::TextDelta { .. } | EventKind::ProviderFlagged { .. } => {}
            EventKind::Rewind { provider, .. } => {
                let p = self.provider(provider);
                bump(self.rewinds.entry(p).or_default(), 1);
            }
            EventKind::Usage {
                provider,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cost_usd,
                ..
            } => {
                let p = self.provider(provider);
                let t = self.tokens.entry(p.clone()).or_default();
                for (slot, n) in t.iter_mut().zip([
                    *input_tokens,
                    *output_tokens,
                    *cache_read_tokens,
                    *cache_write_tokens,
                ]) {
                    bump(slot, n);
                }
                let total = self.cost_usd.entry(p).or_insert(0.0);
                // A counter only goes up: a NaN, infinite or negative cost is not counted.
                if cost_usd.is_finite() && *cost_usd > 0.0 {
                    let sum = *total + *cost_usd;
                    if sum.is_finite() {
                        *total = sum;
                    }
                }
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                ..
            } => {
                match outcome {
                    Outcome::Ok => bump(&mut self.finished_ok, 1),
                    Outcome::Error => bump(&mut self.finished_error, 1),
                }
                let first = self.chains.remove(request_id);
                if *outcome == Outcome::Ok
                    && let (Some(from), Some(answered)) = (first, provider)
                {
                    let to = self.provider(answered);
                    if to != from {
                        bump(self.failovers.entry((from, to)).or_default(), 1);
                    }
                }
            }
            EventKind::BreakerChanged { provider, to, .. } => {
                if let Some(slot) = self.known_provider(provider) {
                    *slot = *to;
                }
            }
            EventKind::OperatorAction { action, .. } => {
                let a = self.actions.admit(action.as_str());
                bump(self.operator_actions.entry(a).or_default(), 1);
            }
        }
    }

    /// The bus reported this many events lost to lag.
    pub fn missed(&mut self, count: u64) {
        bump(&mut self.events_missed, count);
    }

    /// The provider's label value, noting the provider for the breaker gauge (closed until told).
    fn provider(&mut self, name: &str) -> String {
        let label = self.providers.admit(name);
        if self.providers.is_kept(&label) && !self.breakers.contains_key(&label) {
            self.breakers.insert(label.clone(), BreakerState::Closed);
        }
        label
    }

    /// The breaker slot of a provider, unless it is pooled under `other`.
    fn known_provider(&mut self, name: &str) -> Option<&mut BreakerState> {
        let label = self.providers.admit(name);
        if !self.providers.is_kept(&label) {
            return None;
        }
        Some(self.breakers.entry(label).or_insert(BreakerState::Closed))
    }

    /// The Prometheus text exposition format (version 0.0.4); serve it as [`CONTENT_TYPE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let o = &mut out;

        family(
            o,
            "breakerbox_breaker_state",
            "gauge",
            "Circuit breaker state per provider: 1 for the current state, 0 for the others.",
        );
        for (provider, current) in &self.breakers {
            for state in BREAKER_STATES {
                let v = u64::from(state == *current);
                sample(
                    o,
                    "breakerbox_breaker_state",
                    &[("provider", provider), ("state", state.as_str())],
                    v,
                );
            }
        }

        family(
            o,
            "breakerbox_requests_total",
            "counter",
            "Requests started, by where they came from.",
        );
        for (source, n) in SOURCES.iter().zip(self.requests) {
            sample(
                o,
                "breakerbox_requests_total",
                &[("source", source_name(*source))],
                n,
            );
        }

        family(
            o,
            "breakerbox_requests_finished_total",
            "counter",
            "Requests finished, by outcome.",
        );
        for (outcome, n) in [("ok", self.finished_ok), ("error", self.finished_error)] {
            sample(
                o,
                "breakerbox_requests_finished_total",
                &[("outcome", outcome)],
                n,
            );
        }

        family(
            o,
            "breakerbox_attempts_total",
            "counter",
            "Attempts started, by provider.",
        );
        for (provider, n) in &self.attempts {
            sample(
                o,
                "breakerbox_attempts_total",
                &[("provider", provider)],
                *n,
            );
        }

        family(
            o,
            "breakerbox_attempt_failures_total",
            "counter",
            "Failed attempts, by provider, error class and whether the failure was retryable.",
        );
        for ((provider, class, retryable), n) in &self.failures {
            sample(
                o,
                "breakerbox_attempt_failures_total",
                &[
                    ("provider", provider),
                    ("class", class),
                    ("retryable", if *retryable { "true" } else { "false" }),
                ],
                *n,
            );
        }

        family(
            o,
            "breakerbox_attempts_skipped_total",
            "counter",
            "Targets skipped without an attempt, by provider and reason.",
        );
        for ((provider, reason), n) in &self.skipped {
            sample(
                o,
                "breakerbox_attempts_skipped_total",
                &[("provider", provider), ("reason", reason)],
                *n,
            );
        }

        family(
            o,
            "breakerbox_failovers_total",
            "counter",
            "Requests answered by a provider other than their chain's first.",
        );
        for ((from, to), n) in &self.failovers {
            sample(
                o,
                "breakerbox_failovers_total",
                &[("from", from), ("to", to)],
                *n,
            );
        }

        let name = "breakerbox_first_event_latency_seconds";
        family(
            o,
            name,
            "histogram",
            "Time from sending an attempt to its first healthy event, by provider.",
        );
        for (provider, h) in &self.latency {
            let mut cumulative = 0u64;
            for ((_, le), n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
                cumulative = cumulative.saturating_add(n);
                let labels = [("provider", provider.as_str()), ("le", *le)];
                sample(
                    o,
                    "breakerbox_first_event_latency_seconds_bucket",
                    &labels,
                    cumulative,
                );
            }
            let labels = [("provider", provider.as_str()), ("le", "+Inf")];
            sample(
                o,
                "breakerbox_first_event_latency_seconds_bucket",
                &labels,
                h.count,
            );
            let labels = [("provider", provider.as_str())];
            sample(
                o,
                "breakerbox_first_event_latency_seconds_sum",
                &labels,
                Millis(h.sum_ms),
            );
            sample(
                o,
                "breakerbox_first_event_latency_seconds_count",
                &labels,
                h.count,
            );
        }

        family(
            o,
            "breakerbox_tokens_total",
            "counter",
            "Tokens reported (or estimated) in usage, by provider and kind.",
        );
        for (provider, counts) in &self.tokens {
            for (kind, n) in TOKEN_KINDS.iter().zip(counts) {
                sample(
                    o,
                    "breakerbox_tokens_total",
                    &[("provider", provider), ("kind", kind)],
                    *n,
                );
            }
        }

        family(
            o,
            "breakerbox_cost_usd_total",
            "counter",
            "Spend in US dollars, by provider, failed attempts included.",
        );
        for (provider, usd) in &self.cost_usd {
            sample(
                o,
                "breakerbox_cost_usd_total",
                &[("provider", provider)],
                Float(*usd),
            );
        }

        family(
            o,
            "breakerbox_rewinds_total",
            "counter",
            "Streams rewound (text already shown was discarded), by provider.",
        );
        for (provider, n) in &self.rewinds {
            sample(o, "breakerbox_rewinds_total", &[("provider", provider)], *n);
        }

        family(
            o,
            "breakerbox_operator_actions_total",
            "counter",
            "Operator actions (trip, force closed, reset, set fault), by action.",
        );
        for (action, n) in &self.operator_actions {
            sample(
                o,
                "breakerbox_operator_actions_total",
                &[("action", action)],
                *n,
            );
        }

        family(
            o,
            "breakerbox_events_missed_total",
            "counter",
            "Events the metrics missed because their consumer fell behind the bus.",
        );
        sample(o, "breakerbox_events_missed_total", &[], self.events_missed);

        out
    }
}

/// Label values of one free-form label: the first [`LABEL_VALUES_KEPT`] distinct ones, then `other`.
#[derive(Debug, Clone, Default)]
struct Labels {
    kept: HashMap<String, ()>,
}

impl Labels {
    fn admit(&mut self, raw: &str) -> String {
        let value = cut(raw, LABEL_VALUE_BYTES);
        if self.kept.contains_key(value) {
            return value.to_owned();
        }
        if value == OTHER || self.kept.len() >= LABEL_VALUES_KEPT {
            return OTHER.to_owned();
        }
        self.kept.insert(value.to_owned(), ());
        value.to_owned()
    }

    fn is_kept(&self, label: &str) -> bool {
        self.kept.contains_key(label)
    }
}

/// Each running request's first target, to count failovers when it finishes. Bounded: past
/// [`REQUESTS_TRACKED`] the oldest is forgotten (its failover, if any, goes uncounted).
#[derive(Debug, Clone, Default)]
struct Chains {
    /// request id → (insertion number, first provider's label)
    first: HashMap<String, (u64, String)>,
    /// Insertion order; entries whose number no longer matches the map are stale.
    order: VecDeque<(u64, String)>,
    next: u64,
}

impl Chains {
    fn insert(&mut self, request_id: &str, first: String) {
        let id = cut(request_id, REQUEST_ID_BYTES).to_owned();
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        self.first.insert(id.clone(), (n, first));
        self.order.push_back((n, id));
        while self.first.len() > REQUESTS_TRACKED {
            let Some((n, id)) = self.order.pop_front() else {
                break;
            };
            if self.first.get(&id).is_some_and(|(m, _)| *m == n) {
                self.first.remove(&id);
            }
        }
        // Finished requests leave stale entries behind: compact once they dominate.
        if self.order.len() > 2 * REQUESTS_TRACKED {
            let first = &self.first;
            self.order
                .retain(|(n, id)| first.get(id).is_some_and(|(m, _)| m == n));
        }
    }

    fn remove(&mut self, request_id: &str) -> Option<String> {
        let id = cut(request_id, REQUEST_ID_BYTES);
        self.first.remove(id).map(|(_, first)| first)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Histogram {
    /// Per bucket, not cumulative.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_ms: u64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|(le, _)| ms <= *le) {
            bump(&mut self.buckets[i], 1);
        }
        bump(&mut self.count, 1);
        bump(&mut self.sum_ms, ms);
    }
}

fn bump(counter: &mut u64, by: u64) {
    *counter = counter.saturating_add(by);
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
    family(
        o,
        "breakerbox_gateway_connections_refused_total",
        "counter",
        "Client connections refused with a 503 because the cap was reached.",
    );
    sample(
        o,
        "breakerbox_gateway_connections_refused_total",
        &[],
        refused,
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
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

impl std::fmt::Display for Millis {
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

impl std::fmt::Display for Float {
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

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn chains_stay_bounded() {
        let mut chains = Chains::default();
        for i in 0..(REQUESTS_TRACKED + 10) {
            chains.insert(&format!("r{i}"), "a".into());
        }
        assert_eq!(chains.first.len(), REQUESTS_TRACKED);
        assert_eq!(chains.remove("r0"), None);
        assert_eq!(
            chains
                .remove(&format!("r{}", REQUESTS_TRACKED + 9))
                .as_deref(),
            Some("a")
        );
        // Finished requests do not let the order queue grow without bound.
        for i in 0..(5 * REQUESTS_TRACKED) {
            let id = format!("s{i}");
            chains.insert(&id, "a".into());
            chains.remove(&id);
        }
        assert!(chains.order.len() <= 2 * REQUESTS_TRACKED + 1);
    }
}
