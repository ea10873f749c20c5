//! The console's state: a fold over the event stream. `Dashboard::apply` is the only way events change
//! it, and it reads time only from the events (plus `tick` for countdowns), so replaying a recording
//! gives exactly the screens the operator saw live. Everything kept is bounded by ring buffers.
//!
//! UI state (focus, selection, scroll, filters) lives apart, in `ui.rs`; rendering is a pure function
//! of both (`panels/`).

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};

use crate::engine::classify::counted_by_breaker;
use crate::event::describe::describe;
use crate::event::{
    BreakerState, ErrorClass, Event, EventKind, Mode, OperatorAction, Outcome, Phase, ProviderInfo,
    SkipReason, Source,
};
use crate::text::one_line;
#[cfg(test)]
use crate::text::printable;

/// Recent requests kept for the reply panel and the request list.
pub const REQUESTS_KEPT: usize = 200;
/// Event-log lines kept.
pub const LOG_KEPT: usize = 5_000;
/// First-event latency points kept per provider for the latency-over-time panel.
pub const LATENCY_POINTS_KEPT: usize = 600;
/// Breaker history kept per provider for the timeline.
pub const TIMELINE_KEPT: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// Window for requests per second.
pub const RATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Largest reply text kept per request (the rest is dropped and marked).
pub const REPLY_CHARS_KEPT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub mode: Option<Mode>,
    /// When the session started (the `session_started` event's time).
    pub started_at: Option<DateTime<Utc>>,
    /// The latest time known: the newest event's, or a later `tick`.
    pub now: Option<DateTime<Utc>>,
    /// Where the session is being recorded, when it is (shown in the header).
    pub recording: Option<String>,
    /// In the order the session named them, then in order of first appearance.
    pub providers: Vec<ProviderView>,
    pub totals: Totals,
    /// Oldest first; at most `REQUESTS_KEPT`.
    pub requests: VecDeque<RequestView>,
    /// Oldest first; at most `LOG_KEPT`.
    pub log: VecDeque<LogLine>,
    /// Failures by provider and class.
    pub errors: BTreeMap<(String, ErrorClass), ErrorCount>,
    /// Events applied so far (including those no panel shows).
    pub events_applied: u64,
    /// The consumer lagged and this many events were never seen (told by the bus).
    pub events_missed: u64,
    /// What the fold remembers between events; no panel reads it.
    pub ledger: Ledger,
}

