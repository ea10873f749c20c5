//! A view per provider and its part of the fold: its breaker (or, with `breaker = "model"`, one
//! breaker per model, shown by the most severe), how close it is to tripping, its probes, its
//! first-event latency, its traffic, its errors and what it cost; and the pools the providers
//! belong to.

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use std::collections::VecDeque;

use super::ledger::Probe;
use super::limits::RateLimitsView;
use super::requests::CHAIN_KEPT;
use super::ring::{bounded, push_capped, push_ring};
use super::{Dashboard, SETTINGS_KEPT, finite, message};
use crate::engine::classify::counted_by_breaker;
use crate::event::facts::Spend;
use crate::event::{
    BreakerState, ErrorClass, EventKind, Mode, OperatorAction, Outcome, Phase, PoolInfo,
    PoolStrategy, ProviderFlag, ProviderInfo,
};

/// First-event latency points kept per provider for the latency-over-time panel.
pub const LATENCY_POINTS_KEPT: usize = 600;
/// Breaker history kept per provider for the timeline.
pub const TIMELINE_KEPT: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// Window for requests per second.
pub const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Providers given a view; events about others still count in totals and the log.
pub(super) const PROVIDERS_KEPT: usize = 64;
/// Attempt start times kept per provider (a burst within `RATE_WINDOW`).
pub(super) const RATE_POINTS_KEPT: usize = 10_000;
/// Breaker spans kept per provider (a flapping breaker within `TIMELINE_KEPT`).
pub(super) const TIMELINE_SPANS_KEPT: usize = 1_000;
/// Per-model breakers kept per provider.
pub(super) const MODELS_KEPT: usize = 64;
/// Breaker changes kept per provider for its detail view, newest last.
pub const BREAKER_HISTORY_KEPT: usize = 32;
/// Failed attempts kept in full per provider, and per error class, for the detail views.
pub const ERRORS_KEPT: usize = 16;
/// Longest request id kept with an error (ids are short; a hostile one must not be kept whole).
const ID_CHARS_KEPT: usize = 128;

/// A pool of equivalent providers, as the session declared it. Its members' views name it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolView {
    pub name: String,
    pub strategy: PoolStrategy,
}

/// Everything the console shows about one provider.
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub name: String,
    pub protocol: String,
    pub model: String,
    /// The pool it is a member of, and its weight there.
    pub pool: Option<String>,
    pub weight: u32,
    /// The breaker's state; with one breaker per model, the most severe of theirs ([`severity`]).
    pub breaker: BreakerState,
    /// When the breaker entered its current state.
    pub breaker_since: Option<DateTime<Utc>>,
    /// While open: when it goes half-open (from `breaker_changed.recovery_ms`).
    pub open_until: Option<DateTime<Utc>>,
    /// Why it is in its current state.
    pub breaker_reason: String,
    /// With `breaker = "model"`: each model's breaker, in order of first appearance. Empty while
    /// the provider has one breaker (or none of its models' breakers has changed yet).
    pub models: Vec<ModelBreaker>,
    /// Failures in a row that count for the breaker (the session's policy), reset by a success
    /// and when the breaker closes; with a breaker per model, those of the model closest to
    /// tripping ([`ProviderView::failures_of`] has each model's).
    pub consecutive_failures: u32,
    /// The breaker's consecutive-failure threshold, when the session told it.
    pub threshold: Option<u32>,
    /// Attempts started while half-open and not yet ended.
    pub probes_in_flight: u32,
    pub last_error: Option<LastError>,
    pub attempts: u64,
    /// Requests this provider answered / attempts of it that failed (cancelled ones not counted).
    pub successes: u64,
    pub failures: u64,
    /// First-event latency, milliseconds (p50 / p95 / p99 read from it).
    pub latency: Histogram<u64>,
    /// First-event latencies and failures over time, oldest first; at most `LATENCY_POINTS_KEPT`.
    pub latency_series: VecDeque<LatencyPoint>,
    /// Start times of recent attempts, for requests per second over `RATE_WINDOW`.
    pub recent_attempts: VecDeque<DateTime<Utc>>,
    /// Breaker states over time, oldest first, pruned to `TIMELINE_KEPT`.
    pub timeline: VecDeque<BreakerSpan>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// The part of `cost_usd` spent on failed or cancelled attempts.
    pub failed_cost_usd: f64,
    /// Usages of a model without a price, left out of `cost_usd` (see [`ProviderView::cost`]).
    pub unpriced: u64,
    /// Of those, the ones of failed or cancelled attempts.
    pub failed_unpriced: u64,
    /// Set by `provider_flagged` (e.g. `misconfigured: auth: invalid x-api-key`).
    pub flagged: Option<String>,
    /// The simulated fault in force: from `session_started`, then the last `fault_changed`
    /// (a scenario's step) or operator's `set_fault`. `None` for a provider that started healthy.
    pub fault: Option<String>,
    /// Its breaker's changes with their reasons, oldest first; at most `BREAKER_HISTORY_KEPT`.
    pub breaker_history: VecDeque<BreakerChange>,
    /// Its latest failed attempts in full, oldest first; at most `ERRORS_KEPT`.
    pub recent_errors: VecDeque<ErrorDetail>,
    /// The background recovery probes sent while its breaker was open.
    pub recovery: RecoveryProbes,
    /// What its responses say of its rate limits, and whether it is throttled.
    pub rate_limits: RateLimitsView,
    /// Failures in a row of the provider as a whole, and of each model (kept from the start: a
    /// provider shows it has a breaker per model only when one of them first changes).
    in_a_row: u32,
    in_a_row_by_model: Vec<(String, u32)>,
}

/// The recovery probes of a provider (`probe_started`, `probe_finished`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryProbes {
    /// Probes sent this session, and how many were answered.
    pub sent: u64,
    pub answered: u64,
    /// What they cost (also counted in the provider's `cost_usd`).
    pub cost_usd: f64,
    /// Probes of a model without a price, left out of `cost_usd`.
    pub unpriced: u64,
    /// The probe out now: its number, and since when.
    pub in_flight: Option<(u32, DateTime<Utc>)>,
    /// How the last probe ended.
    pub last: Option<ProbeEnd>,
    /// After a failed probe, while the breaker stays open: about when the next one goes.
    pub next_at: Option<DateTime<Utc>>,
}

/// How a recovery probe ended: its number, when, and whether it was answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeEnd {
    pub probe: u32,
    pub at: DateTime<Utc>,
    /// `Ok`: answered. `Err`: failed, with its error class where the event named one.
    pub outcome: Result<(), Option<ErrorClass>>,
}

/// One model's breaker, for a provider with one breaker per model (`breaker = "model"`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBreaker {
    pub model: String,
    pub state: BreakerState,
    /// When it entered `state`.
    pub since: DateTime<Utc>,
    /// Why it is in `state`.
    pub reason: String,
    /// While open: when it goes half-open.
    pub open_until: Option<DateTime<Utc>>,
    /// Attempts started while it was half-open and not yet ended.
    pub probes_in_flight: u32,
    /// Its failures in a row (as [`ProviderView::failures_of`] says).
    pub consecutive_failures: u32,
}

/// One `breaker_changed`, as the provider's detail lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerChange {
    pub at: DateTime<Utc>,
    /// The model, for a per-model breaker.
    pub model: Option<String>,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
    pub recovery_ms: Option<u64>,
}

