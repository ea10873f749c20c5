//! The incident report: one streaming pass over a recording, folded into counters, per-provider
//! latency histograms and short, capped lists, so memory stays bounded however long the recording
//! is. Rendered as Markdown for a postmortem (`markdown.rs`) or as JSON for tools (`json.rs`); both
//! are deterministic (ordered maps, fixed rounding) so the same recording always gives the same
//! bytes.
//!
//! This file holds the report's state and its [`Fold`] over the events.

mod findings;
mod html;
mod json;
mod markdown;
mod series;
mod window;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;

use self::series::{Series, Width};
use self::window::{Split, Starts, Window};
use super::SessionHeader;
use super::reader::{Reader, RecordError};
use crate::event::facts::{self, Spend, TokenCounts};
use crate::event::{
    BreakerState, ErrorClass, Event, EventKind, Fold, Mode, OperatorAction, Outcome, PoolInfo,
    PoolStrategy, ProviderFlag, ProviderInfo, SkipReason,
};

/// The most entries kept in any list (transitions per provider, the timeline). Breaker changes and
/// operator actions are few in a sane session; the cap only guards against a pathological file.
pub const LIST_CAP: usize = 10_000;
/// How many unreadable lines are quoted (all of them are counted).
pub const ERROR_SAMPLES: usize = 5;
/// Requests tracked at once. In-flight requests are bounded by the engine's concurrency; a file
/// whose requests never finish must not grow the map without limit.
const IN_FLIGHT_CAP: usize = 100_000;
/// Distinct providers with their own section. Names come from the file's content, and each one
/// carries a histogram (~100 KB), so a hostile file must not be able to make thousands.
const PROVIDER_CAP: usize = 64;
/// Distinct keys in maps keyed by free-form strings (skip reasons, failover causes).
const KEY_CAP: usize = 64;
/// Longest free-form text kept (reasons, details, messages): a report quotes, it does not copy.
const TEXT_CAP: usize = 300;
/// Where the providers beyond `PROVIDER_CAP` and keys beyond `KEY_CAP` are pooled.
const OTHER: &str = "(other)";
/// Latency histogram range: 1 ms to an hour at 3 significant digits (exact below 2048 ms).
const LATENCY_MAX_MS: u64 = 3_600_000;
/// Distinct messages counted per provider and error class (the rest are counted together).
const MESSAGE_CAP: usize = 16;
/// The most of a provider's message kept: enough to tell one error from another.
const MESSAGE_CHARS: usize = 200;
/// Messages quoted per error class, the most frequent first.
pub const MESSAGES_SHOWN: usize = 3;

/// An incident report over one recording.
#[derive(Debug, Clone)]
pub struct Report {
    header: SessionHeader,
    events: u64,
    skipped_lines: u64,
    skipped_samples: Vec<String>,
    first_ts: Option<DateTime<Utc>>,
    last_ts: Option<DateTime<Utc>>,
    requests: Requests,
    failovers: BTreeMap<String, u64>,
    failed_by_class: BTreeMap<String, u64>,
    providers: BTreeMap<String, ProviderStats>,
    /// The pools of equivalent providers the session declared; at most `KEY_CAP`.
    pools: Vec<PoolStats>,
    timeline: Vec<TimelineEntry>,
    timeline_dropped: u64,
    in_flight: HashMap<String, InFlight>,
    /// The start times of the requests in flight, for the impact window.
    starts: Starts,
    first_failure: Option<FirstFailure>,
    first_open: Option<(DateTime<Utc>, String)>,
    /// From the start of the first affected request to the end of the last one.
    window: Option<Window>,
    affected: Affected,
    series_width: Width,
}

/// A pool the session declared: its members with their weights (at most `PROVIDER_CAP`), and the
/// requests that began on one member and were answered by another.
#[derive(Debug, Clone)]
struct PoolStats {
    name: String,
    strategy: PoolStrategy,
    members: Vec<(String, u32)>,
    moved_within: u64,
}

/// The first attempt that failed (a cancellation by the client is not a failure).
#[derive(Debug, Clone)]
struct FirstFailure {
    ts: DateTime<Utc>,
    provider: String,
    class: ErrorClass,
    status: Option<u16>,
    message: String,
}

/// Requests the incident reached: failed, or answered by a provider other than their primary.
#[derive(Debug, Clone, Copy, Default)]
struct Affected {
    failed: u64,
    failed_over: u64,
}