/// Everything the console shows about one provider.
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub name: String,
    pub protocol: String,
    pub model: String,
    pub breaker: BreakerState,
    /// When the breaker entered its current state.
    pub breaker_since: Option<DateTime<Utc>>,
    /// While open: when it goes half-open (from `breaker_changed.recovery_ms`).
    pub open_until: Option<DateTime<Utc>>,
    /// Why it is in its current state.
    pub breaker_reason: String,
    /// Failures in a row that count for the breaker (default policy), reset by a success.
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
    /// Set by `provider_flagged` (e.g. `misconfigured: auth: invalid x-api-key`).
    pub flagged: Option<String>,
    /// The simulated fault in force, as the operator last set it (from `operator_action`).
    pub fault: Option<String>,
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

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    /// Finished ok.
    pub answered: u64,
    /// Finished ok from a provider other than the first of its chain.
    pub failed_over: u64,
    /// Finished with an error.
    pub failed: u64,
    pub in_flight: u64,
    pub cost_usd: f64,
    pub failed_cost_usd: f64,
    /// Sum over answered requests of `cost_usd - primary_cost_usd`: what failing over cost extra.
    pub failover_delta_usd: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub id: String,
    pub source: Source,
    pub prompt: Option<String>,
    pub chain: Vec<String>,
    pub started_at: DateTime<Utc>,
    /// The reply as the caller has it now: rewinds applied.
    pub text: String,
    /// True when `text` hit `REPLY_CHARS_KEPT` and later text was dropped.
    pub text_truncated: bool,
    pub rewinds: Vec<RewindView>,
    pub attempts: Vec<AttemptView>,
    /// Who is streaming now / who answered.
    pub provider: Option<String>,
    pub outcome: Option<Outcome>,
    pub class: Option<ErrorClass>,
    pub message: Option<String>,
    pub stop_reason: Option<String>,
    pub total_ms: Option<u64>,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RewindView {
    pub provider: String,
    pub discarded_chars: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptView {
    pub number: u32,
    pub provider: String,
    pub model: String,
    pub state: AttemptState,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttemptState {
    Waiting,
    Streaming {
        latency_ms: u64,
    },
    Failed {
        class: ErrorClass,
        phase: Phase,
        retryable: bool,
        message: String,
    },
    Skipped {
        reason: SkipReason,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub seq: u64,
    /// The event's `type`.
    pub kind: &'static str,
    pub provider: Option<String>,
    /// One line, for people.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorCount {
    pub count: u64,
    pub retryable: bool,
    pub last_message: String,
    pub last_at: DateTime<Utc>,
}
/// What the fold remembers about attempts whose outcome has not arrived yet. Public only so that
/// `Dashboard { .., ..Dashboard::new() }` still works outside this module; its fields are private.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The session's breaker threshold, for providers that appear after `session_started`.
    threshold: Option<u32>,
    /// The classes the session's breakers count (`session_started.breaker_counts`; absent: the
    /// default policy's).
    breaker_counts: Option<Vec<ErrorClass>>,
    /// Attempts started while their provider was half-open and not yet ended, oldest first.
    probes: VecDeque<Probe>,
    /// The latest usage cost per request and provider: the engine publishes an attempt's `usage`
    /// just before its `attempt_failed`, which charges it to the provider's failed cost. Ordered
    /// (not hashed) so that the dashboard's `Debug` is the same for the same events.
    usage: BTreeMap<String, Vec<(String, f64)>>,
}

#[derive(Debug, Clone)]
struct Probe {
    provider: String,
    request_id: String,
    attempt: u32,
}

// Bounds on what a hostile or endless stream could otherwise grow without limit.
/// Attempt start times kept per provider (a burst within `RATE_WINDOW`).
const RATE_POINTS_KEPT: usize = 10_000;
/// Breaker spans kept per provider (a flapping breaker within `TIMELINE_KEPT`).
const TIMELINE_SPANS_KEPT: usize = 1_000;
/// Providers given a view; events about others still count in totals and the log.
const PROVIDERS_KEPT: usize = 64;
/// Attempts and rewinds kept per request (the engine's budgets keep real ones far below).
const ATTEMPTS_KEPT: usize = 64;
/// Chain entries kept per request.
const CHAIN_KEPT: usize = PROVIDERS_KEPT;
/// Probes and usage costs awaiting their outcome.
const PROBES_KEPT: usize = 1_024;
const USAGE_KEPT: usize = 4_096;
/// Longest error message, reason or detail kept (one line).
const MESSAGE_CHARS_KEPT: usize = 2_000;

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}

impl Dashboard {
    pub fn new() -> Self {
        Dashboard {
            mode: None,
            started_at: None,
            now: None,
            recording: None,
            providers: Vec::new(),
            totals: Totals::default(),
            requests: VecDeque::new(),
            log: VecDeque::new(),
            errors: BTreeMap::new(),
            events_applied: 0,
            events_missed: 0,
            ledger: Ledger::default(),
        }
    }

    /// Fold one event in.
    pub fn apply(&mut self, event: &Event) {
        self.events_applied = self.events_applied.saturating_add(1);
        self.tick(event.ts);
        let ts = event.ts;
        match &event.kind {
            EventKind::SessionStarted {
                mode,
                providers,
                breaker_threshold,
                breaker_counts,
                ..
            } => {
                self.ledger.breaker_counts.clone_from(breaker_counts);
                self.on_session_started(ts, *mode, providers, *breaker_threshold);
            }
            EventKind::RequestStarted {
                request_id,
                source,
                chain,
                prompt,
                ..
            } => self.on_request_started(ts, request_id, *source, chain, prompt.as_deref()),
            EventKind::AttemptStarted {
                request_id,
                attempt,
                provider,
                model,
            } => self.on_attempt_started(ts, request_id, *attempt, provider, model),
            EventKind::AttemptFailed {
                request_id,
                attempt,
                provider,
                phase,
                class,
                retryable,
                message,
                ..
            } => self.on_attempt_failed(
                ts,
                request_id,
                *attempt,
                provider,
                Failure {
                    class: *class,
                    phase: *phase,
                    retryable: *retryable,
                    message,
                },
            ),
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => self.on_attempt_skipped(ts, request_id, provider, *reason),
            EventKind::FirstEvent {
                request_id,
                attempt,
                provider,
                latency_ms,
            } => self.on_first_event(ts, request_id, *attempt, provider, *latency_ms),
            EventKind::TextDelta {
                request_id,
                provider,
                text,
            } => {
                self.provider_index(ts, provider, "", "");
                if let Some(request) = self.request_mut(request_id) {
                    append_reply(request, text);
                }
                // The hottest event: no log line.
                return;
            }
            EventKind::Rewind {
                request_id,
                provider,
                discarded_chars,
                reason,
            } => self.on_rewind(ts, request_id, provider, *discarded_chars, reason),
            EventKind::Usage {
                request_id,
                provider,
                model,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cost_usd,
                ..
            } => {
                let tokens = Tokens {
                    input: *input_tokens,
                    output: *output_tokens,
                    cache_read: *cache_read_tokens,
                    cache_write: *cache_write_tokens,
                };
                self.on_usage(ts, request_id, provider, model, tokens, *cost_usd);
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                stop_reason,
                class,
                message,
                total_ms,
                cost_usd,
                failed_cost_usd,
                primary_cost_usd,
                ..
            } => self.on_request_finished(
                ts,
                request_id,
                Finish {
                    outcome: *outcome,
                    provider: provider.as_deref(),
                    stop_reason: stop_reason.as_deref(),
                    class: *class,
                    message: message.as_deref(),
                    total_ms: *total_ms,
                    cost_usd: finite(*cost_usd),
                    failed_cost_usd: finite(*failed_cost_usd),
                    primary_cost_usd: primary_cost_usd.map(finite),
                },
            ),
            EventKind::BreakerChanged {
                provider,
                to,
                reason,
                recovery_ms,
                ..
            } => self.on_breaker_changed(ts, provider, *to, reason, *recovery_ms),
            EventKind::ProviderFlagged {
                provider,
                flag,
                reason,
            } => {
                if let Some(i) = self.provider_index(ts, provider, "", "") {
                    self.providers[i].flagged =
                        Some(one_line(&format!("{flag}: {reason}"), MESSAGE_CHARS_KEPT));
                }
            }
            EventKind::OperatorAction {
                action,
                provider,
                detail,
            } => {
                if *action == OperatorAction::SetFault
                    && let Some(name) = provider
                    && let Some(i) = self.provider_index(ts, name, "", "")
                {
                    self.providers[i].fault = Some(one_line(detail, MESSAGE_CHARS_KEPT));
                }
            }
        }
        self.push_log(event);
    }

    /// Let time pass without events (countdowns, rates). Never moves time backwards.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
    }

    /// The bus said this many events were lost to lag.
    pub fn missed(&mut self, count: u64) {
        self.events_missed = self.events_missed.saturating_add(count);
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderView> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// A kept request by id (the newest, should an id repeat).
    pub fn request(&self, id: &str) -> Option<&RequestView> {
        self.requests.iter().rev().find(|r| r.id == id)
    }

    fn request_mut(&mut self, id: &str) -> Option<&mut RequestView> {
        // Events are about recent requests: the newest end finds them first.
        self.requests.iter_mut().rev().find(|r| r.id == id)
    }

    /// The index of the provider's view, created on its first appearance; `None` once
    /// `PROVIDERS_KEPT` views exist.
    fn provider_index(
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

    fn on_session_started(
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
        for view in &mut ordered {
            view.threshold = threshold;
        }
        self.providers = ordered;
    }

    fn on_request_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        source: Source,
        chain: &[String],
        prompt: Option<&str>,
    ) {
        self.totals.requests += 1;
        self.totals.in_flight += 1;
        let chain: Vec<String> = chain.iter().take(CHAIN_KEPT).cloned().collect();
        for name in &chain {
            self.provider_index(ts, name, "", "");
        }
        push_ring(
            &mut self.requests,
            RequestView {
                id: request_id.to_string(),
                source,
                prompt: prompt.map(|p| bounded(p, REPLY_CHARS_KEPT)),
                chain,
                started_at: ts,
                text: String::new(),
                text_truncated: false,
                rewinds: Vec::new(),
                attempts: Vec::new(),
                provider: None,
                outcome: None,
                class: None,
                message: None,
                stop_reason: None,
                total_ms: None,
                cost_usd: 0.0,
            },
            REQUESTS_KEPT,
        );
    }

    fn on_attempt_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        attempt: u32,
        provider: &str,
        model: &str,
    ) {
        if let Some(i) = self.provider_index(ts, provider, "", model) {
            let now = self.now.unwrap_or(ts);
            let view = &mut self.providers[i];
            view.attempts += 1;
            note_attempt_time(&mut view.recent_attempts, ts, now);
            if view.breaker == BreakerState::HalfOpen {
                self.add_probe(i, request_id, attempt);
            }
        }
        if let Some(request) = self.request_mut(request_id) {
            push_attempt(
                &mut request.attempts,
                AttemptView {
                    number: attempt,
                    provider: provider.to_string(),
                    model: model.to_string(),
                    state: AttemptState::Waiting,
                },
            );
            request.provider = Some(provider.to_string());
        }
    }

    fn on_first_event(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        attempt: u32,
        provider: &str,
        latency_ms: u64,
    ) {
        if let Some(i) = self.provider_index(ts, provider, "", "") {
            let view = &mut self.providers[i];
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
        if let Some(request) = self.request_mut(request_id) {
            if let Some(a) = find_attempt(&mut request.attempts, attempt, provider) {
                a.state = AttemptState::Streaming { latency_ms };
            }
            // The engine has committed to this provider.
            if request.provider.as_deref() != Some(provider) {
                request.provider = Some(provider.to_string());
            }
        }
    }

    fn on_attempt_failed(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        attempt: u32,
        provider: &str,
        failure: Failure<'_>,
    ) {
        let message = one_line(failure.message, MESSAGE_CHARS_KEPT);
        let spent = self.take_usage(request_id, provider);
        if let Some(i) = self.provider_index(ts, provider, "", "") {
            let view = &mut self.providers[i];
            // Cancelled attempts (a lost hedge, a caller gone) were paid for all the same.
            view.failed_cost_usd += spent;
            // …but they say nothing about the provider's health.
            if failure.class != ErrorClass::Cancelled {
                view.failures += 1;
                view.last_error = Some(LastError {
                    class: failure.class,
                    phase: failure.phase,
                    retryable: failure.retryable,
                    message: message.clone(),
                    at: ts,
                });
                push_ring(
                    &mut view.latency_series,
                    LatencyPoint {
                        at: ts,
                        latency_ms: None,
                    },
                    LATENCY_POINTS_KEPT,
                );
                if counted_by_breaker(self.ledger.breaker_counts.as_deref(), failure.class) {
                    view.consecutive_failures = view.consecutive_failures.saturating_add(1);
                }
                self.count_error(ts, provider, &failure, &message);
            }
            self.release_probe(|p| {
                p.provider == provider && p.request_id == request_id && p.attempt == attempt
            });
        }
        if let Some(request) = self.request_mut(request_id)
            && let Some(a) = find_attempt(&mut request.attempts, attempt, provider)
        {
            a.state = AttemptState::Failed {
                class: failure.class,
                phase: failure.phase,
                retryable: failure.retryable,
                message,
            };
        }
    }

    fn count_error(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        failure: &Failure<'_>,
        message: &str,
    ) {
        let entry = self
            .errors
            .entry((provider.to_string(), failure.class))
            .or_insert_with(|| ErrorCount {
                count: 0,
                retryable: failure.retryable,
                last_message: String::new(),
                last_at: ts,
            });
        entry.count += 1;
        entry.retryable = failure.retryable;
        message.clone_into(&mut entry.last_message);
        entry.last_at = ts;
    }

    fn on_attempt_skipped(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        reason: SkipReason,
    ) {
        self.provider_index(ts, provider, "", "");
        if let Some(request) = self.request_mut(request_id) {
            push_attempt(
                &mut request.attempts,
                AttemptView {
                    number: 0,
                    provider: provider.to_string(),
                    model: String::new(),
                    state: AttemptState::Skipped { reason },
                },
            );
        }
    }

    fn on_rewind(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        discarded_chars: u64,
        reason: &str,
    ) {
        self.provider_index(ts, provider, "", "");
        if let Some(request) = self.request_mut(request_id) {
            request.text.clear();
            request.text_truncated = false;
            if request.rewinds.len() >= ATTEMPTS_KEPT {
                request.rewinds.remove(0);
            }
            request.rewinds.push(RewindView {
                provider: provider.to_string(),
                discarded_chars,
                reason: one_line(reason, MESSAGE_CHARS_KEPT),
            });
        }
    }

    fn on_usage(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        model: &str,
        tokens: Tokens,
        cost_usd: f64,
    ) {
        let cost = finite(cost_usd);
        self.totals.cost_usd += cost;
        if let Some(i) = self.provider_index(ts, provider, "", model) {
            let view = &mut self.providers[i];
            let t = &mut view.tokens;
            t.input = t.input.saturating_add(tokens.input);
            t.output = t.output.saturating_add(tokens.output);
            t.cache_read = t.cache_read.saturating_add(tokens.cache_read);
            t.cache_write = t.cache_write.saturating_add(tokens.cache_write);
            view.cost_usd += cost;
        }
        if let Some(request) = self.request_mut(request_id) {
            request.cost_usd += cost;
        }
        self.note_usage(request_id, provider, cost);
    }

    fn on_request_finished(&mut self, ts: DateTime<Utc>, request_id: &str, finish: Finish<'_>) {
        let totals = &mut self.totals;
        totals.in_flight = totals.in_flight.saturating_sub(1);
        totals.failed_cost_usd += finish.failed_cost_usd;
        match finish.outcome {
            Outcome::Ok => {
                totals.answered += 1;
                if let Some(primary) = finish.primary_cost_usd {
                    totals.failover_delta_usd += finish.cost_usd - primary;
                }
            }
            Outcome::Error => totals.failed += 1,
        }
        if let Some(request) = self.request_mut(request_id) {
            let failed_over = finish.outcome == Outcome::Ok
                && finish.provider.is_some()
                && request
                    .chain
                    .first()
                    .is_some_and(|primary| Some(primary.as_str()) != finish.provider);
            request.outcome = Some(finish.outcome);
            request.class = finish.class;
            request.message = finish.message.map(|m| one_line(m, MESSAGE_CHARS_KEPT));
            request.stop_reason = finish.stop_reason.map(|s| one_line(s, MESSAGE_CHARS_KEPT));
            request.total_ms = Some(finish.total_ms);
            request.provider = finish.provider.map(str::to_string);
            if failed_over {
                self.totals.failed_over += 1;
            }
        }
        if finish.outcome == Outcome::Ok
            && let Some(name) = finish.provider
            && let Some(i) = self.provider_index(ts, name, "", "")
        {
            let view = &mut self.providers[i];
            view.successes += 1;
            view.consecutive_failures = 0;
        }
        self.release_probe(|p| p.request_id == request_id);
        self.ledger.usage.remove(request_id);
    }

    fn on_breaker_changed(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        state: BreakerState,
        reason: &str,
        recovery_ms: Option<u64>,
    ) {
        let Some(i) = self.provider_index(ts, provider, "", "") else {
            return;
        };
        let now = self.now.unwrap_or(ts);
        let view = &mut self.providers[i];
        view.breaker = state;
        view.breaker_since = Some(ts);
        one_line(reason, MESSAGE_CHARS_KEPT).clone_into(&mut view.breaker_reason);
        view.open_until = match state {
            BreakerState::Open => recovery_ms.map(|ms| plus_millis(ts, ms)),
            _ => None,
        };
        if state == BreakerState::Closed {
            view.consecutive_failures = 0;
        }
        push_span(&mut view.timeline, BreakerSpan { from: ts, state }, now);
        if state == BreakerState::HalfOpen {
            // A new half-open period starts with no probe out; forget any whose end was lost.
            self.release_probe(|p| p.provider == provider);
        }
    }

    fn add_probe(&mut self, provider: usize, request_id: &str, attempt: u32) {
        let Some(view) = self.providers.get_mut(provider) else {
            return;
        };
        view.probes_in_flight = view.probes_in_flight.saturating_add(1);
        self.ledger.probes.push_back(Probe {
            provider: view.name.clone(),
            request_id: request_id.to_string(),
            attempt,
        });
        if self.ledger.probes.len() > PROBES_KEPT {
            self.release_probe_at(0);
        }
    }

    /// Forget the probes that `ended` says have ended, each exactly once.
    fn release_probe(&mut self, ended: impl Fn(&Probe) -> bool) {
        let mut i = 0;
        while i < self.ledger.probes.len() {
            if self.ledger.probes.get(i).is_some_and(&ended) {
                self.release_probe_at(i);
            } else {
                i += 1;
            }
        }
    }

    fn release_probe_at(&mut self, index: usize) {
        if let Some(probe) = self.ledger.probes.remove(index)
            && let Some(view) = self.providers.iter_mut().find(|p| p.name == probe.provider)
        {
            view.probes_in_flight = view.probes_in_flight.saturating_sub(1);
        }
    }

    fn note_usage(&mut self, request_id: &str, provider: &str, cost_usd: f64) {
        let usage = &mut self.ledger.usage;
        if let Some(costs) = usage.get_mut(request_id) {
            if let Some((_, cost)) = costs.iter_mut().find(|(p, _)| p == provider) {
                *cost = cost_usd;
            } else if costs.len() < PROVIDERS_KEPT {
                costs.push((provider.to_string(), cost_usd));
            }
            return;
        }
        // Requests whose end was never seen must not pile up: drop one (any) to make room.
        if usage.len() >= USAGE_KEPT {
            usage.pop_first();
        }
        usage.insert(
            request_id.to_string(),
            vec![(provider.to_string(), cost_usd)],
        );
    }

    /// The cost of the usage just reported for this request at this provider, if any (taken, so
    /// that it is charged once).
    fn take_usage(&mut self, request_id: &str, provider: &str) -> f64 {
        let Some(costs) = self.ledger.usage.get_mut(request_id) else {
            return 0.0;
        };
        let Some(i) = costs.iter().position(|(p, _)| p == provider) else {
            return 0.0;
        };
        let (_, cost) = costs.swap_remove(i);
        if costs.is_empty() {
            self.ledger.usage.remove(request_id);
        }
        cost
    }

    fn push_log(&mut self, event: &Event) {
        let line = LogLine {
            at: event.ts,
            seq: event.seq,
            kind: event.kind.type_name(),
            provider: event_provider(&event.kind).map(str::to_string),
            text: describe(&event.kind),
        };
        push_ring(&mut self.log, line, LOG_KEPT);
    }
}

/// The fields of an `attempt_failed` the fold uses.
struct Failure<'a> {
    class: ErrorClass,
    phase: Phase,
    retryable: bool,
    message: &'a str,
}