/// One failed attempt in full (`attempt_failed`), for the provider's and the class's detail.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    pub at: DateTime<Utc>,
    pub provider: String,
    pub request_id: String,
    pub attempt: u32,
    pub phase: Phase,
    pub class: ErrorClass,
    pub retryable: bool,
    pub status: Option<u16>,
    pub retry_after_ms: Option<u64>,
    pub elapsed_ms: u64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastError {
    pub class: ErrorClass,
    pub phase: Phase,
    pub retryable: bool,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyPoint {
    pub at: DateTime<Utc>,
    /// `Some(ms)` for a first event, `None` for a failed attempt.
    pub latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpan {
    pub from: DateTime<Utc>,
    pub state: BreakerState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// Failures of one class at one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorCount {
    pub count: u64,
    pub retryable: bool,
    pub last_message: String,
    pub last_at: DateTime<Utc>,
}

/// How much a breaker state holds a provider's traffic back, highest first; a provider with one
/// breaker per model is shown by its most severe. Forced open stops everything by hand and must
/// never hide behind anything; open stops the model's traffic; half-open lets a few probes by; forced
/// closed lets everything by but is an operator's hold worth seeing over plain closed.
pub fn severity(state: BreakerState) -> u8 {
    match state {
        BreakerState::ForcedOpen => 4,
        BreakerState::Open => 3,
        BreakerState::HalfOpen => 2,
        BreakerState::ForcedClosed => 1,
        BreakerState::Closed => 0,
    }
}

impl ProviderView {
    pub fn new(name: &str, protocol: &str, model: &str) -> Self {
        ProviderView {
            name: name.to_string(),
            protocol: protocol.to_string(),
            model: model.to_string(),
            pool: None,
            weight: 1,
            breaker: BreakerState::Closed,
            breaker_since: None,
            open_until: None,
            breaker_reason: String::new(),
            models: Vec::new(),
            consecutive_failures: 0,
            threshold: None,
            probes_in_flight: 0,
            last_error: None,
            attempts: 0,
            successes: 0,
            failures: 0,
            latency: new_latency_histogram(),
            latency_series: VecDeque::new(),
            recent_attempts: VecDeque::new(),
            timeline: VecDeque::new(),
            tokens: Tokens::default(),
            cost_usd: 0.0,
            failed_cost_usd: 0.0,
            unpriced: 0,
            failed_unpriced: 0,
            flagged: None,
            fault: None,
            breaker_history: VecDeque::new(),
            recent_errors: VecDeque::new(),
            recovery: RecoveryProbes::default(),
            rate_limits: RateLimitsView::default(),
            in_a_row: 0,
            in_a_row_by_model: Vec::new(),
        }
    }

    /// What it cost, unpriced usage said apart (never shown as $0).
    pub fn cost(&self) -> Spend {
        Spend {
            usd: self.cost_usd,
            unpriced: self.unpriced,
        }
    }

    /// What its failed and cancelled attempts cost.
    pub fn failed_cost(&self) -> Spend {
        Spend {
            usd: self.failed_cost_usd,
            unpriced: self.failed_unpriced,
        }
    }

    /// A model's failures in a row (see `consecutive_failures`).
    pub fn failures_of(&self, model: &str) -> u32 {
        self.in_a_row_by_model
            .iter()
            .find(|(m, _)| m == model)
            .map_or(0, |(_, n)| *n)
    }

    /// A failure that counts for the breaker, of an attempt on `model` when it is known.
    fn count_failure(&mut self, model: Option<&str>) {
        self.in_a_row = self.in_a_row.saturating_add(1);
        if let Some(model) = model {
            match self.in_a_row_by_model.iter_mut().find(|(m, _)| m == model) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => push_capped(
                    &mut self.in_a_row_by_model,
                    (model.to_string(), 1),
                    MODELS_KEPT,
                ),
            }
            self.sync_model(model);
        }
        self.recount();
    }

    /// The failures in a row are over: the provider's (`model` `None`) or one model's.
    fn clear_failures(&mut self, model: Option<&str>) {
        match model {
            None => self.in_a_row = 0,
            Some(model) => {
                if let Some((_, n)) = self.in_a_row_by_model.iter_mut().find(|(m, _)| m == model) {
                    *n = 0;
                }
                self.sync_model(model);
            }
        }
        self.recount();
    }

    /// The model's breaker shows the model's failures in a row.
    fn sync_model(&mut self, model: &str) {
        let n = self.failures_of(model);
        if let Some(m) = self.models.iter_mut().find(|m| m.model == model) {
            m.consecutive_failures = n;
        }
    }

    fn recount(&mut self) {
        self.consecutive_failures = if self.models.is_empty() {
            self.in_a_row
        } else {
            self.in_a_row_by_model
                .iter()
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0)
        };
    }

    /// Latency percentile in milliseconds (`q` in 0..=1), `None` before any sample.
    pub fn latency_ms(&self, q: f64) -> Option<u64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(q))
    }

    /// Share of attempts that succeeded, `None` before any ended.
    pub fn success_rate(&self) -> Option<f64> {
        let ended = self.successes + self.failures;
        (ended > 0).then(|| self.successes as f64 / ended as f64)
    }

    /// Attempts per second over the last `RATE_WINDOW` before `now`.
    pub fn rate_per_sec(&self, now: DateTime<Utc>) -> f64 {
        // At the very start of time there is no window to subtract: count everything.
        let since = now
            .checked_sub_signed(RATE_WINDOW)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let n = self.recent_attempts.iter().filter(|t| **t > since).count();
        n as f64 / RATE_WINDOW.as_seconds_f64()
    }

    /// Time left before an open breaker goes half-open.
    pub fn open_remaining(&self, now: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.open_until
            .map(|until| (until - now).max(chrono::TimeDelta::zero()))
    }

    /// The state of the breaker an attempt on `model` goes through: the model's own with
    /// `breaker = "model"` (closed until it first changes), else the provider's.
    pub fn breaker_of(&self, model: &str) -> BreakerState {
        if self.models.is_empty() {
            return self.breaker;
        }
        self.models
            .iter()
            .find(|m| m.model == model)
            .map_or(BreakerState::Closed, |m| m.state)
    }

    /// Show the most severe of the models' breakers as the provider's; among equals, the one in
    /// that state longest (an open one recovers first, so its countdown is the next thing to happen).
    fn show_most_severe_model(&mut self) {
        let shown = self
            .models
            .iter()
            .max_by(|a, b| (severity(a.state), b.since).cmp(&(severity(b.state), a.since)))
            .cloned();
        if let Some(m) = shown {
            self.breaker = m.state;
            self.breaker_since = Some(m.since);
            self.breaker_reason = m.reason;
            self.open_until = m.open_until;
        }
    }
}

/// 1 ms to 10 minutes, 3 significant digits: about 20 KiB per provider, whatever the traffic.
#[allow(clippy::expect_used)] // constant, valid bounds: hdrhistogram only rejects invalid ones
fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000, 3).expect("valid histogram bounds")
}

impl Tokens {
    /// The tokens a `usage` event reports (none for any other event).
    pub(super) fn of(kind: &EventKind) -> Tokens {
        match kind {
            EventKind::Usage {
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                ..
            } => Tokens {
                input: *input_tokens,
                output: *output_tokens,
                cache_read: *cache_read_tokens,
                cache_write: *cache_write_tokens,
            },
            _ => Tokens::default(),
        }
    }
}

