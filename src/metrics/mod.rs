//! Prometheus metrics: a fold over the event stream, rendered as the text exposition format
//! (version 0.0.4) for the gateway's `/metrics`.
//!
//! [`Metrics`] folds the same [`Event`]s the console folds (it is a [`Fold`]) and
//! [`Metrics::render`] (`render.rs`) writes every family with its `# HELP` and `# TYPE` lines once,
//! families in a fixed order and series sorted by their labels, so two renders of the same fold are
//! byte-identical.
//!
//! A pool's members carry a `pool` label beside `provider` on every series of theirs, and
//! `breakerbox_pool_member_weight` says which providers each pool has (from `session_started`, or an
//! `attempt_started` that names its pool).
//!
//! Memory is bounded whatever arrives: provider and pool names, the free-form labels, keep at most
//! [`LABEL_VALUES_KEPT`] distinct values each, later ones counted under `other`, cut to
//! [`LABEL_VALUE_BYTES`] (`labels.rs`); skip reasons, operator actions, breaker states and error
//! classes are closed sets and label their series by name. The request → primary map used to spot
//! failovers keeps at most [`REQUESTS_TRACKED`] requests, the oldest dropped first.

mod labels;
mod render;

pub use labels::{LABEL_VALUE_BYTES, LABEL_VALUES_KEPT, OTHER};
pub use render::{CONTENT_TYPE, OtlpCounts, escape_label, render_connections, render_otlp};

pub use crate::event::facts::REQUESTS_TRACKED;

use std::collections::BTreeMap;

use crate::event::facts::{FailoverTracker, TokenCounts};
use crate::event::{BreakerState, Event, EventKind, Fold, Outcome, RejectReason, Source};
use labels::Labels;

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

/// Upper bounds of the whole-request duration histogram, in milliseconds, and as written in `le`:
/// an LLM request takes seconds to minutes.
const DURATION_BUCKETS: [(u64, &str); 11] = [
    (100, "0.1"),
    (250, "0.25"),
    (500, "0.5"),
    (1_000, "1"),
    (2_500, "2.5"),
    (5_000, "5"),
    (10_000, "10"),
    (30_000, "30"),
    (60_000, "60"),
    (120_000, "120"),
    (300_000, "300"),
];

const SOURCES: [Source; 4] = [Source::Prompt, Source::Load, Source::Ask, Source::Gateway];