/// The fields of a `request_finished` the fold uses, costs made finite.
struct Finish<'a> {
    outcome: Outcome,
    provider: Option<&'a str>,
    stop_reason: Option<&'a str>,
    class: Option<ErrorClass>,
    message: Option<&'a str>,
    total_ms: u64,
    cost_usd: f64,
    failed_cost_usd: f64,
    primary_cost_usd: Option<f64>,
}

impl ProviderView {
    pub fn new(name: &str, protocol: &str, model: &str) -> Self {
        ProviderView {
            name: name.to_string(),
            protocol: protocol.to_string(),
            model: model.to_string(),
            breaker: BreakerState::Closed,
            breaker_since: None,
            open_until: None,
            breaker_reason: String::new(),
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
            flagged: None,
            fault: None,
        }
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
}

/// 1 ms to 10 minutes, 3 significant digits: about 20 KiB per provider, whatever the traffic.
#[allow(clippy::expect_used)] // constant, valid bounds: hdrhistogram only rejects invalid ones
fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000, 3).expect("valid histogram bounds")
}

fn push_ring<T>(ring: &mut VecDeque<T>, item: T, kept: usize) {
    while ring.len() >= kept.max(1) {
        ring.pop_front();
    }
    ring.push_back(item);
}

fn push_attempt(attempts: &mut Vec<AttemptView>, attempt: AttemptView) {
    if attempts.len() >= ATTEMPTS_KEPT {
        attempts.remove(0);
    }
    attempts.push(attempt);
}