impl Dashboard {
    /// The providers' part of an event. Every event naming a provider gives it a row.
    pub(super) fn fold_providers(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        match kind {
            EventKind::SessionStarted {
                mode,
                providers,
                breaker_threshold,
                breaker_counts,
                settings,
                pools,
                ..
            } => {
                self.ledger.breaker_counts.clone_from(breaker_counts);
                self.settings = settings
                    .iter()
                    .flatten()
                    .take(SETTINGS_KEPT)
                    .map(|(k, v)| (message(k), message(v)))
                    .collect();
                self.on_session_started(ts, *mode, providers, *breaker_threshold);
                self.on_pools(pools);
            }
            EventKind::RequestStarted { chain, .. } => {
                for name in chain.iter().take(CHAIN_KEPT) {
                    self.provider_index(ts, name, "", "");
                }
            }
            EventKind::AttemptStarted {
                request_id,
                attempt,
                provider,
                model,
                ..
            } => self.provider_attempt_started(ts, request_id, *attempt, provider, model),
            EventKind::AttemptFailed { .. } => self.provider_attempt_failed(ts, kind),
            EventKind::FirstEvent {
                provider,
                latency_ms,
                ..
            } => self.provider_first_event(ts, provider, *latency_ms),
            EventKind::AttemptSkipped { provider, .. }
            | EventKind::TextDelta { provider, .. }
            | EventKind::Rewind { provider, .. } => {
                self.provider_index(ts, provider, "", "");
            }
            EventKind::Usage {
                provider,
                model,
                cost_usd,
                unpriced,
                ..
            } => {
                let spent = Spend::of(finite(*cost_usd), *unpriced);
                self.provider_usage(ts, provider, model, Tokens::of(kind), spent);
            }
            EventKind::RequestFinished { .. } => self.provider_request_finished(ts, kind),
            EventKind::BreakerChanged { .. } => self.on_breaker_changed(ts, kind),
            EventKind::ProviderFlagged {
                provider,
                flag,
                reason,
            } => self.on_provider_flagged(ts, provider, *flag, reason),
            EventKind::OperatorAction {
                action: OperatorAction::SetFault,
                provider: Some(provider),
                detail,
                ..
            } => self.on_fault_set(ts, provider, detail),
            EventKind::FaultChanged {
                provider, fault, ..
            } => self.on_fault_set(ts, provider, fault),
            EventKind::ProbeStarted {
                provider, probe, ..
            } => {
                if let Some(view) = self.provider_mut(ts, provider) {
                    view.recovery.sent = view.recovery.sent.saturating_add(1);
                    view.recovery.in_flight = Some((*probe, ts));
                    view.recovery.next_at = None;
                }
            }
            EventKind::ProbeFinished { .. } => self.on_probe_finished(ts, kind),
            // Their part is `limits.rs`'s; the row exists once they name the provider.
            EventKind::RateLimits { provider, .. }
            | EventKind::ThrottleChanged { provider, .. } => {
                self.provider_index(ts, provider, "", "");
            }
            EventKind::OperatorAction { .. } | EventKind::RequestRejected { .. } => {}
            EventKind::ClusterChanged {
                instance,
                connected,
                redis,
                ..
            } => {
                self.fleet = Some(super::FleetLink {
                    instance: crate::text::one_line(instance, 64),
                    connected: *connected,
                    redis: crate::text::one_line(redis, 128),
                });
            }
        }
    }

    fn on_probe_finished(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        let EventKind::ProbeFinished {
            provider,
            probe,
            ok,
            class,
            cost_usd,
            unpriced,
            next_probe_ms,
            ..
        } = kind
        else {
            return;
        };
        let Some(view) = self.provider_mut(ts, provider) else {
            return;
        };
        let r = &mut view.recovery;
        r.in_flight = None;
        r.last = Some(ProbeEnd {
            probe: *probe,
            at: ts,
            outcome: if *ok { Ok(()) } else { Err(*class) },
        });
        if *ok {
            r.answered = r.answered.saturating_add(1);
        }
        r.next_at = next_probe_ms.map(|ms| plus_millis(ts, ms));
        let cost = finite(*cost_usd);
        r.cost_usd += cost;
        r.unpriced += u64::from(*unpriced);
        view.cost_usd += cost;
        view.unpriced += u64::from(*unpriced);
    }

    /// The error classes the session's breakers count, when they differ from the default
    /// policy's (`session_started.breaker_counts`).
    pub fn breaker_counts(&self) -> Option<&[ErrorClass]> {
        self.ledger.breaker_counts.as_deref()
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderView> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The index of the provider's view, created on its first appearance; `None` once
    /// `PROVIDERS_KEPT` views exist.
    pub(super) fn provider_index(
        &mut self,
        ts: DateTime<Utc>,
        name: &str,
        protocol: &str,
        model: &str,
    ) -> Option<usize> {
        if let Some(i) = self.providers.iter().position(|p| p.name == name) {
            return Some(i);
        }
        if self.providers.len() >= PROVIDERS_KEPT {
            return None;
        }
        let view = self.new_provider(self.started_at.unwrap_or(ts), name, protocol, model);
        self.providers.push(view);
        Some(self.providers.len() - 1)
    }

    /// The provider's view, created on its first appearance (while there is room).
    pub(super) fn provider_mut(
        &mut self,
        ts: DateTime<Utc>,
        name: &str,
    ) -> Option<&mut ProviderView> {
        let i = self.provider_index(ts, name, "", "")?;
        self.providers.get_mut(i)
    }

    /// A provider's view, its breaker closed since `since` (breakers start closed).
    fn new_provider(
        &self,
        since: DateTime<Utc>,
        name: &str,
        protocol: &str,
        model: &str,
    ) -> ProviderView {
        let mut view = ProviderView::new(name, protocol, model);
        view.threshold = self.ledger.threshold;
        view.breaker_since = Some(since);
        view.timeline.push_back(BreakerSpan {
            from: since,
            state: BreakerState::Closed,
        });
        view
    }

    pub(super) fn on_session_started(
        &mut self,
        ts: DateTime<Utc>,
        mode: Mode,
        infos: &[ProviderInfo],
        threshold: Option<u32>,
    ) {
        self.mode = Some(mode);
        self.started_at = Some(ts);
        self.ledger.threshold = threshold;
        // The session's order first; providers seen before it (a recording joined late) follow.
        let mut ordered: Vec<ProviderView> = Vec::with_capacity(infos.len() + self.providers.len());
        for info in infos {
            if ordered.iter().any(|p| p.name == info.name) {
                continue;
            }
            if let Some(i) = self.providers.iter().position(|p| p.name == info.name) {
                let mut view = self.providers.remove(i);
                info.protocol.as_str().clone_into(&mut view.protocol);
                view.model.clone_from(&info.model);
                ordered.push(view);
            } else if ordered.len() + self.providers.len() < PROVIDERS_KEPT {
                ordered.push(self.new_provider(
                    ts,
                    &info.name,
                    info.protocol.as_str(),
                    &info.model,
                ));
            }
        }
        ordered.append(&mut self.providers);
        for info in infos {
            if let Some(view) = ordered.iter_mut().find(|p| p.name == info.name) {
                view.fault = info.fault.as_deref().map(message);
            }
        }
        for view in &mut ordered {
            view.threshold = threshold;
        }
        self.providers = ordered;
    }

    /// The session's pools: each member's view names its pool and weight, and the members of a
    /// pool stand together, where the first of them stood.
    fn on_pools(&mut self, pools: &[PoolInfo]) {
        self.pools = pools
            .iter()
            .take(PROVIDERS_KEPT)
            .map(|p| PoolView {
                name: p.name.clone(),
                strategy: p.strategy,
            })
            .collect();
        for view in &mut self.providers {
            let member = pools.iter().find_map(|p| {
                let m = p.members.iter().find(|m| m.provider == view.name)?;
                Some((p.name.clone(), m.weight))
            });
            (view.pool, view.weight) = member.map_or((None, 1), |(p, w)| (Some(p), w));
        }
        let mut grouped: Vec<ProviderView> = Vec::with_capacity(self.providers.len());
        for view in std::mem::take(&mut self.providers) {
            let after = view
                .pool
                .as_ref()
                .and_then(|pool| grouped.iter().rposition(|v| v.pool.as_ref() == Some(pool)));
            match after {
                Some(i) => grouped.insert(i + 1, view),
                None => grouped.push(view),
            }
        }
        self.providers = grouped;
    }

    /// An attempt started at `provider`: its traffic, and a probe if its breaker is half-open.
    pub(super) fn provider_attempt_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        attempt: u32,
        provider: &str,
        model: &str,
    ) {
        let now = self.now.unwrap_or(ts);
        let Some(i) = self.provider_index(ts, provider, "", model) else {
            return;
        };
        let view = &mut self.providers[i];
        view.attempts += 1;
        note_attempt_time(&mut view.recent_attempts, ts, now);
        if view.breaker_of(model) != BreakerState::HalfOpen {
            return;
        }
        view.probes_in_flight = view.probes_in_flight.saturating_add(1);
        if let Some(m) = view.models.iter_mut().find(|m| m.model == model) {
            m.probes_in_flight = m.probes_in_flight.saturating_add(1);
        }
        let forgotten = self.ledger.add_probe(Probe {
            provider: provider.to_string(),
            model: model.to_string(),
            request_id: request_id.to_string(),
            attempt,
        });
        self.forget_probes(forgotten);
    }