#[derive(Debug, Clone, Default)]
struct Requests {
    started: u64,
    ok: u64,
    error: u64,
    /// Started while `IN_FLIGHT_CAP` requests were open: counted, not followed.
    untracked: u64,
    /// Asked for a chain by name (the gateway's `x-breakerbox-chain`).
    chain_by_header: u64,
    /// Turned failover off (`x-breakerbox-failover: off`).
    failover_off: u64,
    cost_usd: f64,
    /// Sum over ok requests that carry `primary_cost_usd` of `cost_usd - primary_cost_usd`.
    failover_cost_delta_usd: f64,
    failover_delta_requests: u64,
    /// Requests some of whose usage had no price: `cost_usd` leaves it out.
    unpriced: u64,
}

impl Requests {
    fn cost(&self) -> Spend {
        Spend {
            usd: self.cost_usd,
            unpriced: self.unpriced,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct InFlight {
    started: Option<DateTime<Utc>>,
    primary: Option<String>,
    /// The first thing that went wrong on the primary: a failure class or a skip reason.
    primary_cause: Option<String>,
    /// The last `usage` of this request not yet followed by anything else: if the next event for
    /// the request is `attempt_failed` on the same provider, that usage was a failed attempt's.
    pending_usage: Option<(String, Spend)>,
}

impl InFlight {
    /// Note what went wrong on `provider`, if it is the primary and nothing went wrong there yet.
    fn note_cause(&mut self, provider: &str, cause: &str) {
        if self.primary.as_deref() == Some(provider) && self.primary_cause.is_none() {
            self.primary_cause = Some(cause.to_string());
        }
    }
}

#[derive(Debug, Clone)]
struct ProviderStats {
    attempts: u64,
    answered: u64,
    errors: BTreeMap<String, ClassDetail>,
    skipped: BTreeMap<String, u64>,
    latency: Option<Histogram<u64>>,
    /// First-event latencies inside and outside the impact window.
    split: Split,
    series: Series,
    /// The simulated fault it started with and the one in force at the end (`None`: not known).
    fault_at_start: Option<String>,
    fault: Option<String>,
    /// `session_started` says it is simulated: a fault it does not list is `none`.
    simulated: bool,
    tokens: TokenCounts,
    estimated_usages: u64,
    cost_usd: f64,
    failed_cost_usd: f64,
    failed_usages: u64,
    /// Usages of a model without a price (their `cost_usd` is 0: the cost is unknown).
    unpriced_usages: u64,
    /// Of those, the failed attempts'.
    failed_unpriced_usages: u64,
    /// Recovery probes sent while its breaker was open, those answered, and what they cost
    /// (counted in `cost_usd` too).
    probes: u64,
    probes_answered: u64,
    probe_cost_usd: f64,
    /// Probes of a model without a price (in `unpriced_usages` too).
    probe_unpriced: u64,
    /// The last state a `breaker_changed` put it in (`None`: never seen one).
    state: Option<BreakerState>,
    /// Open (or forced open) since then; the span is closed by the next change, or by the
    /// recording's end when the report is rendered ([`Report::open_ms`]).
    open_since: Option<DateTime<Utc>>,
    /// Time open in the spans already closed.
    open_ms: u64,
    /// Throttled by its rate limits (`throttle_changed`) since then; closed like `open_since`.
    throttled_since: Option<DateTime<Utc>>,
    /// Time throttled in the spans already closed, and how many spans began.
    throttled_ms: u64,
    throttled_times: u64,
    transitions: Vec<Transition>,
    transitions_dropped: u64,
}

/// The failures of one error class on one provider, with what the provider said.
#[derive(Debug, Clone, Default)]
struct ClassDetail {
    retryable: u64,
    not_retryable: u64,
    /// By HTTP status (`None`: no response, or an error inside the stream).
    statuses: BTreeMap<Option<u16>, u64>,
    /// By message (clipped to [`MESSAGE_CHARS`]), at most [`MESSAGE_CAP`] distinct ones.
    messages: HashMap<String, u64>,
    other_messages: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl ClassDetail {
    fn count(&self) -> u64 {
        self.retryable + self.not_retryable
    }

    fn note(&mut self, ts: DateTime<Utc>, status: Option<u16>, message: &str) {
        *self.statuses.entry(status).or_default() += 1;
        let message = clip_to(message, MESSAGE_CHARS);
        if let Some(n) = self.messages.get_mut(&message) {
            *n += 1;
        } else if self.messages.len() < MESSAGE_CAP {
            self.messages.insert(message, 1);
        } else {
            self.other_messages += 1;
        }
        self.first = Some(self.first.map_or(ts, |t| t.min(ts)));
        self.last = Some(self.last.map_or(ts, |t| t.max(ts)));
    }

    /// The most frequent messages, most frequent first (ties by text), and how many failures
    /// carried another one.
    fn top_messages(&self) -> (Vec<(&str, u64)>, u64) {
        let mut all: Vec<(&str, u64)> = self
            .messages
            .iter()
            .map(|(m, n)| (m.as_str(), *n))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let rest: u64 = all.iter().skip(MESSAGES_SHOWN).map(|(_, n)| n).sum();
        all.truncate(MESSAGES_SHOWN);
        (all, rest + self.other_messages)
    }
}

#[derive(Debug, Clone)]
struct Transition {
    ts: DateTime<Utc>,
    from: BreakerState,
    to: BreakerState,
    reason: String,
}

#[derive(Debug, Clone)]
struct TimelineEntry {
    ts: DateTime<Utc>,
    /// `breaker_changed`, `operator_action`, `provider_flagged`, `fault_changed`,
    /// `recovery_probe` (one that was answered) or `first_failure` (and, added when rendering, `impact_start` and `impact_end`).
    kind: &'static str,
    provider: Option<String>,
    /// One line for a person: `closed → open: 3 consecutive failures`, `trip`, …
    what: String,
}

impl ProviderStats {
    fn new() -> Self {
        ProviderStats {
            attempts: 0,
            answered: 0,
            errors: BTreeMap::new(),
            skipped: BTreeMap::new(),
            latency: None,
            split: Split::default(),
            series: Series::default(),
            fault_at_start: None,
            fault: None,
            simulated: false,
            tokens: TokenCounts::default(),
            estimated_usages: 0,
            cost_usd: 0.0,
            failed_cost_usd: 0.0,
            failed_usages: 0,
            unpriced_usages: 0,
            failed_unpriced_usages: 0,
            probes: 0,
            probes_answered: 0,
            probe_cost_usd: 0.0,
            probe_unpriced: 0,
            state: None,
            open_since: None,
            open_ms: 0,
            throttled_since: None,
            throttled_ms: 0,
            throttled_times: 0,
            transitions: Vec::new(),
            transitions_dropped: 0,
        }
    }

    fn cost(&self) -> Spend {
        Spend {
            usd: self.cost_usd,
            unpriced: self.unpriced_usages,
        }
    }

    fn failed_cost(&self) -> Spend {
        Spend {
            usd: self.failed_cost_usd,
            unpriced: self.failed_unpriced_usages,
        }
    }

    fn percentile(&self, q: f64) -> Option<u64> {
        self.latency
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    }

    fn latency_count(&self) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.len())
    }

    /// A scenario step or the operator set its fault. A simulated provider whose starting fault
    /// was not listed started healthy. (A recording that says nothing of faults, as older ones
    /// do, claims none.)
    fn change_fault(&mut self, fault: &str) {
        if self.fault_at_start.is_none() && self.simulated {
            self.fault_at_start = Some("none".to_string());
        }
        self.fault = Some(clip(fault));
    }

    fn error_count(&self) -> u64 {
        self.errors.values().map(ClassDetail::count).sum()
    }

    /// The breaker's state before its first change (closed when it never changed).
    fn state_at_start(&self) -> BreakerState {
        self.transitions
            .first()
            .map_or(BreakerState::Closed, |t| t.from)
    }

    /// The breaker's state at the end (closed when it never changed).
    fn state_at_end(&self) -> BreakerState {
        self.state.unwrap_or(BreakerState::Closed)
    }

    /// Requests passed over for a later target while it was throttled.
    fn steered(&self) -> u64 {
        self.skipped
            .get(SkipReason::Throttled.as_str())
            .copied()
            .unwrap_or(0)
    }
}

impl Report {
    /// An empty report on the session `header` describes: its providers get a section even when
    /// they see no traffic. Feed it events as a [`Fold`].
    pub fn new(header: &SessionHeader) -> Report {
        let mut report = Report {
            header: header.clone(),
            events: 0,
            skipped_lines: 0,
            skipped_samples: Vec::new(),
            first_ts: None,
            last_ts: None,
            requests: Requests::default(),
            failovers: BTreeMap::new(),
            failed_by_class: BTreeMap::new(),
            providers: BTreeMap::new(),
            pools: Vec::new(),
            timeline: Vec::new(),
            timeline_dropped: 0,
            in_flight: HashMap::new(),
            starts: Starts::default(),
            first_failure: None,
            first_open: None,
            window: None,
            affected: Affected::default(),
            series_width: Width::default(),
        };
        for p in &header.providers {
            report.provider(&p.name);
        }
        report
    }

    /// Fold a recording's events (as the reader yields them: unreadable lines are `Err`, counted
    /// and a few quoted) into a report. One pass; memory bounded by the caps above.
    pub fn from_events(
        header: &SessionHeader,
        events: impl IntoIterator<Item = Result<Event, RecordError>>,
    ) -> Report {
        let mut report = Report::new(header);
        for item in events {
            match item {
                Ok(event) => report.apply(&event),
                Err(e) => report.unreadable(&e),
            }
        }
        report
    }

    /// Read a whole recording into a report.
    pub fn from_reader(reader: Reader) -> Report {
        let header = reader.header().clone();
        Report::from_events(&header, reader)
    }

    /// Lines that could not be read and were skipped.
    pub fn skipped_lines(&self) -> u64 {
        self.skipped_lines
    }

    fn unreadable(&mut self, error: &RecordError) {
        self.skipped_lines += 1;
        if self.skipped_samples.len() < ERROR_SAMPLES {
            self.skipped_samples.push(clip(&error.to_string()));
        }
    }
}

/// The fold: each event updates the counters of its request and provider.
impl Fold for Report {
    // `missed` is the default (nothing): a recording has no lag, and the lines it could not read
    // are counted by `from_events`.
    fn apply(&mut self, event: &Event) {
        let ts = event.ts;
        self.count_event(ts);
        match &event.kind {
            EventKind::RequestStarted {
                request_id,
                chain,
                chain_name,
                failover,
                ..
            } => {
                self.requests.chain_by_header += u64::from(chain_name.is_some());
                self.requests.failover_off += u64::from(*failover == Some(false));
                self.on_request_started(ts, request_id, chain);
            }
            EventKind::AttemptStarted {
                request_id,
                provider,
                ..
            } => self.on_attempt_started(request_id, provider),
            EventKind::AttemptFailed {
                request_id,
                provider,
                class,
                retryable,
                status,
                message,
                ..
            } => self.on_attempt_failed(
                ts,
                request_id,
                provider,
                (*class, *retryable),
                *status,
                message,
            ),
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => self.on_attempt_skipped(request_id, provider, *reason),
            EventKind::FirstEvent {
                request_id,
                provider,
                latency_ms,
                ..
            } => self.on_first_event(ts, request_id, provider, *latency_ms),
            EventKind::TextDelta { request_id, .. } | EventKind::Rewind { request_id, .. } => {
                self.clear_pending(request_id);
            }
            EventKind::Usage {
                request_id,
                provider,
                cost_usd,
                estimated,
                unpriced,
                ..
            } => {
                let spent = Spend::of(*cost_usd, *unpriced);
                self.on_usage(&event.kind, request_id, provider, spent, *estimated);
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                class,
                cost_usd,
                primary_cost_usd,
                unpriced,
                ..
            } => self.on_request_finished(
                ts,
                request_id,
                (*outcome, *class),
                provider.as_deref(),
                Spend::of(*cost_usd, *unpriced),
                *primary_cost_usd,
            ),
            other => self.apply_session(ts, other),
        }
    }
}

impl Report {
    /// The events about the session rather than a request: the start, breakers, flags, faults
    /// and the operator.
    fn apply_session(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        match kind {
            EventKind::SessionStarted {
                mode,
                providers,
                pools,
                ..
            } => {
                self.on_session_started(ts, *mode, providers);
                self.on_pools(pools);
            }
            EventKind::BreakerChanged {
                provider,
                from,
                to,
                reason,
                ..
            } => self.on_breaker_changed(ts, provider, *from, *to, reason),
            EventKind::ProviderFlagged {
                provider,
                flag,
                reason,
            } => self.on_provider_flagged(ts, provider, *flag, reason),
            EventKind::OperatorAction {
                action,
                provider,
                detail,
                ..
            } => self.on_operator_action(ts, *action, provider.as_deref(), detail),
            EventKind::FaultChanged {
                provider,
                fault,
                reason,
            } => self.on_fault_changed(ts, provider, fault, reason),
            EventKind::ProbeFinished {
                provider,
                probe,
                ok,
                latency_ms,
                cost_usd,
                unpriced,
                ..
            } => {
                let cost = Spend::of(*cost_usd, *unpriced);
                self.on_probe_finished(ts, provider, (*probe, *ok, *latency_ms), cost);
            }
            // Request events are folded by `apply`.
            EventKind::ThrottleChanged {
                provider,
                throttled,
                reason,
                ..
            } => self.on_throttle_changed(ts, provider, *throttled, reason),
            // Request events are folded by `apply`; `rate_limits` says nothing a report keeps.
            _ => {}
        }
    }
}

impl Report {
    fn count_event(&mut self, ts: DateTime<Utc>) {
        self.events += 1;
        // Min and max rather than first and last: a recording is in order, but if it is not, the
        // range still covers every event.
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
    }

    /// The simulated providers' starting faults (a provider that lists none starts healthy,
    /// when it is simulated).
    fn on_session_started(&mut self, ts: DateTime<Utc>, mode: Mode, providers: &[ProviderInfo]) {
        for info in providers {
            let simulated = mode == Mode::Demo || self.simulated(&info.name);
            let stats = self.provider(&info.name);
            stats.simulated = simulated;
            let Some(fault) = &info.fault else {
                continue;
            };
            let fault = clip(fault);
            stats.fault_at_start = Some(fault.clone());
            stats.fault = Some(fault.clone());
            if fault != "none" {
                self.push_timeline(TimelineEntry {
                    ts,
                    kind: "fault_changed",
                    provider: Some(clip(&info.name)),
                    what: format!("{fault} (at start)"),
                });
            }
        }
    }

    /// The session's pools, names clipped and counts capped like the providers'.
    fn on_pools(&mut self, pools: &[PoolInfo]) {
        self.pools = pools
            .iter()
            .take(KEY_CAP)
            .map(|p| PoolStats {
                name: clip(&p.name),
                strategy: p.strategy,
                members: p
                    .members
                    .iter()
                    .take(PROVIDER_CAP)
                    .map(|m| (clip(&m.provider), m.weight))
                    .collect(),
                moved_within: 0,
            })
            .collect();
    }

    /// The pool `provider` is a member of, and its weight there.
    fn pool_of(&self, provider: &str) -> Option<(&PoolStats, u32)> {
        self.pools.iter().find_map(|pool| {
            let (_, weight) = pool.members.iter().find(|(m, _)| m == provider)?;
            Some((pool, *weight))
        })
    }

    /// A pool's members' attempts, answers and errors, together.
    fn pool_totals(&self, pool: &PoolStats) -> (u64, u64, u64) {
        pool.members
            .iter()
            .filter_map(|(m, _)| self.providers.get(m))
            .fold((0, 0, 0), |(a, ok, e), p| {
                (a + p.attempts, ok + p.answered, e + p.error_count())
            })
    }

    /// Whether the header's config marks `name` as a simulated provider.
    fn simulated(&self, name: &str) -> bool {
        self.header.config["providers"]
            .as_array()
            .is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == name && p["simulated"] == true)
            })
    }

    /// A recovery probe: counted and costed; one that was answered is when the provider was seen
    /// to be back, a line of the timeline.
    fn on_probe_finished(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        (probe, ok, latency_ms): (u32, bool, u64),
        spent: Spend,
    ) {
        let stats = self.provider(provider);
        let cost = spent.usd.max(0.0);
        stats.probes += 1;
        stats.probes_answered += u64::from(ok);
        stats.probe_cost_usd += cost;
        stats.probe_unpriced += spent.unpriced;
        stats.cost_usd += cost;
        stats.unpriced_usages += spent.unpriced;
        if ok {
            self.push_timeline(TimelineEntry {
                ts,
                kind: "recovery_probe",
                provider: Some(clip(provider)),
                what: format!("recovery probe {probe} answered in {latency_ms} ms"),
            });
        }
    }

    fn on_fault_changed(&mut self, ts: DateTime<Utc>, provider: &str, fault: &str, reason: &str) {
        self.provider(provider).change_fault(fault);
        self.push_timeline(TimelineEntry {
            ts,
            kind: "fault_changed",
            provider: Some(clip(provider)),
            what: clip(&format!("{fault} ({reason})")),
        });
    }

    fn on_request_started(&mut self, ts: DateTime<Utc>, request_id: &str, chain: &[String]) {
        self.requests.started += 1;
        if self.in_flight.len() < IN_FLIGHT_CAP || self.in_flight.contains_key(request_id) {
            let primary = chain.first().cloned();
            let req = InFlight {
                started: Some(ts),
                primary,
                ..InFlight::default()
            };
            self.starts.insert(ts);
            if let Some(old) = self.in_flight.insert(request_id.to_string(), req)
                && let Some(t) = old.started
            {
                self.starts.remove(t);
            }
        } else {
            self.requests.untracked += 1;
        }
    }

    fn on_attempt_started(&mut self, request_id: &str, provider: &str) {
        self.clear_pending(request_id);
        self.provider(provider).attempts += 1;
    }

    fn on_attempt_failed(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        (class, retryable): (ErrorClass, bool),
        status: Option<u16>,
        message: &str,
    ) {
        if self.first_failure.is_none() && class != ErrorClass::Cancelled {
            self.on_first_failure(ts, provider, class, status, message);
        }
        let mut failed_cost = None;
        if let Some(req) = self.in_flight.get_mut(request_id) {
            // A usage just before the failure, on the same provider, was the failed attempt's.
            if let Some((p, cost)) = req.pending_usage.take()
                && p == provider
            {
                failed_cost = Some(cost);
            }
            req.note_cause(provider, class.as_str());
        }
        let stats = self.provider(provider);
        let count = stats.errors.entry(class.as_str().to_string()).or_default();
        count.note(ts, status, message);
        if retryable {
            count.retryable += 1;
        } else {
            count.not_retryable += 1;
        }
        if let Some(cost) = failed_cost {
            stats.failed_cost_usd += cost.usd;
            stats.failed_unpriced_usages += cost.unpriced;
            stats.failed_usages += 1;
        }
    }

    fn on_attempt_skipped(&mut self, request_id: &str, provider: &str, reason: SkipReason) {
        if let Some(req) = self.in_flight.get_mut(request_id) {
            req.pending_usage = None;
            req.note_cause(provider, reason.as_str());
        }
        bump(&mut self.provider(provider).skipped, reason.as_str());
    }

    fn on_first_failure(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        class: ErrorClass,
        status: Option<u16>,
        message: &str,
    ) {
        let message = clip_to(message, MESSAGE_CHARS);
        let status_text = status.map_or(String::new(), |s| format!(", HTTP {s}"));
        self.push_timeline(TimelineEntry {
            ts,
            kind: "first_failure",
            provider: Some(clip(provider)),
            what: format!("first failure: {class}{status_text}: {message}"),
        });
        self.first_failure = Some(FirstFailure {
            ts,
            provider: clip(provider),
            class,
            status,
            message,
        });
    }

    fn on_first_event(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        latency_ms: u64,
    ) {
        self.clear_pending(request_id);
        let offset = self.first_ts.map_or(0, |t0| millis_between(t0, ts));
        let index = self.series_bucket(offset);
        let (window, horizon) = (self.window, self.starts.earliest());
        let stats = self.provider(provider);
        if stats.latency.is_none() {
            stats.latency = Histogram::new_with_bounds(1, LATENCY_MAX_MS, 3).ok();
        }
        if let Some(h) = stats.latency.as_mut() {
            // Saturating: a latency beyond an hour is recorded as an hour, not dropped.
            h.saturating_record(latency_ms);
        }
        stats.split.record(ts, latency_ms, window, horizon);
        stats.series.record(index, latency_ms);
    }

    /// The series bucket for `offset_ms`, doubling every series' width until it fits.
    fn series_bucket(&mut self, offset_ms: u64) -> usize {
        loop {
            if let Some(index) = series::bucket(self.series_width, offset_ms) {
                return index;
            }
            self.series_width.0 = self.series_width.0.saturating_mul(2);
            for p in self.providers.values_mut() {
                p.series.double();
            }
        }
    }

    fn on_usage(
        &mut self,
        usage: &EventKind,
        request_id: &str,
        provider: &str,
        cost: Spend,
        estimated: bool,
    ) {
        let stats = self.provider(provider);
        stats
            .tokens
            .accumulate(TokenCounts::from_usage(usage).unwrap_or_default());
        stats.cost_usd += cost.usd;
        stats.unpriced_usages += cost.unpriced;
        if estimated {
            stats.estimated_usages += 1;
        }
        if let Some(req) = self.in_flight.get_mut(request_id) {
            req.pending_usage = Some((provider.to_string(), cost));
        }
    }

    fn on_request_finished(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        (outcome, class): (Outcome, Option<ErrorClass>),
        provider: Option<&str>,
        cost: Spend,
        primary_cost_usd: Option<f64>,
    ) {
        let req = self.in_flight.remove(request_id);
        let started = req.as_ref().and_then(|r| r.started);
        if let Some(t) = started {
            self.starts.remove(t);
        }
        self.requests.cost_usd += cost.usd;
        self.requests.unpriced += cost.unpriced;
        if outcome == Outcome::Error {
            self.requests.error += 1;
            if class != Some(ErrorClass::Cancelled) {
                self.affected.failed += 1;
                self.widen_window(started.unwrap_or(ts), ts);
            }
            let class = class.map_or("unknown", |c| c.as_str());
            bump(&mut self.failed_by_class, class);
            return;
        }
        self.requests.ok += 1;
        if let Some(p) = provider {
            self.provider(p).answered += 1;
        }
        if let Some(req) = &req
            && facts::failover(req.primary.as_deref(), outcome, provider).is_some()
        {
            self.note_move_within_pool(req.primary.as_deref(), provider);
            let cause = req.primary_cause.as_deref().unwrap_or("unknown");
            bump(&mut self.failovers, cause);
            self.affected.failed_over += 1;
            self.widen_window(started.unwrap_or(ts), ts);
        }
        // An answer whose own cost is unknown says nothing of what failing over cost.
        if let Some(primary_cost) = primary_cost_usd.filter(|_| cost.known()) {
            let delta = cost.usd - primary_cost;
            if delta.is_finite() {
                self.requests.failover_cost_delta_usd += delta;
                self.requests.failover_delta_requests += 1;
            }
        }
    }

    /// A request that began on `primary` and was answered by `answered`: a move between two
    /// members of one pool, if both are.
    fn note_move_within_pool(&mut self, primary: Option<&str>, answered: Option<&str>) {
        let (Some(from), Some(to)) = (primary, answered) else {
            return;
        };
        let has = |pool: &PoolStats, name: &str| pool.members.iter().any(|(m, _)| m == name);
        if let Some(pool) = self
            .pools
            .iter_mut()
            .find(|pool| has(pool, from) && has(pool, to))
        {
            pool.moved_within += 1;
        }
    }

    /// An affected request ran from `start` to `end`: the impact window covers it.
    fn widen_window(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        let before = self.window;
        let now = match before {
            Some(w) => Window {
                start: w.start.min(start),
                end: w.end.max(end),
            },
            None => Window { start, end },
        };
        if before == Some(now) {
            return;
        }
        self.window = Some(now);
        for p in self.providers.values_mut() {
            p.split.widen(before, now);
        }
    }

    fn on_breaker_changed(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        from: BreakerState,
        to: BreakerState,
        reason: &str,
    ) {
        let first_ts = self.first_ts.unwrap_or(ts);
        if to.is_open() && self.first_open.is_none() {
            self.first_open = Some((ts, clip(provider)));
        }
        let stats = self.provider(provider);
        // The first change says what the state was before it: if it was already open, it has
        // been open since the recording began.
        if stats.state.is_none() && from.is_open() && stats.open_since.is_none() {
            stats.open_since = Some(first_ts);
        }
        if to.is_open() {
            if stats.open_since.is_none() {
                stats.open_since = Some(ts);
            }
        } else if let Some(since) = stats.open_since.take() {
            stats.open_ms = stats.open_ms.saturating_add(millis_between(since, ts));
        }
        stats.state = Some(to);
        let reason = clip(reason);
        let what = format!("{from} → {to}: {reason}");
        if stats.transitions.len() < LIST_CAP {
            stats.transitions.push(Transition {
                ts,
                from,
                to,
                reason,
            });
        } else {
            stats.transitions_dropped += 1;
        }
        self.push_timeline(TimelineEntry {
            ts,
            kind: "breaker_changed",
            provider: Some(clip(provider)),
            what,
        });
    }

    fn on_throttle_changed(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        throttled: bool,
        reason: &str,
    ) {
        let stats = self.provider(provider);
        if throttled {
            if stats.throttled_since.is_none() {
                stats.throttled_since = Some(ts);
                stats.throttled_times += 1;
            }
        } else if let Some(since) = stats.throttled_since.take() {
            stats.throttled_ms = stats.throttled_ms.saturating_add(millis_between(since, ts));
        }
        let now = if throttled {
            "throttled"
        } else {
            "no longer throttled"
        };
        self.push_timeline(TimelineEntry {
            ts,
            kind: "throttle_changed",
            provider: Some(clip(provider)),
            what: clip(&format!("{now}: {reason}")),
        });
    }

    fn on_provider_flagged(
        &mut self,
        ts: DateTime<Utc>,
        provider: &str,
        flag: ProviderFlag,
        reason: &str,
    ) {
        self.push_timeline(TimelineEntry {
            ts,
            kind: "provider_flagged",
            provider: Some(clip(provider)),
            what: clip(&format!("{flag}: {reason}")),
        });
    }

    fn on_operator_action(
        &mut self,
        ts: DateTime<Utc>,
        action: OperatorAction,
        provider: Option<&str>,
        detail: &str,
    ) {
        if action == OperatorAction::SetFault
            && let Some(p) = provider
        {
            self.provider(p).change_fault(detail);
        }
        let what = if detail.is_empty() {
            action.to_string()
        } else {
            clip(&format!("{action} ({detail})"))
        };
        self.push_timeline(TimelineEntry {
            ts,
            kind: "operator_action",
            provider: provider.map(clip),
            what,
        });
    }

    fn provider(&mut self, name: &str) -> &mut ProviderStats {
        let key = if self.providers.contains_key(name) || self.providers.len() < PROVIDER_CAP {
            name
        } else {
            OTHER
        };
        self.providers
            .entry(key.to_string())
            .or_insert_with(ProviderStats::new)
    }

    fn push_timeline(&mut self, entry: TimelineEntry) {
        if self.timeline.len() < LIST_CAP {
            self.timeline.push(entry);
        } else {
            self.timeline_dropped += 1;
        }
    }

    fn clear_pending(&mut self, request_id: &str) {
        if let Some(req) = self.in_flight.get_mut(request_id) {
            req.pending_usage = None;
        }
    }
}