/// The metrics of one engine, folded from its events.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    providers: Labels,
    pool_names: Labels,
    /// A member's provider label → its pool's label.
    pools: BTreeMap<String, String>,
    /// (pool, provider) → the member's weight.
    weights: BTreeMap<(String, String), u32>,
    /// Current breaker state of each known provider (never the pooled `other`).
    breakers: BTreeMap<String, BreakerState>,
    requests: [u64; SOURCES.len()],
    finished_ok: u64,
    finished_error: u64,
    /// Whole-request durations, by outcome (ok, error).
    durations: [Histogram<11>; 2],
    /// Requests the gateway refused itself, by [`RejectReason::ALL`]'s order.
    rejected: [u64; RejectReason::ALL.len()],
    attempts: BTreeMap<String, u64>,
    /// (provider, class, retryable)
    failures: BTreeMap<(String, &'static str, bool), u64>,
    /// (provider, reason): the reason by name, so series sort by it.
    skipped: BTreeMap<(String, &'static str), u64>,
    /// (from, to)
    failovers: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    tokens: BTreeMap<String, TokenCounts>,
    cost_usd: BTreeMap<String, f64>,
    /// Tokens of models without a price: `cost_usd` leaves them out.
    unpriced_tokens: BTreeMap<String, TokenCounts>,
    rewinds: BTreeMap<String, u64>,
    /// (provider, answered): recovery probes.
    probes: BTreeMap<(String, bool), u64>,
    /// By the action's name, so series sort by it.
    operator_actions: BTreeMap<&'static str, u64>,
    primaries: FailoverTracker,
    /// (provider, dimension): the latest `rate_limits` values.
    rate_limits: BTreeMap<(String, &'static str), RateLimitGauges>,
    /// Whether each provider that has reported is throttled now.
    throttled: BTreeMap<String, bool>,
    /// Whether the fleet's Redis is reachable (`[cluster]`); `None` when not in a fleet.
    cluster_connected: Option<bool>,
    events_missed: u64,
}

/// One dimension of a provider's rate limit, as its latest response stated it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RateLimitGauges {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_ms: Option<u64>,
}

impl Fold for Metrics {
    fn apply(&mut self, event: &Event) {
        Metrics::apply(self, event);
    }

    fn missed(&mut self, n: u64) {
        Metrics::missed(self, n);
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold one event. Never panics, whatever the strings hold.
    pub fn apply(&mut self, event: &Event) {
        self.apply_kind(&event.kind);
    }

    /// The bus reported this many events lost to lag.
    pub fn missed(&mut self, count: u64) {
        bump(&mut self.events_missed, count);
    }

    /// Fold one event's content (the metrics do not depend on its time or sequence number).
    pub fn apply_kind(&mut self, kind: &EventKind) {
        match kind {
            EventKind::SessionStarted {
                providers, pools, ..
            } => {
                for info in providers {
                    self.known_provider(&info.name);
                }
                for pool in pools {
                    for m in &pool.members {
                        self.member(&pool.name, &m.provider, m.weight);
                    }
                }
            }
            EventKind::RequestStarted { source, chain, .. } => {
                let i = SOURCES.iter().position(|s| s == source).unwrap_or(0);
                bump(&mut self.requests[i], 1);
                if let Some(first) = chain.first() {
                    // Labelled now, so labels are given in the order providers are first seen.
                    self.provider(first);
                }
                self.primaries.apply(kind);
            }
            EventKind::AttemptStarted { provider, pool, .. } => {
                let p = self.provider(provider);
                bump(self.attempts.entry(p.clone()).or_default(), 1);
                if let Some(pool) = pool
                    && !self.pools.contains_key(&p)
                {
                    self.member(pool, provider, 1);
                }
            }
            EventKind::AttemptFailed {
                provider,
                class,
                retryable,
                ..
            } => {
                let key = (self.provider(provider), class.as_str(), *retryable);
                bump(self.failures.entry(key).or_default(), 1);
            }
            EventKind::AttemptSkipped {
                provider, reason, ..
            } => {
                let key = (self.provider(provider), reason.as_str());
                bump(self.skipped.entry(key).or_default(), 1);
            }
            EventKind::FirstEvent {
                provider,
                latency_ms,
                ..
            } => {
                let p = self.provider(provider);
                (self.latency.entry(p).or_default()).observe(*latency_ms, &LATENCY_BUCKETS);
            }
            EventKind::RequestRejected { reason, .. } => {
                let i = RejectReason::ALL.iter().position(|r| r == reason);
                if let Some(slot) = i.and_then(|i| self.rejected.get_mut(i)) {
                    bump(slot, 1);
                }
            }
            EventKind::TextDelta { .. }
            | EventKind::ProviderFlagged { .. }
            | EventKind::ProbeStarted { .. }
            | EventKind::FaultChanged { .. } => {}
            EventKind::ProbeFinished {
                provider,
                ok,
                cost_usd,
                unpriced,
                input_tokens,
                output_tokens,
                ..
            } => {
                let p = self.provider(provider);
                bump(self.probes.entry((p.clone(), *ok)).or_default(), 1);
                if *unpriced {
                    let unknown = self.unpriced_tokens.entry(p.clone()).or_default();
                    unknown.accumulate(TokenCounts {
                        input: *input_tokens,
                        output: *output_tokens,
                        ..TokenCounts::default()
                    });
                }
                self.add_cost(p, *cost_usd);
            }
            EventKind::Rewind { provider, .. } => {
                let p = self.provider(provider);
                bump(self.rewinds.entry(p).or_default(), 1);
            }
            EventKind::Usage {
                provider,
                cost_usd,
                unpriced,
                ..
            } => self.on_usage(kind, provider, *cost_usd, *unpriced),
            EventKind::RequestFinished {
                outcome, total_ms, ..
            } => {
                let i = usize::from(*outcome == Outcome::Error);
                self.durations[i].observe(*total_ms, &DURATION_BUCKETS);
                self.on_request_finished(kind, *outcome);
            }
            EventKind::BreakerChanged { provider, to, .. } => {
                if let Some(slot) = self.known_provider(provider) {
                    *slot = *to;
                }
            }
            EventKind::OperatorAction { action, .. } => {
                bump(self.operator_actions.entry(action.as_str()).or_default(), 1);
            }
            EventKind::RateLimits {
                provider, limits, ..
            } => {
                let p = self.provider(provider);
                if self.providers.is_kept(&p) {
                    for l in limits {
                        let gauges = RateLimitGauges {
                            limit: l.limit,
                            remaining: l.remaining,
                            reset_ms: l.reset_ms,
                        };
                        self.rate_limits
                            .insert((p.clone(), l.dimension.as_str()), gauges);
                    }
                    self.throttled.entry(p).or_insert(false);
                }
            }
            EventKind::ThrottleChanged {
                provider,
                throttled,
                ..
            } => {
                let p = self.provider(provider);
                if self.providers.is_kept(&p) {
                    self.throttled.insert(p, *throttled);
                }
            }
            EventKind::ClusterChanged { connected, .. } => {
                self.cluster_connected = Some(*connected)
            }
        }
    }

    fn on_usage(&mut self, usage: &EventKind, provider: &str, cost_usd: f64, unpriced: bool) {
        let p = self.provider(provider);
        let tokens = TokenCounts::from_usage(usage).unwrap_or_default();
        self.tokens.entry(p.clone()).or_default().accumulate(tokens);
        if unpriced {
            let unknown = self.unpriced_tokens.entry(p.clone()).or_default();
            unknown.accumulate(tokens);
        }
        self.add_cost(p, cost_usd);
    }

    fn add_cost(&mut self, provider: String, cost_usd: f64) {
        let total = self.cost_usd.entry(provider).or_insert(0.0);
        // A counter only goes up: a NaN, infinite or negative cost is not counted.
        if cost_usd.is_finite() && cost_usd > 0.0 {
            let sum = *total + cost_usd;
            if sum.is_finite() {
                *total = sum;
            }
        }
    }

    fn on_request_finished(&mut self, finished: &EventKind, outcome: Outcome) {
        match outcome {
            Outcome::Ok => bump(&mut self.finished_ok, 1),
            Outcome::Error => bump(&mut self.finished_error, 1),
        }
        if let Some(failover) = self.primaries.apply(finished) {
            // Compared again as labels: two names that differ only past the label's length, or
            // both pooled under `other`, are one series.
            let from = self.provider(&failover.from);
            let to = self.provider(failover.to);
            if to != from {
                bump(self.failovers.entry((from, to)).or_default(), 1);
            }
        }
    }

    /// The provider's label value, noting the provider for the breaker gauge (closed until told).
    fn provider(&mut self, name: &str) -> String {
        let label = self.providers.admit(name);
        if self.providers.is_kept(&label) && !self.breakers.contains_key(&label) {
            self.breakers.insert(label.clone(), BreakerState::Closed);
        }
        label
    }

    /// Note `provider` as a member of `pool` (unless either is counted under `other`).
    fn member(&mut self, pool: &str, provider: &str, weight: u32) {
        let p = self.provider(provider);
        let pool = self.pool_names.admit(pool);
        if !self.providers.is_kept(&p) || !self.pool_names.is_kept(&pool) {
            return;
        }
        self.weights.insert((pool.clone(), p.clone()), weight);
        self.pools.insert(p, pool);
    }

    /// The breaker slot of a provider, unless it is pooled under `other`.
    fn known_provider(&mut self, name: &str) -> Option<&mut BreakerState> {
        let label = self.providers.admit(name);
        if !self.providers.is_kept(&label) {
            return None;
        }
        Some(self.breakers.entry(label).or_insert(BreakerState::Closed))
    }
}

/// Durations in milliseconds, in `N` buckets (first-event latencies in [`LATENCY_BUCKETS`],
/// whole requests in [`DURATION_BUCKETS`]).
#[derive(Debug, Clone, Copy)]
struct Histogram<const N: usize = 9> {
    /// Per bucket, not cumulative.
    buckets: [u64; N],
    count: u64,
    sum_ms: u64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: [0; N],
            count: 0,
            sum_ms: 0,
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&mut self, ms: u64, bounds: &[(u64, &str); N]) {
        if let Some(i) = bounds.iter().position(|(le, _)| ms <= *le) {
            bump(&mut self.buckets[i], 1);
        }
        bump(&mut self.count, 1);
        bump(&mut self.sum_ms, ms);
    }
}

fn bump(counter: &mut u64, by: u64) {
    *counter = counter.saturating_add(by);
}