    pub(super) fn provider_first_event(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        latency_ms: u64,
    ) {
        if let Some(view) = self.provider_mut(ts, provider) {
            // Clamped into the histogram's range: a wild value must not be lost or panic.
            view.latency.saturating_record(latency_ms);
            push_ring(
                &mut view.latency_series,
                LatencyPoint {
                    at: ts,
                    latency_ms: Some(latency_ms),
                },
                LATENCY_POINTS_KEPT,
            );
        }
    }

    /// An attempt failed: what it cost its provider, and (unless it was cancelled) its health.
    fn provider_attempt_failed(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        let EventKind::AttemptFailed {
            request_id,
            attempt,
            provider,
            phase,
            class,
            retryable,
            message: text,
            status,
            retry_after_ms,
            elapsed_ms,
        } = kind
        else {
            return;
        };
        let detail = ErrorDetail {
            at: ts,
            provider: provider.clone(),
            request_id: bounded(request_id, ID_CHARS_KEPT),
            attempt: *attempt,
            phase: *phase,
            class: *class,
            retryable: *retryable,
            status: *status,
            retry_after_ms: *retry_after_ms,
            elapsed_ms: *elapsed_ms,
            message: message(text),
        };
        let spent = self.ledger.take_usage(request_id, provider);
        let counted = counted_by_breaker(self.ledger.breaker_counts.as_deref(), *class);
        let model = self.attempt_model(request_id, *attempt, provider);
        let Some(i) = self.provider_index(ts, provider, "", "") else {
            return;
        };
        self.totals.failed_unpriced += spent.unpriced;
        let view = &mut self.providers[i];
        // Cancelled attempts (a lost hedge, a caller gone) were paid for all the same…
        view.failed_cost_usd += spent.usd;
        view.failed_unpriced += spent.unpriced;
        // …but they say nothing about the provider's health.
        if *class != ErrorClass::Cancelled {
            view.failures += 1;
            let failed = LatencyPoint {
                at: ts,
                latency_ms: None,
            };
            push_ring(&mut view.latency_series, failed, LATENCY_POINTS_KEPT);
            if counted {
                view.count_failure(model.as_deref());
            }
            let error = LastError {
                class: *class,
                phase: *phase,
                retryable: *retryable,
                message: message(text),
                at: ts,
            };
            self.count_error(provider, &error);
            self.providers[i].last_error = Some(error);
            let class_errors = self.class_errors.entry(*class).or_default();
            push_ring(class_errors, detail.clone(), ERRORS_KEPT);
            push_ring(&mut self.providers[i].recent_errors, detail, ERRORS_KEPT);
        }
        self.release_probes(|p| {
            p.provider == *provider && p.request_id == *request_id && p.attempt == *attempt
        });
    }

    fn count_error(&mut self, provider: &str, error: &LastError) {
        let entry = self
            .errors
            .entry((provider.to_string(), error.class))
            .or_insert_with(|| ErrorCount {
                count: 0,
                retryable: error.retryable,
                last_message: String::new(),
                last_at: error.at,
            });
        entry.count += 1;
        entry.retryable = error.retryable;
        error.message.clone_into(&mut entry.last_message);
        entry.last_at = error.at;
    }

    pub(super) fn provider_usage(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        model: &str,
        tokens: Tokens,
        spent: Spend,
    ) {
        if let Some(i) = self.provider_index(ts, provider, "", model) {
            let view = &mut self.providers[i];
            let t = &mut view.tokens;
            t.input = t.input.saturating_add(tokens.input);
            t.output = t.output.saturating_add(tokens.output);
            t.cache_read = t.cache_read.saturating_add(tokens.cache_read);
            t.cache_write = t.cache_write.saturating_add(tokens.cache_write);
            view.cost_usd += spent.usd;
            view.unpriced += spent.unpriced;
        }
    }

    /// A request ended: a success for the provider that answered, and its probes are over.
    fn provider_request_finished(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        let EventKind::RequestFinished {
            request_id,
            outcome,
            provider,
            ..
        } = kind
        else {
            return;
        };
        if *outcome == Outcome::Ok
            && let Some(name) = provider
        {
            let model = self.answering_model(request_id, name);
            if let Some(view) = self.provider_mut(ts, name) {
                view.successes += 1;
                view.clear_failures(None);
                if let Some(model) = model {
                    view.clear_failures(Some(&model));
                }
            }
        }
        self.release_probes(|p| p.request_id == *request_id);
    }

    fn on_breaker_changed(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        let EventKind::BreakerChanged {
            provider,
            model,
            from,
            to,
            reason,
            recovery_ms,
            ..
        } = kind
        else {
            return;
        };
        let now = self.now.unwrap_or(ts);
        let Some(view) = self.provider_mut(ts, provider) else {
            return;
        };
        let change = BreakerChange {
            at: ts,
            model: model.as_deref().map(message),
            from: *from,
            to: *to,
            reason: message(reason),
            recovery_ms: *recovery_ms,
        };
        push_ring(&mut view.breaker_history, change, BREAKER_HISTORY_KEPT);
        let shown_before = view.breaker;
        let open_until = match to {
            BreakerState::Open => recovery_ms.map(|ms| plus_millis(ts, ms)),
            _ => None,
        };
        match model {
            None => {
                view.breaker = *to;
                view.breaker_since = Some(ts);
                view.breaker_reason = message(reason);
                view.open_until = open_until;
            }
            Some(model) => {
                let breaker = ModelBreaker {
                    model: model.clone(),
                    state: *to,
                    since: ts,
                    reason: message(reason),
                    open_until,
                    probes_in_flight: 0,
                    consecutive_failures: view.failures_of(model),
                };
                set_model_breaker(&mut view.models, breaker);
                view.show_most_severe_model();
            }
        }
        // The timeline is the row's: a model's change that leaves the row as it was adds nothing.
        if model.is_none() || view.breaker != shown_before {
            let span = BreakerSpan {
                from: ts,
                state: view.breaker,
            };
            push_span(&mut view.timeline, span, now);
        }
        if *to != BreakerState::Open {
            view.recovery.next_at = None;
        }
        if *to == BreakerState::Closed {
            view.clear_failures(model.as_deref());
        }
        view.recount();
        if *to == BreakerState::HalfOpen {
            // A new half-open period starts with no probe out; forget any whose end was lost.
            self.release_probes(|p| {
                p.provider == *provider && model.as_ref().is_none_or(|m| p.model == *m)
            });
        }
    }

