//! The console's state: a fold over the event stream. `Dashboard::apply` is the only way events change
//! it, and it reads time only from the events (plus `tick` for countdowns), so replaying a recording
//! gives exactly the screens the operator saw live. Everything kept is bounded by ring buffers.
//!
//! UI state (focus, selection, scroll, filters) lives apart, in `ui.rs`; rendering is a pure function
//! of both (`panels/`).

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};

use std::fmt::{self, Write as _};
use std::sync::LazyLock;

use crate::engine::breaker::BreakerState;
use crate::engine::classify::Policy;
use crate::event::{Event, EventKind, Mode, Outcome, ProviderInfo, Source};
use crate::provider::{ErrorClass, Phase};

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
    /// Attempts that reached a healthy first event / ended in a failure.
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
        reason: String,
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
    /// Attempts started while their provider was half-open and not yet ended, oldest first.
    probes: VecDeque<Probe>,
    /// The latest usage cost per (request, provider): the engine publishes an attempt's `usage` just
    /// before its `attempt_failed`, which charges it to the provider's failed cost.
    usage: VecDeque<UsageCost>,
}

#[derive(Debug, Clone)]
struct Probe {
    provider: String,
    request_id: String,
    attempt: u32,
}

#[derive(Debug, Clone)]
struct UsageCost {
    request_id: String,
    provider: String,
    cost_usd: f64,
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
/// Longest field quoted in a log line.
const LOG_FIELD_CHARS: usize = 300;

/// The default policy says which classes count for a breaker (the console has no engine config).
static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

fn counts_for_breaker(class: ErrorClass) -> bool {
    class != ErrorClass::Cancelled && POLICY.get(class).breaker
}

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
                ..
            } => self.on_session_started(ts, *mode, providers, *breaker_threshold),
            EventKind::RequestStarted {
                request_id,
                source,
                chain,
                prompt,
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
            } => self.on_attempt_skipped(ts, request_id, provider, reason),
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
            } => self.on_breaker_changed(ts, provider, to, reason, *recovery_ms),
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
                if action == "set_fault"
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
                view.protocol.clone_from(&info.protocol);
                view.model.clone_from(&info.model);
                ordered.push(view);
            } else if ordered.len() + self.providers.len() < PROVIDERS_KEPT {
                ordered.push(self.new_provider(ts, &info.name, &info.protocol, &info.model));
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
                if counts_for_breaker(failure.class) {
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
        reason: &str,
    ) {
        self.provider_index(ts, provider, "", "");
        if let Some(request) = self.request_mut(request_id) {
            push_attempt(
                &mut request.attempts,
                AttemptView {
                    number: 0,
                    provider: provider.to_string(),
                    model: String::new(),
                    state: AttemptState::Skipped {
                        reason: one_line(reason, MESSAGE_CHARS_KEPT),
                    },
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
        self.ledger.usage.retain(|u| u.request_id != request_id);
    }

    fn on_breaker_changed(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        to: &str,
        reason: &str,
        recovery_ms: Option<u64>,
    ) {
        let Some(i) = self.provider_index(ts, provider, "", "") else {
            return;
        };
        // An unknown state leaves the view as it was; the log line says so.
        let Some(state) = parse_breaker_state(to) else {
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
        if let Some(u) = usage
            .iter_mut()
            .rev()
            .find(|u| u.request_id == request_id && u.provider == provider)
        {
            u.cost_usd = cost_usd;
            return;
        }
        push_ring(
            usage,
            UsageCost {
                request_id: request_id.to_string(),
                provider: provider.to_string(),
                cost_usd,
            },
            USAGE_KEPT,
        );
    }

    /// The cost of the usage just reported for this request at this provider, if any (taken, so
    /// that it is charged once).
    fn take_usage(&mut self, request_id: &str, provider: &str) -> f64 {
        let usage = &mut self.ledger.usage;
        match usage
            .iter()
            .rposition(|u| u.request_id == request_id && u.provider == provider)
        {
            Some(i) => usage.remove(i).map_or(0.0, |u| u.cost_usd),
            None => 0.0,
        }
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
        let since = now - RATE_WINDOW;
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

/// `s` on one line (control characters, escapes included, become spaces), at most `max_chars`.
fn one_line(s: &str, max_chars: usize) -> String {
    if s.len() <= max_chars && !s.contains(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let _ = write!(out, "{}", OneLine(s, max_chars));
    out
}

/// Displays a string as `one_line` does, without allocating.
struct OneLine<'a>(&'a str, usize);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OneLine(s, max) = *self;
        if s.len() <= max && !s.contains(char::is_control) {
            return f.write_str(s);
        }
        for (i, c) in s.chars().enumerate() {
            if i == max {
                return f.write_char('…');
            }
            f.write_char(if c.is_control() { ' ' } else { c })?;
        }
        Ok(())
    }
}

/// A field quoted in a log line.
fn q(s: &str) -> OneLine<'_> {
    OneLine(s, LOG_FIELD_CHARS)
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

/// A breaker state by its `as_str` name.
fn parse_breaker_state(name: &str) -> Option<BreakerState> {
    [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
    ]
    .into_iter()
    .find(|s| s.as_str() == name)
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

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "live",
        Mode::Demo => "demo",
        Mode::Serve => "serve",
        Mode::Replay => "replay",
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

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// One line for people about an event.
fn describe(kind: &EventKind) -> String {
    let mut s = String::with_capacity(96);
    // Writing to a String cannot fail.
    let _ = write_description(&mut s, kind);
    s
}

fn write_description(s: &mut String, kind: &EventKind) -> fmt::Result {
    match kind {
        EventKind::SessionStarted {
            mode,
            providers,
            breaker_threshold,
            ..
        } => {
            write!(s, "session started in {} mode:", mode_name(*mode))?;
            for (i, p) in providers.iter().take(PROVIDERS_KEPT).enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(s, "{sep}{} ({})", q(&p.name), q(&p.model))?;
            }
            if let Some(n) = breaker_threshold {
                write!(s, "; breakers open after {n} failures in a row")?;
            }
        }
        EventKind::RequestStarted {
            request_id,
            source,
            chain,
            ..
        } => {
            write!(s, "{} started ({}):", q(request_id), source_name(*source))?;
            for (i, p) in chain.iter().take(CHAIN_KEPT).enumerate() {
                let sep = if i == 0 { " " } else { " → " };
                write!(s, "{sep}{}", q(p))?;
            }
        }
        EventKind::AttemptStarted {
            request_id,
            attempt,
            provider,
            model,
        } => write!(
            s,
            "{} #{attempt} {} started ({})",
            q(request_id),
            q(provider),
            q(model)
        )?,
        EventKind::AttemptFailed {
            request_id,
            attempt,
            provider,
            phase,
            class,
            retryable,
            status,
            retry_after_ms,
            message,
            ..
        } => {
            write!(
                s,
                "{} #{attempt} {} {class} in {phase} (",
                q(request_id),
                q(provider)
            )?;
            if let Some(status) = status {
                write!(s, "HTTP {status}, ")?;
            }
            if let Some(ms) = retry_after_ms {
                write!(s, "retry after {:.1} s, ", seconds(*ms))?;
            }
            let retry = if *retryable {
                "retryable"
            } else {
                "not retryable"
            };
            write!(s, "{retry}): {}", q(message))?;
        }
        EventKind::AttemptSkipped {
            request_id,
            provider,
            reason,
        } => write!(
            s,
            "{} {} skipped: {}",
            q(request_id),
            q(provider),
            q(reason)
        )?,
        EventKind::FirstEvent {
            request_id,
            attempt,
            provider,
            latency_ms,
        } => write!(
            s,
            "{} #{attempt} {} first event in {latency_ms} ms",
            q(request_id),
            q(provider)
        )?,
        EventKind::TextDelta {
            request_id,
            provider,
            text,
        } => write!(s, "{} {} text: {}", q(request_id), q(provider), q(text))?,
        EventKind::Rewind {
            request_id,
            provider,
            discarded_chars,
            reason,
        } => write!(
            s,
            "{} rewind: {discarded_chars} chars withdrawn after {} ({})",
            q(request_id),
            q(provider),
            q(reason)
        )?,
        EventKind::Usage {
            request_id,
            provider,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_usd,
            estimated,
            ..
        } => {
            write!(
                s,
                "{} {} usage: {input_tokens} in, {output_tokens} out",
                q(request_id),
                q(provider)
            )?;
            if *cache_read_tokens > 0 || *cache_write_tokens > 0 {
                write!(
                    s,
                    ", cache {cache_read_tokens} read, {cache_write_tokens} written"
                )?;
            }
            write!(s, ", ${:.6}", finite(*cost_usd))?;
            if *estimated {
                s.push_str(" (estimated)");
            }
        }
        EventKind::RequestFinished {
            request_id,
            outcome,
            provider,
            class,
            message,
            total_ms,
            cost_usd,
            attempts,
            ..
        } => {
            match (outcome, provider) {
                (Outcome::Ok, Some(p)) => write!(s, "{} answered by {}", q(request_id), q(p))?,
                (Outcome::Ok, None) => write!(s, "{} answered", q(request_id))?,
                (Outcome::Error, _) => write!(s, "{} failed", q(request_id))?,
            }
            write!(
                s,
                " in {:.2} s, ${:.6} ({attempts} attempt{})",
                seconds(*total_ms),
                finite(*cost_usd),
                if *attempts == 1 { "" } else { "s" }
            )?;
            if *outcome == Outcome::Error {
                if let Some(class) = class {
                    write!(s, ": {class}")?;
                }
                if let Some(m) = message {
                    write!(s, ": {}", q(m))?;
                }
            }
        }
        EventKind::BreakerChanged {
            provider,
            from,
            to,
            reason,
            recovery_ms,
        } => {
            write!(
                s,
                "{} breaker {} → {} ({})",
                q(provider),
                q(from),
                q(to),
                q(reason)
            )?;
            if parse_breaker_state(to).is_none() {
                s.push_str(": unknown state, ignored");
            } else if let (Some(ms), "open") = (recovery_ms, to.as_str()) {
                write!(s, ", half-open in {:.1} s", seconds(*ms))?;
            }
        }
        EventKind::ProviderFlagged {
            provider,
            flag,
            reason,
        } => write!(s, "{} flagged {}: {}", q(provider), q(flag), q(reason))?,
        EventKind::OperatorAction {
            action,
            provider,
            detail,
        } => {
            write!(s, "operator {}", q(action))?;
            if let Some(p) = provider {
                write!(s, " {}", q(p))?;
            }
            if !detail.is_empty() {
                write!(s, " {}", q(detail))?;
            }
        }
    }
    Ok(())
}