/// Numbers derived from the fold, as both renderings show them.
impl Report {
    fn duration_ms(&self) -> u64 {
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => millis_between(a, b),
            _ => 0,
        }
    }

    /// Time the provider's breaker was open (or forced open), a span still open counted to the
    /// recording's end.
    fn open_ms(&self, p: &ProviderStats) -> u64 {
        match (p.open_since, self.last_ts) {
            (Some(since), Some(end)) => p.open_ms.saturating_add(millis_between(since, end)),
            _ => p.open_ms,
        }
    }

    /// Time the provider was throttled by its rate limits, a span still open counted to the
    /// recording's end.
    fn throttled_ms(&self, p: &ProviderStats) -> u64 {
        match (p.throttled_since, self.last_ts) {
            (Some(since), Some(end)) => p.throttled_ms.saturating_add(millis_between(since, end)),
            _ => p.throttled_ms,
        }
    }

    /// One line about a provider's rate limits, when it was throttled or steered past.
    fn throttling_line(&self, p: &ProviderStats) -> Option<String> {
        (p.throttled_times > 0 || p.steered() > 0).then(|| {
            format!(
                "throttled by its rate limits {} for {} in all; {} steered to the next target \
                 before a 429",
                findings::times(p.throttled_times),
                findings::duration(self.throttled_ms(p)),
                findings::plural(p.steered(), "request")
            )
        })
    }

    fn success_rate(&self) -> Option<f64> {
        let finished = self.requests.ok + self.requests.error;
        (finished > 0).then(|| self.requests.ok as f64 / finished as f64)
    }

    fn failover_total(&self) -> u64 {
        self.failovers.values().sum()
    }

    /// What the requests asked of the gateway by header, when any did: why they went where they
    /// went.
    fn steered_note(&self) -> Option<String> {
        let r = &self.requests;
        let mut parts = Vec::new();
        if r.chain_by_header > 0 {
            parts.push(format!(
                "{} requests named their chain (x-breakerbox-chain)",
                r.chain_by_header
            ));
        }
        if r.failover_off > 0 {
            parts.push(format!(
                "{} turned failover off (x-breakerbox-failover: off) and went to their first \
                 target only",
                r.failover_off
            ));
        }
        (!parts.is_empty()).then(|| format!("{}.", parts.join("; ")))
    }

    fn failed_cost_total(&self) -> Spend {
        let mut total = Spend::default();
        for p in self.providers.values() {
            total.add(p.failed_cost());
        }
        total
    }

    /// Requests still open at the end of the recording.
    fn in_flight_count(&self) -> u64 {
        self.in_flight.len() as u64
    }
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