/// The attempt by number; attempt numbers are unique within a request, the provider guards against
/// a confused stream.
fn find_attempt<'a>(
    attempts: &'a mut [AttemptView],
    number: u32,
    provider: &str,
) -> Option<&'a mut AttemptView> {
    attempts
        .iter_mut()
        .rev()
        .find(|a| a.number == number && a.provider == provider)
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

/// Append streamed text, keeping at most `REPLY_CHARS_KEPT` characters.
fn append_reply(request: &mut RequestView, delta: &str) {
    if request.text_truncated {
        return;
    }
    // Bytes bound characters from above, so the usual case needs no counting.
    if request.text.len() + delta.len() <= REPLY_CHARS_KEPT {
        request.text.push_str(delta);
        return;
    }
    let room = REPLY_CHARS_KEPT.saturating_sub(request.text.chars().count());
    match delta.char_indices().nth(room) {
        None => request.text.push_str(delta),
        Some((cut, _)) => {
            request.text.push_str(delta.get(..cut).unwrap_or_default());
            request.text_truncated = true;
        }
    }
}

/// At most `max_chars` characters of `s`, marked with `…` when cut.
fn bounded(s: &str, max_chars: usize) -> String {
    if s.len() <= max_chars {
        return s.to_string();
    }
    match s.char_indices().nth(max_chars) {
        None => s.to_string(),
        Some((cut, _)) => {
            let mut out = s.get(..cut).unwrap_or_default().to_string();
            out.push('…');
            out
        }
    }
}

