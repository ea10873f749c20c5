//! The console's state: a fold over the event stream. `Dashboard::apply` is the only way events change
//! it, and it reads time only from the events (plus `tick` for countdowns), so replaying a recording
//! gives exactly the screens the operator saw live. Everything kept is bounded by ring buffers.
//!
//! UI state (focus, selection, scroll, filters) lives apart, in `ui.rs`; rendering is a pure function
//! of both (`panels/`).

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};

use crate::engine::breaker::BreakerState;
use crate::event::{Event, Mode, Outcome, Source};
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
        }
    }

    /// Fold one event in.
    pub fn apply(&mut self, event: &Event) {
        self.events_applied += 1;
        self.now = Some(self.now.map_or(event.ts, |now| now.max(event.ts)));
    }

    /// Let time pass without events (countdowns, rates). Never moves time backwards.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
    }

    /// The bus said this many events were lost to lag.
    pub fn missed(&mut self, count: u64) {
        self.events_missed += count;
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderView> {
        self.providers.iter().find(|p| p.name == name)
    }
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