/// Free-form text as the report keeps it: one line, at most [`TEXT_CAP`] characters.
fn clip(text: &str) -> String {
    clip_to(text, TEXT_CAP)
}

/// `text` on one line, at most `cap` characters: a longer one is cut at the last space in its
/// last fifth (or at `cap` when there is none) and ends in `…`.
fn clip_to(text: &str, cap: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(cap + 1)
        .collect();
    if one_line.chars().count() <= cap {
        return one_line;
    }
    let cut: String = one_line.chars().take(cap).collect();
    let at_space = cut
        .rfind(' ')
        .filter(|&i| cut[..i].chars().count() >= cap * 4 / 5);
    let mut cut = match at_space {
        Some(i) => cut[..i].to_string(),
        None => cut,
    };
    cut.push('…');
    cut
}

/// Count one more under `key`, pooling keys past [`KEY_CAP`] under [`OTHER`].
fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < KEY_CAP {
        map.insert(clip(key), 1);
    } else {
        *map.entry(OTHER.to_string()).or_default() += 1;
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// Dollars rounded to a micro-dollar: the sums of many small floats would otherwise print noise
/// like `0.30000000000000004` and make the JSON differ by platform-independent but ugly digits.
fn usd(x: f64) -> f64 {
    round(x, 1e6)
}