/// NaN and infinities (a broken price) would poison every sum they enter.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// `ts` plus `ms`, saturating at the end of time.
fn plus_millis(ts: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::TimeDelta::try_milliseconds)
        .and_then(|d| ts.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The provider an event is about, for the log's provider filter.
fn event_provider(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::AttemptStarted { provider, .. }
        | EventKind::AttemptFailed { provider, .. }
        | EventKind::AttemptSkipped { provider, .. }
        | EventKind::FirstEvent { provider, .. }
        | EventKind::TextDelta { provider, .. }
        | EventKind::Rewind { provider, .. }
        | EventKind::Usage { provider, .. }
        | EventKind::BreakerChanged { provider, .. }
        | EventKind::ProviderFlagged { provider, .. } => Some(provider),
        EventKind::RequestFinished { provider, .. }
        | EventKind::OperatorAction { provider, .. } => provider.as_deref(),
        EventKind::SessionStarted { .. } | EventKind::RequestStarted { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// `ms` milliseconds after `t0`.
    fn at(ms: i64) -> DateTime<Utc> {
        t0() + TimeDelta::milliseconds(ms)
    }

    /// Events at fixed times with increasing `seq`.
    #[derive(Default)]
    struct Script(Vec<Event>);

    impl Script {
        fn at(&mut self, ms: i64, kind: EventKind) -> &mut Self {
            self.at_time(at(ms), kind)
        }

        fn at_time(&mut self, ts: DateTime<Utc>, kind: EventKind) -> &mut Self {
            let seq = self.0.len() as u64 + 1;
            self.0.push(Event { ts, seq, kind });
            self
        }

        fn apply_to(&self, dash: &mut Dashboard) {
            for e in &self.0 {
                dash.apply(e);
            }
        }

        fn fold(&self) -> Dashboard {
            let mut dash = Dashboard::new();
            self.apply_to(&mut dash);
            dash
        }
    }

    fn session(names: &[&str], threshold: Option<u32>) -> EventKind {
        EventKind::SessionStarted {
            format_version: crate::event::FORMAT_VERSION,
            mode: Mode::Demo,
            providers: names
                .iter()
                .map(|n| ProviderInfo {
                    name: n.to_string(),
                    protocol: crate::event::Protocol::Anthropic,
                    model: format!("{n}-model"),
                })
                .collect(),
            breaker_threshold: threshold,
            breaker_counts: None,
        }
    }

    fn request(id: &str, chain: &[&str]) -> EventKind {
        EventKind::RequestStarted {
            request_id: id.into(),
            source: Source::Prompt,
            chain: chain.iter().map(|s| s.to_string()).collect(),
            prompt: Some("hello?".into()),
            prompt_chars: None,
        }
    }

    fn attempt(id: &str, n: u32, provider: &str) -> EventKind {
        EventKind::AttemptStarted {
            request_id: id.into(),
            attempt: n,
            provider: provider.into(),
            model: format!("{provider}-model"),
        }
    }

    fn failed(id: &str, n: u32, provider: &str, class: ErrorClass, phase: Phase) -> EventKind {
        EventKind::AttemptFailed {
            request_id: id.into(),
            attempt: n,
            provider: provider.into(),
            phase,
            class,
            retryable: crate::engine::classify::retryable(class),
            status: None,
            retry_after_ms: None,
            message: format!("{class} at {provider}"),
            elapsed_ms: 10,
        }
    }

    fn skipped(id: &str, provider: &str, reason: &str) -> EventKind {
        EventKind::AttemptSkipped {
            request_id: id.into(),
            provider: provider.into(),
            reason: reason.parse().expect("a name in the vocabulary"),
        }
    }

    fn first(id: &str, n: u32, provider: &str, latency_ms: u64) -> EventKind {
        EventKind::FirstEvent {
            request_id: id.into(),
            attempt: n,
            provider: provider.into(),
            latency_ms,
        }
    }

    fn delta(id: &str, provider: &str, text: &str) -> EventKind {
        EventKind::TextDelta {
            request_id: id.into(),
            provider: provider.into(),
            text: text.into(),
        }
    }

    fn rewind(id: &str, provider: &str, discarded_chars: u64, reason: &str) -> EventKind {
        EventKind::Rewind {
            request_id: id.into(),
            provider: provider.into(),
            discarded_chars,
            reason: reason.into(),
        }
    }

    fn usage(id: &str, provider: &str, cost_usd: f64) -> EventKind {
        EventKind::Usage {
            request_id: id.into(),
            provider: provider.into(),
            model: format!("{provider}-model"),
            input_tokens: 10,
            output_tokens: 20,
            cache_read_tokens: 1,
            cache_write_tokens: 2,
            cost_usd,
            estimated: false,
        }
    }

    fn ok(id: &str, provider: &str, cost: f64, failed_cost: f64, primary: f64) -> EventKind {
        EventKind::RequestFinished {
            request_id: id.into(),
            outcome: Outcome::Ok,
            provider: Some(provider.into()),
            stop_reason: Some("end_turn".into()),
            class: None,
            message: None,
            total_ms: 1234,
            cost_usd: cost,
            attempts: 2,
            failed_cost_usd: failed_cost,
            primary_cost_usd: Some(primary),
        }
    }

    fn error(id: &str, class: ErrorClass) -> EventKind {
        EventKind::RequestFinished {
            request_id: id.into(),
            outcome: Outcome::Error,
            provider: None,
            stop_reason: None,
            class: Some(class),
            message: Some(format!("it was {class}")),
            total_ms: 500,
            cost_usd: 0.0,
            attempts: 1,
            failed_cost_usd: 0.0,
            primary_cost_usd: None,
        }
    }

    fn breaker(
        provider: &str,
        from: &str,
        to: &str,
        reason: &str,
        recovery: Option<u64>,
    ) -> EventKind {
        EventKind::BreakerChanged {
            provider: provider.into(),
            model: None,
            from: from.parse().expect("a name in the vocabulary"),
            to: to.parse().expect("a name in the vocabulary"),
            reason: reason.into(),
            recovery_ms: recovery,
        }
    }

    fn operator(action: &str, provider: Option<&str>, detail: &str) -> EventKind {
        EventKind::OperatorAction {
            action: action.parse().expect("a name in the vocabulary"),
            provider: provider.map(str::to_string),
            detail: detail.into(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// anthropic streams "Hello", is cut mid-stream, the reply is withdrawn and openai answers.
    fn failover_script() -> Script {
        let mut s = Script::default();
        s.at(0, session(&["anthropic", "openai"], Some(5)))
            .at(10, request("r1", &["anthropic", "openai"]))
            .at(20, attempt("r1", 1, "anthropic"))
            .at(220, first("r1", 1, "anthropic", 200))
            .at(230, delta("r1", "anthropic", "Hel"))
            .at(240, delta("r1", "anthropic", "lo"))
            .at(250, usage("r1", "anthropic", 0.001))
            .at(
                260,
                failed(
                    "r1",
                    1,
                    "anthropic",
                    ErrorClass::StreamCut,
                    Phase::MidStream,
                ),
            )
            .at(270, rewind("r1", "anthropic", 5, "stream_cut"))
            .at(280, attempt("r1", 2, "openai"))
            .at(580, first("r1", 2, "openai", 300))
            .at(590, delta("r1", "openai", "Hi"))
            .at(600, delta("r1", "openai", " there"))
            .at(610, usage("r1", "openai", 0.002))
            .at(620, ok("r1", "openai", 0.003, 0.001, 0.0025));
        s
    }

    #[test]
    fn a_request_that_fails_over_is_folded_in_full() {
        let dash = failover_script().fold();
        let r = dash.request("r1").unwrap();
        assert_eq!(r.text, "Hi there");
        assert!(!r.text_truncated);
        assert_eq!(
            r.rewinds,
            vec![RewindView {
                provider: "anthropic".into(),
                discarded_chars: 5,
                reason: "stream_cut".into()
            }]
        );
        assert_eq!(r.attempts.len(), 2);
        assert_eq!(
            (r.attempts[0].number, r.attempts[0].provider.as_str()),
            (1, "anthropic")
        );
        assert!(matches!(
            r.attempts[0].state,
            AttemptState::Failed {
                class: ErrorClass::StreamCut,
                phase: Phase::MidStream,
                retryable: true,
                ..
            }
        ));
        assert_eq!(r.attempts[1].model, "openai-model");
        assert_eq!(
            r.attempts[1].state,
            AttemptState::Streaming { latency_ms: 300 }
        );
        assert_eq!(r.provider.as_deref(), Some("openai"));
        assert_eq!(r.outcome, Some(Outcome::Ok));
        assert_eq!(r.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(r.total_ms, Some(1234));
        assert!(close(r.cost_usd, 0.003));

        let t = dash.totals;
        assert_eq!(
            (t.requests, t.answered, t.failed_over, t.failed, t.in_flight),
            (1, 1, 1, 0, 0)
        );
        assert!(close(t.cost_usd, 0.003), "{}", t.cost_usd);
        assert!(close(t.failed_cost_usd, 0.001));
        assert!(
            close(t.failover_delta_usd, 0.0005),
            "{}",
            t.failover_delta_usd
        );

        let a = dash.provider("anthropic").unwrap();
        assert_eq!((a.attempts, a.successes, a.failures), (1, 0, 1));
        assert!(close(a.cost_usd, 0.001) && close(a.failed_cost_usd, 0.001));
        assert_eq!(a.consecutive_failures, 1);
        assert_eq!(a.latency_ms(0.5), Some(200));
        let points: Vec<_> = a.latency_series.iter().map(|p| p.latency_ms).collect();
        assert_eq!(points, vec![Some(200), None]);
        assert_eq!(a.last_error.as_ref().unwrap().class, ErrorClass::StreamCut);
        assert_eq!(
            a.tokens,
            Tokens {
                input: 10,
                output: 20,
                cache_read: 1,
                cache_write: 2
            }
        );
        let o = dash.provider("openai").unwrap();
        assert_eq!((o.attempts, o.successes, o.failures), (1, 1, 0));
        assert!(close(o.cost_usd, 0.002) && o.failed_cost_usd == 0.0);
        assert_eq!(o.success_rate(), Some(1.0));
        assert_eq!(o.rate_per_sec(at(620)), 0.1);

        let e = &dash.errors[&("anthropic".to_string(), ErrorClass::StreamCut)];
        assert_eq!((e.count, e.retryable, e.last_at), (1, true, at(260)));
        assert_eq!(e.last_message, "stream_cut at anthropic");
        assert_eq!(dash.errors.len(), 1);

        // Every event but the four text deltas is in the log.
        assert_eq!(dash.events_applied, 15);
        assert_eq!(dash.log.len(), 11);
        assert!(dash.log.iter().all(|l| l.kind != "text_delta"));
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
    fn a_failed_attempt_is_charged_once_and_only_to_its_provider() {
        let dash = Script::default()
            .at(0, request("r1", &["a", "b"]))
            .at(1, attempt("r1", 1, "a"))
            .at(2, usage("r1", "a", 0.5))
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::StreamCut, Phase::MidStream),
            )
            // A retry on the same provider that fails before any usage costs nothing.
            .at(4, attempt("r1", 2, "a"))
            .at(5, failed("r1", 2, "a", ErrorClass::Connect, Phase::Connect))
            .at(6, attempt("r1", 3, "b"))
            .at(7, usage("r1", "b", 0.25))
            .at(8, ok("r1", "b", 0.75, 0.5, 0.6))
            .fold();
        assert!(close(dash.provider("a").unwrap().failed_cost_usd, 0.5));
        assert!(close(dash.provider("b").unwrap().failed_cost_usd, 0.0));
        assert!(close(dash.totals.failed_cost_usd, 0.5));
        assert!(dash.ledger.usage.is_empty(), "{:?}", dash.ledger.usage);
    }

    #[test]
    fn ring_buffers_stay_bounded() {
        let mut dash = Dashboard::new();
        let mut s = Script::default();
        s.at(0, session(&["a"], None));
        for i in 0..(10 * REQUESTS_KEPT) {
            let id = format!("r{i}");
            s.at(i as i64, request(&id, &["a"]))
                .at(i as i64, ok(&id, "a", 0.0, 0.0, 0.0));
        }
        s.apply_to(&mut dash);
        assert_eq!(dash.requests.len(), REQUESTS_KEPT);
        assert_eq!(
            dash.requests.front().unwrap().id,
            format!("r{}", 9 * REQUESTS_KEPT)
        );
        assert_eq!(dash.totals.requests, 10 * REQUESTS_KEPT as u64);
        assert_eq!(dash.totals.in_flight, 0);

        let mut s = Script::default();
        for i in 0..(10 * LOG_KEPT) {
            s.at(10_000, operator("trip", Some("a"), &i.to_string()));
        }
        s.apply_to(&mut dash);
        assert_eq!(dash.log.len(), LOG_KEPT);
        assert_eq!(
            dash.log.back().unwrap().text,
            format!("operator trip a {}", 10 * LOG_KEPT - 1)
        );

        let mut s = Script::default();
        for i in 0..(10 * LATENCY_POINTS_KEPT) {
            s.at(20_000, first("x", 1, "a", i as u64));
        }
        // A burst of attempts within one rate window.
        for _ in 0..(10 * RATE_POINTS_KEPT) {
            s.at(20_000, attempt("x", 1, "a"));
        }
        s.apply_to(&mut dash);
        let a = dash.provider("a").unwrap();
        assert_eq!(a.latency_series.len(), LATENCY_POINTS_KEPT);
        assert_eq!(a.latency.len(), 10 * LATENCY_POINTS_KEPT as u64);
        assert_eq!(a.recent_attempts.len(), RATE_POINTS_KEPT);
        assert_eq!(a.rate_per_sec(at(20_000)), RATE_POINTS_KEPT as f64 / 10.0);

        // Outside the window the old starts go at the next attempt.
        Script::default()
            .at(40_000, attempt("x", 1, "a"))
            .apply_to(&mut dash);
        assert_eq!(dash.provider("a").unwrap().recent_attempts.len(), 1);

        // One request with endless attempts and rewinds; usage and probes never settled.
        let mut s = Script::default();
        s.at(50_000, request("big", &["a"]))
            .at(50_000, breaker("a", "closed", "open", "x", Some(1)))
            .at(50_000, breaker("a", "open", "half_open", "x", None));
        for i in 0..(10 * ATTEMPTS_KEPT as u32) {
            s.at(50_001, attempt("big", i, "a"))
                .at(50_001, rewind("big", "a", 1, "restart"));
        }
        for i in 0..(10 * PROBES_KEPT as u32) {
            s.at(50_002, attempt(&format!("p{i}"), 1, "a"));
        }
        for i in 0..(10 * USAGE_KEPT) {
            s.at(50_003, usage(&format!("u{i}"), "a", 0.0));
        }
        s.apply_to(&mut dash);
        let big = dash.request("big").unwrap();
        assert_eq!(big.attempts.len(), ATTEMPTS_KEPT);
        assert_eq!(
            big.attempts.last().unwrap().number,
            10 * ATTEMPTS_KEPT as u32 - 1
        );
        assert_eq!(big.rewinds.len(), ATTEMPTS_KEPT);
        assert_eq!(dash.ledger.probes.len(), PROBES_KEPT);
        assert_eq!(
            dash.provider("a").unwrap().probes_in_flight,
            PROBES_KEPT as u32
        );
        assert_eq!(dash.ledger.usage.len(), USAGE_KEPT);
    }

    #[test]
    fn reply_text_is_cut_at_the_limit_on_a_character_boundary() {
        let mut s = Script::default();
        s.at(0, request("r1", &["a"]));
        // Multi-byte characters: bytes run well past the limit before characters do.
        let chunk = "é€😀x".repeat(100);
        for _ in 0..(10 * REPLY_CHARS_KEPT / 400) {
            s.at(1, delta("r1", "a", &chunk));
        }
        let dash = s.fold();
        let r = dash.request("r1").unwrap();
        assert_eq!(r.text.chars().count(), REPLY_CHARS_KEPT);
        assert!(r.text_truncated);
        assert!(r.text.starts_with("é€😀x"));

        // A rewind withdraws the text and with it the mark.
        let mut dash = dash;
        Script::default()
            .at(2, rewind("r1", "a", 0, "restart"))
            .at(3, delta("r1", "b", "fresh"))
            .apply_to(&mut dash);
        let r = dash.request("r1").unwrap();
        assert_eq!((r.text.as_str(), r.text_truncated), ("fresh", false));

        // ASCII exactly at the limit is not truncated.
        let mut s = Script::default();
        s.at(0, request("r2", &["a"]))
            .at(1, delta("r2", "a", &"x".repeat(REPLY_CHARS_KEPT - 1)))
            .at(2, delta("r2", "a", "y"))
            .at(3, delta("r2", "a", ""));
        let dash = s.fold();
        let r = dash.request("r2").unwrap();
        assert_eq!((r.text.len(), r.text_truncated), (REPLY_CHARS_KEPT, false));
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
    fn time_never_goes_backwards() {
        let mut dash = Script::default()
            .at(10_000, operator("trip", Some("a"), ""))
            .at(5_000, operator("reset", Some("a"), ""))
            .fold();
        assert_eq!((dash.now, dash.events_applied), (Some(at(10_000)), 2));
        dash.tick(at(3_000));
        assert_eq!(dash.now, Some(at(10_000)));
        dash.tick(at(20_000));
        assert_eq!(dash.now, Some(at(20_000)));
        Script::default()
            .at(15_000, operator("trip", Some("a"), ""))
            .apply_to(&mut dash);
        assert_eq!((dash.now, dash.events_applied), (Some(at(20_000)), 3));
        dash.missed(7);
        dash.missed(u64::MAX);
        assert_eq!(dash.events_missed, u64::MAX);
    }

    #[test]
    fn the_fold_is_deterministic() {
        let mut s = failover_script();
        s.at(
            700,
            breaker(
                "anthropic",
                "closed",
                "open",
                "5 consecutive failures",
                Some(30_000),
            ),
        )
        .at(800, request("r2", &["anthropic", "openai"]))
        .at(801, skipped("r2", "anthropic", "breaker_open"))
        .at(802, attempt("r2", 1, "openai"))
        .at(803, first("r2", 1, "openai", 99))
        .at(804, delta("r2", "openai", "Yes."))
        .at(900, operator("set_fault", Some("openai"), "overloaded"))
        .at(
            901,
            failed("r2", 1, "openai", ErrorClass::Overloaded, Phase::MidStream),
        )
        .at(902, error("r2", ErrorClass::Overloaded))
        .at(
            40_000,
            breaker("anthropic", "open", "half_open", "recovery elapsed", None),
        );
        let one = s.fold();
        let two = s.fold();
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        assert_eq!(one.totals.failed, 1);
    }

    #[test]
    fn hostile_content_never_panics() {
        let huge = "\u{1b}[2J\n\r\t".repeat(200_000);
        let mut s = Script::default();
        s.at_time(
            DateTime::<Utc>::MIN_UTC,
            session(&["a\nb", ""], Some(u32::MAX)),
        )
        .at_time(DateTime::<Utc>::MIN_UTC, attempt("r", 1, "a\nb"))
        .at_time(
            DateTime::<Utc>::MIN_UTC,
            breaker("a\nb", "closed", "open", &huge, Some(u64::MAX)),
        )
        .at(
            0,
            EventKind::RequestStarted {
                request_id: huge.clone(),
                source: Source::Gateway,
                chain: vec![huge.clone(); 1_000],
                prompt: Some(huge.clone()),
                prompt_chars: None,
            },
        )
        .at(1, attempt(&huge, u32::MAX, &huge))
        .at(2, first(&huge, u32::MAX, &huge, u64::MAX))
        .at(2, first(&huge, u32::MAX, &huge, 0))
        .at(
            3,
            EventKind::Usage {
                request_id: huge.clone(),
                provider: "a\nb".into(),
                model: huge.clone(),
                input_tokens: u64::MAX,
                output_tokens: u64::MAX,
                cache_read_tokens: u64::MAX,
                cache_write_tokens: u64::MAX,
                cost_usd: f64::NAN,
                estimated: true,
            },
        )
        .at(3, usage("r", "a\nb", f64::INFINITY))
        .at(3, usage("r", "a\nb", f64::MAX))
        .at(
            4,
            EventKind::AttemptFailed {
                request_id: huge.clone(),
                attempt: u32::MAX,
                provider: huge.clone(),
                phase: Phase::MidStream,
                class: ErrorClass::Unavailable,
                retryable: false,
                status: Some(u16::MAX),
                retry_after_ms: Some(u64::MAX),
                message: huge.clone(),
                elapsed_ms: u64::MAX,
            },
        )
        .at(5, rewind(&huge, &huge, u64::MAX, &huge))
        .at(
            6,
            EventKind::RequestFinished {
                request_id: "never started".into(),
                outcome: Outcome::Ok,
                provider: Some(huge.clone()),
                stop_reason: Some(huge.clone()),
                class: Some(ErrorClass::Cancelled),
                message: Some(huge.clone()),
                total_ms: u64::MAX,
                cost_usd: f64::NEG_INFINITY,
                attempts: u32::MAX,
                failed_cost_usd: f64::NAN,
                primary_cost_usd: Some(f64::NAN),
            },
        )
        .at(
            7,
            breaker(&huge, "open", "forced_open", &huge, Some(u64::MAX)),
        )
        .at(
            8,
            EventKind::ProviderFlagged {
                provider: "a\nb".into(),
                flag: huge.clone(),
                reason: huge.clone(),
            },
        )
        .at(9, operator("set_fault", Some("a\nb"), &huge))
        .at(10, operator("load", None, &huge))
        .at_time(DateTime::<Utc>::MAX_UTC, attempt("r", 2, "a\nb"))
        .at_time(
            DateTime::<Utc>::MAX_UTC,
            breaker("a\nb", "open", "open", "", Some(u64::MAX)),
        )
        .at_time(
            DateTime::<Utc>::MAX_UTC,
            failed("r", 2, "a\nb", ErrorClass::Timeout, Phase::Connect),
        );
        let mut dash = s.fold();
        dash.tick(DateTime::<Utc>::MIN_UTC);
        assert_eq!(dash.now, Some(DateTime::<Utc>::MAX_UTC));
        for p in &dash.providers {
            p.rate_per_sec(DateTime::<Utc>::MIN_UTC);
            p.rate_per_sec(DateTime::<Utc>::MAX_UTC);
            p.open_remaining(DateTime::<Utc>::MIN_UTC);
        }
        assert!(dash.totals.cost_usd.is_finite());
        assert!(dash.totals.failed_cost_usd.is_finite());
        assert!(dash.totals.failover_delta_usd.is_finite());
        let a = dash.provider("a\nb").unwrap();
        assert_eq!(a.tokens.input, u64::MAX);
        assert_eq!(a.open_until, Some(DateTime::<Utc>::MAX_UTC));
        // Clamped into the histogram: u64::MAX reads back as its top, 0 as its bottom.
        let h = dash.provider(&huge).unwrap();
        assert!(h.latency_ms(1.0).unwrap() >= 600_000);
        assert!(h.latency_ms(0.0).unwrap() <= 1);
        assert!(a.breaker_reason.is_empty());
        assert!(a.fault.as_ref().unwrap().chars().count() <= MESSAGE_CHARS_KEPT + 1);
        for line in &dash.log {
            assert!(!line.text.contains(char::is_control), "{:?}", line.text);
            assert!(
                line.text.chars().count() <= crate::event::describe::LINE_CHARS + 1,
                "{}",
                line.text.len()
            );
        }
        let r = dash.requests.back().unwrap();
        assert!(r.chain.len() <= CHAIN_KEPT);
        assert!(r.prompt.as_ref().unwrap().chars().count() <= REPLY_CHARS_KEPT + 1);
        assert!(dash.errors.values().all(|e| !e.last_message.contains('\n')));
    }

    #[test]
    fn log_lines_read_well() {
        let dash = Script::default()
            .at(0, session(&["anthropic", "openai"], Some(5)))
            .at(1, request("r12", &["anthropic", "openai"]))
            .at(2, attempt("r12", 2, "anthropic"))
            .at(
                3,
                EventKind::AttemptFailed {
                    request_id: "r12".into(),
                    attempt: 2,
                    provider: "anthropic".into(),
                    phase: Phase::Headers,
                    class: ErrorClass::RateLimited,
                    retryable: true,
                    status: Some(429),
                    retry_after_ms: Some(5_000),
                    message: "Rate limited".into(),
                    elapsed_ms: 12,
                },
            )
            .at(
                4,
                breaker(
                    "anthropic",
                    "closed",
                    "open",
                    "5 consecutive failures",
                    None,
                ),
            )
            .at(
                5,
                breaker("anthropic", "open", "half_open", "recovery elapsed", None),
            )
            .at(
                6,
                EventKind::RequestFinished {
                    request_id: "r12".into(),
                    outcome: Outcome::Ok,
                    provider: Some("openai".into()),
                    stop_reason: Some("end_turn".into()),
                    class: None,
                    message: None,
                    total_ms: 1_234,
                    cost_usd: 0.000_512,
                    attempts: 2,
                    failed_cost_usd: 0.0,
                    primary_cost_usd: None,
                },
            )
            .at(7, operator("trip", Some("anthropic"), ""))
            .at(8, error("r13", ErrorClass::Unavailable))
            .at(
                9,
                EventKind::ProviderFlagged {
                    provider: "anthropic".into(),
                    flag: "misconfigured".into(),
                    reason: "auth: invalid x-api-key".into(),
                },
            )
            .at(
                10,
                breaker("openai", "closed", "open", "retry-after 45s", Some(45_000)),
            )
            .fold();
        let lines: Vec<(&str, Option<&str>, &str)> = dash
            .log
            .iter()
            .map(|l| (l.kind, l.provider.as_deref(), l.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "session_started",
                    None,
                    "session started in demo mode: anthropic (anthropic-model), openai (openai-model); breakers open after 5 failures in a row"
                ),
                (
                    "request_started",
                    None,
                    "r12 started (prompt): anthropic → openai"
                ),
                (
                    "attempt_started",
                    Some("anthropic"),
                    "r12 #2 anthropic started (anthropic-model)"
                ),
                (
                    "attempt_failed",
                    Some("anthropic"),
                    "r12 #2 anthropic rate_limited in headers (HTTP 429, retry after 5.0 s, retryable): Rate limited"
                ),
                (
                    "breaker_changed",
                    Some("anthropic"),
                    "anthropic breaker closed → open (5 consecutive failures)"
                ),
                (
                    "breaker_changed",
                    Some("anthropic"),
                    "anthropic breaker open → half_open (recovery elapsed)"
                ),
                (
                    "request_finished",
                    Some("openai"),
                    "r12 answered by openai in 1.23 s, $0.000512 (2 attempts)"
                ),
                (
                    "operator_action",
                    Some("anthropic"),
                    "operator trip anthropic"
                ),
                (
                    "request_finished",
                    None,
                    "r13 failed in 0.50 s, $0.000000 (1 attempt): unavailable: it was unavailable"
                ),
                (
                    "provider_flagged",
                    Some("anthropic"),
                    "anthropic flagged misconfigured: auth: invalid x-api-key"
                ),
                (
                    "breaker_changed",
                    Some("openai"),
                    "openai breaker closed → open (retry-after 45s), half-open in 45.0 s"
                ),
            ]
        );
        assert_eq!(dash.log[3].seq, 4);
        assert_eq!(dash.log[3].at, at(3));
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
                    flag: "misconfigured".into(),
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

    const DEMO_CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 1
min_delay = "10ms"
max_delay = "20ms"
jitter = false

[breaker]
consecutive_failures = 2

[sim]
seed = 3

[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[sim.providers]]
name = "openai"
protocol = "openai"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
"#;

    /// What `breakerbox ask --demo --json` prints, replayed into a dashboard, agrees with what the
    /// engine itself counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_demo_session_replayed_from_json_agrees_with_the_engine() {
        use crate::engine::failover::RequestMeta;
        use crate::event::Bus;
        use crate::provider::{Request, StreamEvent};
        use futures::StreamExt;

        const REQUESTS: usize = 5;
        let config = crate::config::Config::parse(DEMO_CONFIG, "test config").unwrap();
        let common = crate::cli::CommonArgs {
            demo: true,
            faults: vec!["anthropic=stream_cut:after=3".into()],
            ..crate::cli::CommonArgs::default()
        };
        let bus = Bus::new(1 << 16);
        let mut rx = bus.subscribe();
        let setup = crate::session::setup::build(&common, &config, bus.clone(), &|_| None)
            .await
            .unwrap();
        let engine = setup.engine(None).unwrap();
        bus.publish(setup.session_started(setup.mode));
        let mut replies = Vec::new();
        for i in 0..REQUESTS {
            let (id, mut stream) = engine.send(
                Request::prompt(format!("question {i}")),
                RequestMeta::new(Source::Ask),
            );
            let mut text = String::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
                    Ok(StreamEvent::Rewind { .. }) => text.clear(),
                    _ => {}
                }
            }
            replies.push((id, text));
        }
        let mut lines = Vec::new();
        while let Ok(e) = rx.try_recv() {
            lines.push(serde_json::to_string(&*e).unwrap());
        }
        if let Some(sim) = setup.sim {
            sim.shutdown().await;
        }

        let mut dash = Dashboard::new();
        let (mut ok, mut failed_over, mut cost, mut failed_cost) = (0, 0, 0.0, 0.0);
        for line in &lines {
            let event: Event = serde_json::from_str(line).unwrap();
            dash.apply(&event);
            if let EventKind::RequestFinished {
                outcome,
                provider,
                cost_usd,
                failed_cost_usd,
                ..
            } = &event.kind
            {
                if *outcome == Outcome::Ok {
                    ok += 1;
                    failed_over += u64::from(provider.as_deref() != Some("anthropic"));
                }
                cost += cost_usd;
                failed_cost += failed_cost_usd;
            }
        }
        let approx = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);

        let t = dash.totals;
        assert_eq!(t.requests, REQUESTS as u64);
        assert_eq!(
            (t.answered, t.failed, t.in_flight),
            (ok, REQUESTS as u64 - ok, 0)
        );
        assert_eq!(t.answered, REQUESTS as u64, "openai answers every request");
        assert_eq!(t.failed_over, failed_over);
        assert!(approx(t.cost_usd, cost), "{} vs {cost}", t.cost_usd);
        assert!(approx(t.failed_cost_usd, failed_cost));
        assert!(failed_cost > 0.0, "the cut replies were paid for");
        assert_eq!(dash.events_applied, lines.len() as u64);

        let engine_totals = engine.shared().totals();
        for (name, e) in &engine_totals {
            let p = dash.provider(name).unwrap();
            assert_eq!((p.attempts, p.failures), (e.attempts, e.failures), "{name}");
            assert_eq!(
                (p.tokens.input, p.tokens.output),
                (e.input_tokens, e.output_tokens),
                "{name}"
            );
            assert!(approx(p.cost_usd, e.cost_usd), "{name}");
            assert!(
                approx(p.failed_cost_usd, e.failed_cost_usd),
                "{name}: {} vs {}",
                p.failed_cost_usd,
                e.failed_cost_usd
            );
        }
        assert!(engine_totals["anthropic"].failed_cost_usd > 0.0);

        // Two cuts opened anthropic's breaker; later requests skipped it.
        let a = dash.provider("anthropic").unwrap();
        assert_eq!(a.breaker, BreakerState::Open);
        assert!(a.open_until.is_some());
        assert_eq!(a.threshold, Some(2));
        let last = dash.requests.back().unwrap();
        assert!(
            matches!(&last.attempts[0].state, AttemptState::Skipped { reason } if *reason == SkipReason::BreakerOpen)
        );

        // Each reply as the caller got it, rewinds applied.
        for (id, text) in &replies {
            let r = dash.request(id).unwrap();
            assert_eq!(&r.text, text, "{id}");
            assert_eq!(r.provider.as_deref(), Some("openai"));
        }
    }

    #[test]
    fn printable_escapes_every_control_character_and_keeps_newlines_only_in_a_reply() {
        let hostile = "a\x1b]0;title\x07b\x1b[2Jc\rd\u{9b}31me\u{7f}\tf\nbreakerbox: forged";
        let line = printable(hostile, false);
        assert_eq!(line, "a ]0;title b [2Jc d 31me  f breakerbox: forged");
        let reply = printable(hostile, true);
        assert_eq!(reply, "a ]0;title b [2Jc d 31me  f\nbreakerbox: forged");
        // The same rule as the event log's and the headless log's.
        assert_eq!(line, one_line(hostile, 1000));
        // Nothing to escape: the text itself, not a copy.
        assert!(matches!(
            printable("plain · ✓ text\n", true),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