    pub(super) fn on_provider_flagged(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        flag: ProviderFlag,
        reason: &str,
    ) {
        if let Some(view) = self.provider_mut(ts, provider) {
            view.flagged = Some(message(&format!("{flag}: {reason}")));
        }
    }

    /// The operator set a simulated fault on `provider`.
    pub(super) fn on_fault_set(&mut self, ts: DateTime<Utc>, provider: &str, detail: &str) {
        if let Some(view) = self.provider_mut(ts, provider) {
            view.fault = Some(message(detail));
        }
    }

    /// Forget the probes that `ended` says have ended, each exactly once.
    pub(super) fn release_probes(&mut self, ended: impl Fn(&Probe) -> bool) {
        let released = self.ledger.release_probes(ended);
        self.forget_probes(released);
    }

    fn forget_probes(&mut self, probes: impl IntoIterator<Item = Probe>) {
        for probe in probes {
            if let Some(view) = self.providers.iter_mut().find(|p| p.name == probe.provider) {
                view.probes_in_flight = view.probes_in_flight.saturating_sub(1);
                if let Some(m) = view.models.iter_mut().find(|m| m.model == probe.model) {
                    m.probes_in_flight = m.probes_in_flight.saturating_sub(1);
                }
            }
        }
    }
}

/// Replace the model's breaker, or add it (the oldest goes past `MODELS_KEPT`).
fn set_model_breaker(models: &mut Vec<ModelBreaker>, breaker: ModelBreaker) {
    match models.iter_mut().find(|m| m.model == breaker.model) {
        // The probes still out stay counted until they end.
        Some(m) => {
            *m = ModelBreaker {
                probes_in_flight: m.probes_in_flight,
                ..breaker
            }
        }
        None => push_capped(models, breaker, MODELS_KEPT),
    }
}

/// Record an attempt's start for the rate, dropping those out of the window.
fn note_attempt_time(times: &mut VecDeque<DateTime<Utc>>, at: DateTime<Utc>, now: DateTime<Utc>) {
    if let Some(cutoff) = now.checked_sub_signed(RATE_WINDOW) {
        while times.front().is_some_and(|t| *t <= cutoff) {
            times.pop_front();
        }
    }
    push_ring(times, at, RATE_POINTS_KEPT);
}

/// Add a breaker span and drop those that ended before the timeline's window. A span ends where the
/// next begins, so the one in force at the window's start stays and its bar can be drawn from there.
fn push_span(timeline: &mut VecDeque<BreakerSpan>, span: BreakerSpan, now: DateTime<Utc>) {
    timeline.push_back(span);
    if let Some(cutoff) = now.checked_sub_signed(TIMELINE_KEPT) {
        while timeline.len() > 1 && timeline.get(1).is_some_and(|s| s.from <= cutoff) {
            timeline.pop_front();
        }
    }
    while timeline.len() > TIMELINE_SPANS_KEPT {
        timeline.pop_front();
    }
}

/// `ts` plus `ms`, saturating at the end of time.
pub(super) fn plus_millis(ts: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::TimeDelta::try_milliseconds)
        .and_then(|d| ts.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::dashboard::requests::AttemptState;
    use crate::console::dashboard::script::*;
    use chrono::TimeDelta;

    #[test]
    fn a_pools_members_stand_together_where_the_first_of_them_stood() {
        let mut started = session(&["us", "openai", "eu", "local"], Some(5));
        if let EventKind::SessionStarted { pools, .. } = &mut started {
            pools.push(PoolInfo {
                name: "claude".into(),
                strategy: PoolStrategy::LeastInFlight,
                members: ["us", "eu"]
                    .iter()
                    .zip([3, 1])
                    .map(|(p, w)| crate::event::PoolMemberInfo {
                        provider: p.to_string(),
                        weight: w,
                    })
                    .collect(),
            });
        }
        let dash = Script::default().at(0, started).fold();
        let order: Vec<(&str, Option<&str>, u32)> = dash
            .providers
            .iter()
            .map(|p| (p.name.as_str(), p.pool.as_deref(), p.weight))
            .collect();
        assert_eq!(
            order,
            [
                ("us", Some("claude"), 3),
                ("eu", Some("claude"), 1),
                ("openai", None, 1),
                ("local", None, 1)
            ]
        );
        assert_eq!(
            dash.pools,
            [PoolView {
                name: "claude".into(),
                strategy: PoolStrategy::LeastInFlight
            }]
        );
    }

    #[test]
    fn the_session_names_the_providers_their_order_and_threshold() {
        let dash = Script::default()
            .at(0, session(&["anthropic", "openai", "anthropic"], Some(3)))
            .fold();
        assert_eq!(dash.mode, Some(Mode::Demo));
        assert_eq!(dash.started_at, Some(at(0)));
        let names: Vec<&str> = dash.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["anthropic", "openai"]);
        let a = &dash.providers[0];
        assert_eq!(
            (a.protocol.as_str(), a.model.as_str()),
            ("anthropic", "anthropic-model")
        );
        assert_eq!(a.threshold, Some(3));
        assert_eq!(a.breaker, BreakerState::Closed);
        assert_eq!(
            a.timeline,
            [BreakerSpan {
                from: at(0),
                state: BreakerState::Closed
            }]
        );
    }

    #[test]
    fn breaker_transitions_count_down_and_draw_a_timeline() {
        let mut s = Script::default();
        s.at(0, session(&["anthropic"], Some(5))).at(
            10_000,
            breaker(
                "anthropic",
                "closed",
                "open",
                "5 consecutive failures",
                Some(30_000),
            ),
        );
        let mut dash = s.fold();
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(a.breaker, BreakerState::Open);
        assert_eq!(a.breaker_since, Some(at(10_000)));
        assert_eq!(a.breaker_reason, "5 consecutive failures");
        assert_eq!(a.open_until, Some(at(40_000)));
        let now = dash.now.unwrap();
        assert_eq!(a.open_remaining(now), Some(TimeDelta::seconds(30)));

        dash.tick(at(25_000));
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(
            a.open_remaining(dash.now.unwrap()),
            Some(TimeDelta::seconds(15))
        );
        dash.tick(at(45_000));
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(a.open_remaining(dash.now.unwrap()), Some(TimeDelta::zero()));

        Script::default()
            .at(
                45_000,
                breaker("anthropic", "open", "half_open", "recovery elapsed", None),
            )
            .at(
                46_000,
                breaker("anthropic", "half_open", "closed", "probe succeeded", None),
            )
            .at(
                50_000,
                breaker("anthropic", "closed", "forced_open", "operator: trip", None),
            )
            .apply_to(&mut dash);
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(a.breaker, BreakerState::ForcedOpen);
        assert_eq!(a.open_until, None);
        assert_eq!(a.open_remaining(at(50_000)), None);
        let spans: Vec<(DateTime<Utc>, BreakerState)> =
            a.timeline.iter().map(|s| (s.from, s.state)).collect();
        assert_eq!(
            spans,
            [
                (at(0), BreakerState::Closed),
                (at(10_000), BreakerState::Open),
                (at(45_000), BreakerState::HalfOpen),
                (at(46_000), BreakerState::Closed),
                (at(50_000), BreakerState::ForcedOpen),
            ]
        );
    }

    #[test]
    fn the_timeline_keeps_the_span_in_force_at_the_window_start() {
        let min = 60_000;
        let dash = Script::default()
            .at(0, session(&["a"], None))
            .at(min, breaker("a", "closed", "open", "x", Some(1000)))
            .at(2 * min, breaker("a", "open", "closed", "x", None))
            .at(40 * min, breaker("a", "closed", "open", "x", Some(1000)))
            .fold();
        // The window starts at 10 min, inside the closed span that began at 2 min.
        let spans: Vec<_> = dash.providers[0]
            .timeline
            .iter()
            .map(|s| (s.from, s.state))
            .collect();
        assert_eq!(
            spans,
            [
                (at(2 * min), BreakerState::Closed),
                (at(40 * min), BreakerState::Open)
            ]
        );

        // A breaker flapping every millisecond stays within the span cap.
        let mut s = Script::default();
        s.at(0, session(&["a"], None));
        for i in 0..(10 * TIMELINE_SPANS_KEPT as i64) {
            let (from, to) = if i % 2 == 0 {
                ("closed", "open")
            } else {
                ("open", "closed")
            };
            s.at(i, breaker("a", from, to, "flap", Some(10)));
        }
        let dash = s.fold();
        assert_eq!(dash.providers[0].timeline.len(), TIMELINE_SPANS_KEPT);
    }

    fn probe_started(provider: &str, probe: u32) -> EventKind {
        EventKind::ProbeStarted {
            provider: provider.into(),
            model: None,
            target_model: "m".into(),
            probe,
        }
    }

    fn probe_finished(provider: &str, probe: u32, ok: bool) -> EventKind {
        EventKind::ProbeFinished {
            provider: provider.into(),
            model: None,
            probe,
            ok,
            latency_ms: 50,
            class: (!ok).then_some(ErrorClass::Overloaded),
            status: None,
            message: None,
            input_tokens: 8,
            output_tokens: 1,
            cost_usd: 0.25,
            next_probe_ms: (!ok).then_some(3_000),
            unpriced: false,
        }
    }

    #[test]
    fn recovery_probes_are_followed_counted_and_costed() {
        use crate::console::panels::next_text;
        let mut s = Script::default();
        s.at(0, session(&["a", "b"], None))
            .at(1_000, breaker("a", "closed", "open", "x", Some(30_000)))
            .at(3_000, probe_started("a", 1))
            .at(3_050, probe_finished("a", 1, false))
            .at(6_000, probe_started("a", 2));
        let mut dash = s.fold();
        dash.tick(at(6_500));
        let a = dash.provider("a").unwrap();
        assert_eq!((a.recovery.sent, a.recovery.answered), (2, 0));
        assert_eq!(a.recovery.in_flight, Some((2, at(6_000))));
        assert_eq!(
            next_text(a, dash.now).as_deref(),
            Some("recovery probe 2 out")
        );

        let mut s = Script::default();
        s.at(6_050, probe_finished("a", 2, false));
        s.apply_to(&mut dash);
        dash.tick(at(7_050));
        let a = dash.provider("a").unwrap();
        assert_eq!(a.recovery.next_at, Some(at(9_050)));
        assert_eq!(next_text(a, dash.now).unwrap().trim_end(), "probe in 2s");
        assert_eq!(
            a.recovery.last,
            Some(ProbeEnd {
                probe: 2,
                at: at(6_050),
                outcome: Err(Some(ErrorClass::Overloaded))
            })
        );

        let mut s = Script::default();
        s.at(9_000, probe_started("a", 3))
            .at(9_040, probe_finished("a", 3, true))
            .at(
                9_041,
                breaker(
                    "a",
                    "open",
                    "half_open",
                    "recovery probe 3 answered in 40 ms",
                    None,
                ),
            );
        s.apply_to(&mut dash);
        let a = dash.provider("a").unwrap();
        assert_eq!((a.recovery.sent, a.recovery.answered), (3, 1));
        assert_eq!(a.recovery.next_at, None);
        assert_eq!(a.breaker, BreakerState::HalfOpen);
        // Probes are paid for: in the provider's cost, and apart.
        assert!((a.recovery.cost_usd - 0.75).abs() < 1e-9);
        assert!((a.cost_usd - 0.75).abs() < 1e-9);
        assert_eq!(
            dash.provider("b").unwrap().recovery,
            RecoveryProbes::default()
        );
    }

    #[test]
    fn half_open_probes_are_released_exactly_once() {
        let mut s = Script::default();
        s.at(0, session(&["a", "b"], None))
            .at(1_000, breaker("a", "closed", "open", "x", Some(30_000)))
            // Attempts while open or closed are not probes.
            .at(1_500, request("r0", &["a"]))
            .at(1_600, attempt("r0", 1, "a"))
            .at(
                31_000,
                breaker("a", "open", "half_open", "recovery elapsed", None),
            )
            .at(31_100, request("r1", &["a", "b"]))
            .at(31_200, attempt("r1", 1, "a"));
        let mut dash = s.fold();
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 1);
        assert_eq!(dash.provider("b").unwrap().probes_in_flight, 0);

        let mut s = Script::default();
        s.at(
            31_300,
            failed("r1", 1, "a", ErrorClass::Overloaded, Phase::Headers),
        )
        .at(
            31_400,
            breaker("a", "half_open", "open", "probe failed", Some(60_000)),
        )
        .at(31_500, attempt("r1", 2, "b"))
        .at(31_600, ok("r1", "b", 0.0, 0.0, 0.0))
        .at(31_700, error("r0", ErrorClass::Overloaded));
        s.apply_to(&mut dash);
        // Released by the failure, not again by the request's end.
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 0);

        let mut s = Script::default();
        s.at(
            92_000,
            breaker("a", "open", "half_open", "recovery elapsed", None),
        )
        .at(92_100, request("r2", &["a"]))
        .at(92_100, request("r3", &["a"]))
        .at(92_200, attempt("r2", 1, "a"))
        .at(92_200, attempt("r3", 1, "a"));
        s.apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 2);
        Script::default()
            .at(92_300, ok("r2", "a", 0.0, 0.0, 0.0))
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 1);
        Script::default()
            .at(
                92_400,
                failed("r3", 1, "a", ErrorClass::Timeout, Phase::FirstEvent),
            )
            .at(
                92_500,
                failed("r3", 1, "a", ErrorClass::Timeout, Phase::FirstEvent),
            )
            .at(92_600, error("r3", ErrorClass::Timeout))
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 0);

        // A probe whose end was lost is forgotten when the next half-open period starts.
        Script::default()
            .at(93_000, request("r4", &["a"]))
            .at(93_000, attempt("r4", 1, "a"))
            .at(
                93_100,
                breaker("a", "half_open", "open", "probe failed", Some(1)),
            )
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 1);
        Script::default()
            .at(
                94_000,
                breaker("a", "open", "half_open", "recovery elapsed", None),
            )
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().probes_in_flight, 0);
        assert!(dash.ledger.probes.is_empty());
    }

    #[test]
    fn consecutive_failures_reset_by_success_and_by_closing() {
        let mut s = Script::default();
        s.at(0, session(&["a", "b"], Some(5)))
            .at(1, request("r1", &["a", "b"]));
        for n in 1..=3 {
            s.at(10 * n as i64, attempt("r1", n, "a")).at(
                10 * n as i64 + 5,
                failed("r1", n, "a", ErrorClass::Overloaded, Phase::Headers),
            );
        }
        // A bad request is the caller's fault, not the provider's health.
        s.at(40, attempt("r1", 4, "a")).at(
            45,
            failed("r1", 4, "a", ErrorClass::BadRequest, Phase::Headers),
        );
        let mut dash = s.fold();
        let a = dash.provider("a").unwrap();
        assert_eq!((a.consecutive_failures, a.failures), (3, 4));

        Script::default()
            .at(50, attempt("r1", 5, "a"))
            .at(60, ok("r1", "a", 0.0, 0.0, 0.0))
            .apply_to(&mut dash);
        let a = dash.provider("a").unwrap();
        assert_eq!((a.consecutive_failures, a.successes), (0, 1));
        assert_eq!(a.success_rate(), Some(0.2));

        Script::default()
            .at(70, request("r2", &["a", "b"]))
            .at(71, attempt("r2", 1, "a"))
            .at(
                72,
                failed("r2", 1, "a", ErrorClass::ServerError, Phase::Headers),
            )
            .at(73, attempt("r2", 2, "a"))
            .at(
                74,
                failed("r2", 2, "a", ErrorClass::Timeout, Phase::FirstEvent),
            )
            .at(75, attempt("r2", 3, "b"))
            .at(76, ok("r2", "b", 0.0, 0.0, 0.0))
            .apply_to(&mut dash);
        // Another provider's success is not this one's.
        assert_eq!(dash.provider("a").unwrap().consecutive_failures, 2);
        assert_eq!(dash.totals.failed_over, 1);

        Script::default()
            .at(80, breaker("a", "closed", "open", "x", Some(100)))
            .at(81, breaker("a", "open", "half_open", "x", None))
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().consecutive_failures, 2);
        Script::default()
            .at(
                90,
                breaker("a", "half_open", "closed", "probe succeeded", None),
            )
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().consecutive_failures, 0);
    }

    #[test]
    fn a_cancelled_attempt_is_paid_for_but_not_a_failure() {
        // A hedge: b's first event wins, a's attempt (a half-open probe) is cancelled.
        let dash = Script::default()
            .at(0, session(&["a", "b"], None))
            .at(1, breaker("a", "closed", "open", "x", Some(10)))
            .at(20, breaker("a", "open", "half_open", "x", None))
            .at(30, request("r1", &["a", "b"]))
            .at(31, attempt("r1", 1, "a"))
            .at(40, attempt("r1", 2, "b"))
            .at(50, first("r1", 2, "b", 10))
            .at(51, usage("r1", "a", 0.0004))
            .at(
                52,
                failed("r1", 1, "a", ErrorClass::Cancelled, Phase::FirstEvent),
            )
            .fold();
        let a = dash.provider("a").unwrap();
        assert_eq!(
            (a.failures, a.consecutive_failures, a.probes_in_flight),
            (0, 0, 0)
        );
        assert!(a.last_error.is_none());
        assert!(a.latency_series.is_empty());
        assert!(close(a.failed_cost_usd, 0.0004));
        assert!(dash.errors.is_empty());
        let r = dash.request("r1").unwrap();
        assert!(matches!(
            r.attempts[0].state,
            AttemptState::Failed {
                class: ErrorClass::Cancelled,
                ..
            }
        ));
        assert_eq!(r.provider.as_deref(), Some("b"));
    }

    #[test]
    fn unknown_providers_appear_in_order_of_first_appearance() {
        let mut dash = Script::default()
            .at(0, attempt("r1", 1, "mystery"))
            .at(1, usage("r1", "other", 0.0))
            .fold();
        let names: Vec<&str> = dash.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["mystery", "other"]);
        let m = &dash.providers[0];
        assert_eq!(
            (m.protocol.as_str(), m.model.as_str()),
            ("", "mystery-model")
        );
        assert_eq!(m.attempts, 1);
        assert_eq!(
            m.timeline.front().map(|s| (s.from, s.state)),
            Some((at(0), BreakerState::Closed))
        );

        // A session arriving late puts its providers first, and gives everyone its threshold.
        Script::default()
            .at(2, session(&["anthropic", "other"], Some(4)))
            .at(
                3,
                breaker("anthropic/claude", "closed", "open", "x", Some(1)),
            )
            .apply_to(&mut dash);
        let names: Vec<&str> = dash.providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["anthropic", "other", "mystery", "anthropic/claude"]);
        assert_eq!(dash.providers[1].protocol, "anthropic");
        assert!(dash.providers.iter().all(|p| p.threshold == Some(4)));
        // Late providers' timelines start with the session.
        assert_eq!(dash.providers[3].timeline[0].from, at(2));

        // A stream naming endless providers cannot grow the dashboard without bound.
        let mut s = Script::default();
        for i in 0..1_000 {
            s.at(4, skipped("r1", &format!("p{i}"), "breaker_open"));
        }
        s.apply_to(&mut dash);
        assert_eq!(dash.providers.len(), PROVIDERS_KEPT);
    }

    #[test]
    fn operator_faults_and_flags_are_shown_on_the_provider() {
        let dash = Script::default()
            .at(0, session(&["anthropic"], None))
            .at(1, operator("set_fault", Some("anthropic"), "overloaded"))
            .at(2, operator("trip", Some("anthropic"), ""))
            .at(3, operator("set_fault", None, "none"))
            .at(
                4,
                EventKind::ProviderFlagged {
                    provider: "anthropic".into(),
                    flag: crate::event::ProviderFlag::Misconfigured,
                    reason: "auth: invalid x-api-key".into(),
                },
            )
            .fold();
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(a.fault.as_deref(), Some("overloaded"));
        assert_eq!(
            a.flagged.as_deref(),
            Some("misconfigured: auth: invalid x-api-key")
        );
        assert_eq!(dash.providers.len(), 1);
    }

    #[test]
    fn severity_orders_the_states_by_how_much_traffic_they_hold_back() {
        use BreakerState::*;
        let mut states = [Closed, ForcedOpen, HalfOpen, ForcedClosed, Open];
        states.sort_by_key(|s| std::cmp::Reverse(severity(*s)));
        assert_eq!(states, [ForcedOpen, Open, HalfOpen, ForcedClosed, Closed]);
    }

    /// Two models of one provider, each with its own breaker: one row, each model's state kept,
    /// the row showing the most severe; probes and the timeline follow the models' breakers.
    #[test]
    fn per_model_breakers_share_one_row_shown_by_the_most_severe() {
        let mut s = Script::default();
        s.at(0, session(&["p", "q"], Some(2))).at(
            1_000,
            model_breaker("p", "m1", ("closed", "open"), "2 failures", Some(30_000)),
        );
        let mut dash = s.fold();
        assert_eq!(dash.providers.len(), 2, "one row per provider");
        let p = dash.provider("p").unwrap();
        assert_eq!(
            (p.breaker, p.breaker_since, p.open_until),
            (BreakerState::Open, Some(at(1_000)), Some(at(31_000)))
        );
        assert_eq!(p.breaker_reason, "2 failures");
        assert_eq!(p.models.len(), 1);
        assert_eq!(p.breaker_of("m1"), BreakerState::Open);
        assert_eq!(p.breaker_of("m2"), BreakerState::Closed);

        // The operator trips the provider: every model's breaker reports, the row shows forced open.
        Script::default()
            .at(
                2_000,
                model_breaker("p", "m1", ("open", "forced_open"), "operator: trip", None),
            )
            .at(
                2_000,
                model_breaker("p", "m2", ("closed", "forced_open"), "operator: trip", None),
            )
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!((p.breaker, p.open_until), (BreakerState::ForcedOpen, None));
        assert_eq!(p.breaker_reason, "operator: trip");
        let models: Vec<(&str, BreakerState)> = p
            .models
            .iter()
            .map(|m| (m.model.as_str(), m.state))
            .collect();
        assert_eq!(
            models,
            [
                ("m1", BreakerState::ForcedOpen),
                ("m2", BreakerState::ForcedOpen)
            ]
        );

        // Reset: m1 fails again and opens, m2 stays closed; the row shows m1's open state.
        Script::default()
            .at(
                3_000,
                model_breaker(
                    "p",
                    "m1",
                    ("forced_open", "closed"),
                    "operator: reset",
                    None,
                ),
            )
            .at(
                3_000,
                model_breaker(
                    "p",
                    "m2",
                    ("forced_open", "closed"),
                    "operator: reset",
                    None,
                ),
            )
            .at(
                4_000,
                model_breaker("p", "m1", ("closed", "open"), "2 failures", Some(10_000)),
            )
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!(
            (p.breaker, p.breaker_since, p.open_until),
            (BreakerState::Open, Some(at(4_000)), Some(at(14_000)))
        );
        assert_eq!(p.models[1].state, BreakerState::Closed);

        // Half-open: an attempt on m1 is a probe, one on m2 is not.
        Script::default()
            .at(
                14_000,
                model_breaker("p", "m1", ("open", "half_open"), "recovery elapsed", None),
            )
            .at(14_100, request("r1", &["p"]))
            .at(14_100, attempt_on("r1", 1, "p", "m1"))
            .at(14_100, request("r2", &["p"]))
            .at(14_100, attempt_on("r2", 1, "p", "m2"))
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!((p.breaker, p.probes_in_flight), (BreakerState::HalfOpen, 1));
        let probes: Vec<u32> = p.models.iter().map(|m| m.probes_in_flight).collect();
        assert_eq!(probes, [1, 0]);

        // m2 opening while m1 is half-open: the row shows the more severe, open.
        Script::default()
            .at(
                14_200,
                model_breaker("p", "m2", ("closed", "open"), "2 failures", Some(5_000)),
            )
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!(
            (p.breaker, p.open_until),
            (BreakerState::Open, Some(at(19_200)))
        );
        assert_eq!(p.probes_in_flight, 1, "m2's change leaves m1's probe out");
        assert_eq!(p.models[0].probes_in_flight, 1);

        // Both close: the row is closed; its timeline has one span per change of the row's state.
        Script::default()
            .at(14_300, ok("r1", "p", 0.0, 0.0, 0.0))
            .at(
                14_400,
                model_breaker("p", "m1", ("half_open", "closed"), "probe succeeded", None),
            )
            .at(
                19_200,
                model_breaker("p", "m2", ("open", "half_open"), "recovery elapsed", None),
            )
            .at(
                19_300,
                model_breaker("p", "m2", ("half_open", "closed"), "probe succeeded", None),
            )
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!((p.breaker, p.probes_in_flight), (BreakerState::Closed, 0));
        let spans: Vec<(DateTime<Utc>, BreakerState)> =
            p.timeline.iter().map(|s| (s.from, s.state)).collect();
        assert_eq!(
            spans,
            [
                (at(0), BreakerState::Closed),
                (at(1_000), BreakerState::Open),
                (at(2_000), BreakerState::ForcedOpen),
                (at(3_000), BreakerState::Closed),
                (at(4_000), BreakerState::Open),
                (at(14_000), BreakerState::HalfOpen),
                (at(14_200), BreakerState::Open),
                (at(19_200), BreakerState::HalfOpen),
                (at(19_300), BreakerState::Closed),
            ]
        );
        assert!(dash.ledger.probes.is_empty());
        assert_eq!(dash.provider("q").unwrap().breaker, BreakerState::Closed);
    }

    /// With `[policy.server_error] breaker = false` the session says which classes the breakers
    /// count; the failures in a row follow it, not the default policy.
    #[test]
    fn consecutive_failures_follow_the_sessions_breaker_counts() {
        let counted: Vec<ErrorClass> = ErrorClass::ALL
            .iter()
            .copied()
            .filter(|c| {
                *c != ErrorClass::ServerError
                    && crate::engine::classify::counted_by_breaker(None, *c)
            })
            .collect();
        let mut session = session(&["a"], Some(3));
        if let EventKind::SessionStarted { breaker_counts, .. } = &mut session {
            *breaker_counts = Some(counted);
        }
        let mut s = Script::default();
        s.at(0, session).at(1, request("r1", &["a"]));
        for n in 1..=4 {
            s.at(10 * i64::from(n), attempt("r1", n, "a")).at(
                10 * i64::from(n) + 5,
                failed("r1", n, "a", ErrorClass::ServerError, Phase::Headers),
            );
        }
        let mut dash = s.fold();
        let a = dash.provider("a").unwrap();
        assert_eq!((a.failures, a.consecutive_failures), (4, 0));
        Script::default()
            .at(50, attempt("r1", 5, "a"))
            .at(
                55,
                failed("r1", 5, "a", ErrorClass::Overloaded, Phase::Headers),
            )
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().consecutive_failures, 1);

        // Without the session's word, the default policy: server errors count.
        let mut s = Script::default();
        s.at(0, super::super::script::session(&["a"], Some(3)))
            .at(1, request("r1", &["a"]))
            .at(2, attempt("r1", 1, "a"))
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::ServerError, Phase::Headers),
            );
        assert_eq!(s.fold().provider("a").unwrap().consecutive_failures, 1);
    }

    /// With a breaker per model, the failures in a row are each model's: the row shows those of
    /// the model closest to tripping, and a model's success or closing clears only its own.
    #[test]
    fn per_model_failures_in_a_row_are_each_models() {
        let fail = |s: &mut Script, ms: i64, id: &str, n: u32, model: &str| {
            s.at(ms, attempt_on(id, n, "p", model)).at(
                ms + 1,
                failed(id, n, "p", ErrorClass::Overloaded, Phase::Headers),
            );
        };
        let mut s = Script::default();
        s.at(0, session(&["p"], Some(2)))
            .at(1, request("r1", &["p"]));
        fail(&mut s, 10, "r1", 1, "m1");
        fail(&mut s, 20, "r1", 2, "m2");
        fail(&mut s, 30, "r1", 3, "m1");
        s.at(
            31,
            model_breaker("p", "m1", ("closed", "open"), "2 failures", Some(1_000)),
        );
        let mut dash = s.fold();
        let p = dash.provider("p").unwrap();
        assert_eq!(p.consecutive_failures, 2, "m1's, the closest to tripping");
        assert_eq!((p.failures_of("m1"), p.failures_of("m2")), (2, 1));
        assert_eq!(p.models[0].consecutive_failures, 2);

        // m2 answers: its own count is cleared, m1's stays while it is open.
        let mut s = Script::default();
        s.at(40, request("r2", &["p"]))
            .at(41, attempt_on("r2", 1, "p", "m2"))
            .at(42, first("r2", 1, "p", 100))
            .at(43, ok("r2", "p", 0.0, 0.0, 0.0));
        s.apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!((p.failures_of("m1"), p.failures_of("m2")), (2, 0));
        assert_eq!(p.consecutive_failures, 2);

        // m1 recovers: nothing in a row any more.
        Script::default()
            .at(
                1_100,
                model_breaker("p", "m1", ("open", "half_open"), "x", None),
            )
            .at(
                1_200,
                model_breaker("p", "m1", ("half_open", "closed"), "x", None),
            )
            .apply_to(&mut dash);
        let p = dash.provider("p").unwrap();
        assert_eq!((p.consecutive_failures, p.failures_of("m1")), (0, 0));
        assert_eq!(p.models[0].consecutive_failures, 0);
    }
}
