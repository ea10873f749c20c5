//! The console's state: a fold over the event stream. `Dashboard::apply` is the only way events change
//! it, and it reads time only from the events (plus `tick` for countdowns), so replaying a recording
//! gives exactly the screens the operator saw live. Everything kept is bounded by ring buffers.
//!
//! UI state (focus, selection, scroll, the filter in force) lives apart, in `ui.rs`; rendering is a
//! pure function of both (`panels/`). By concern:
//!
//! - `providers.rs`: a view per provider (its breaker, per model too; latency; health; cost).
//! - `limits.rs`: each provider's rate limits, its throttling and the requests steered away.
//! - `requests.rs`: recent requests, their attempts and replies; the totals.
//! - `log.rs`: the event log's lines and its filter.
//! - `ledger.rs`: what the fold remembers between events and no panel reads.
//! - `ring.rs`: the bounded buffers.

mod fleet;
mod ledger;
mod limits;
mod log;
mod providers;
mod requests;
mod ring;
#[cfg(test)]
mod script;

pub use fleet::{Fleet, FleetBreaker, MEMBERS_KEPT, Member, MemberLink};
pub use ledger::Ledger;
pub use limits::{LimitView, RateLimitsView, ThrottleView};
pub use log::{LOG_KEPT, LOG_KINDS, LogFilter, LogLine, LogWindow};
pub use providers::{
    BREAKER_HISTORY_KEPT, BreakerChange, BreakerSpan, ERRORS_KEPT, ErrorCount, ErrorDetail,
    LATENCY_POINTS_KEPT, LastError, LatencyPoint, ModelBreaker, PoolView, ProviderView,
    RATE_WINDOW, TIMELINE_KEPT, Tokens, severity,
};
pub use requests::{
    AttemptDetail, AttemptState, AttemptView, REPLY_CHARS_KEPT, REQUESTS_KEPT, RequestView,
    RewindView, Totals,
};

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

use crate::event::{ErrorClass, Event, EventKind, Fold, Mode};
use crate::text::one_line;

/// Longest error message, reason or detail kept (one line).
const MESSAGE_CHARS_KEPT: usize = 2_000;
/// Settings kept from `session_started`.
const SETTINGS_KEPT: usize = 128;

/// A gateway's link to its fleet: its name there, whether its Redis is reachable, which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetLink {
    pub instance: String,
    pub connected: bool,
    pub redis: String,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub mode: Option<Mode>,
    /// When the session started (the `session_started` event's time).
    pub started_at: Option<DateTime<Utc>>,
    /// The latest time known: the newest event's, or a later `tick`.
    pub now: Option<DateTime<Utc>>,
    /// Set while the clock is held (an attached console whose gateway went away): the time it
    /// stopped at. Ticks no longer move `now`, so countdowns and ages stop with the gateway
    /// that would have moved them, and the screen says what it shows is as of then.
    pub clock_held: Option<DateTime<Utc>>,
    /// Where the session is being recorded, when it is (shown in the header).
    pub recording: Option<String>,
    /// The gateway's link to its fleet (`[cluster]`), as the latest `cluster_changed` said.
    pub fleet: Option<FleetLink>,
    /// In the order the session named them (a pool's members together, where the first of them
    /// stands), then in order of first appearance.
    pub providers: Vec<ProviderView>,
    /// The pools the session declared, in its order; at most `PROVIDERS_KEPT`.
    pub pools: Vec<PoolView>,
    pub totals: Totals,
    /// Oldest first; at most `REQUESTS_KEPT`.
    pub requests: VecDeque<RequestView>,
    /// Oldest first; at most `LOG_KEPT`.
    pub log: VecDeque<LogLine>,
    /// Failures by provider and class.
    pub errors: BTreeMap<(String, ErrorClass), ErrorCount>,
    /// The latest failed attempts of each class in full, oldest first; at most `ERRORS_KEPT`
    /// each (the classes are a closed set).
    pub class_errors: BTreeMap<ErrorClass, VecDeque<ErrorDetail>>,
    /// The settings that govern the providers, as `session_started` told them (dotted name,
    /// value); at most `SETTINGS_KEPT`.
    pub settings: Vec<(String, String)>,
    /// Events applied so far (including those no panel shows).
    pub events_applied: u64,
    /// The consumer lagged and this many events were never seen (told by the bus).
    pub events_missed: u64,
    /// What the fold remembers between events; no panel reads it.
    pub ledger: Ledger,
    /// A console over a fleet of gateways (`attach URL URL …`): each one's own dashboard (see
    /// `fleet.rs`). Not `fleet`, this gateway's own link to its cluster.
    pub gateways: Option<Box<Fleet>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}

impl Fold for Dashboard {
    fn apply(&mut self, event: &Event) {
        Dashboard::apply(self, event);
    }

    fn missed(&mut self, n: u64) {
        Dashboard::missed(self, n);
    }
}

impl Dashboard {
    pub fn new() -> Self {
        Dashboard {
            mode: None,
            started_at: None,
            now: None,
            clock_held: None,
            recording: None,
            fleet: None,
            providers: Vec::new(),
            pools: Vec::new(),
            totals: Totals::default(),
            requests: VecDeque::new(),
            log: VecDeque::new(),
            errors: BTreeMap::new(),
            class_errors: BTreeMap::new(),
            settings: Vec::new(),
            events_applied: 0,
            events_missed: 0,
            ledger: Ledger::default(),
            gateways: None,
        }
    }

    /// Fold one event in: into each concern's part of the dashboard, then (but for text) the log.
    pub fn apply(&mut self, event: &Event) {
        self.events_applied = self.events_applied.saturating_add(1);
        self.advance(event.ts);
        self.fold_member(event);
        // Text is the hottest event (most of a stream) and has no log line: taken straight to
        // its provider's row and its request.
        if let EventKind::TextDelta {
            request_id,
            provider,
            text,
        } = &event.kind
        {
            self.provider_index(event.ts, provider, "", "");
            self.append_text(request_id, text);
            return;
        }
        // Providers first: an event naming a provider not seen before gives it its row first.
        self.fold_providers(event.ts, &event.kind);
        self.fold_limits(event.ts, &event.kind);
        self.fold_requests(event.ts, &event.kind);
        self.push_log(event);
        self.sync_after(event);
    }

    /// Let time pass without events (countdowns, rates), unless the clock is held. Never moves
    /// time backwards.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        if self.clock_held.is_none() {
            self.advance(now);
        }
        if let Some(fleet) = self.gateways.as_deref_mut() {
            for member in &mut fleet.members {
                member.dash.tick(now);
            }
        }
    }

    /// Stop the clock where it is: the events that would move it no longer come. Holding a held
    /// clock keeps the first time.
    pub fn hold_clock(&mut self) {
        if self.clock_held.is_none() {
            self.clock_held = self.now;
        }
    }

    /// Let ticks move the clock again.
    pub fn release_clock(&mut self) {
        self.clock_held = None;
    }

    /// An event's time (events move the clock even while it is held: they are news).
    fn advance(&mut self, now: DateTime<Utc>) {
        self.now = Some(self.now.map_or(now, |n| n.max(now)));
    }

    /// The bus said this many events were lost to lag.
    pub fn missed(&mut self, count: u64) {
        self.events_missed = self.events_missed.saturating_add(count);
    }
}

/// NaN and infinities (a broken price) would poison every sum they enter.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// One line of an event's free text, as the dashboard keeps it.
fn message(text: &str) -> String {
    one_line(text, MESSAGE_CHARS_KEPT)
}

#[cfg(test)]
mod tests {
    use super::ledger::{PROBES_KEPT, USAGE_KEPT};
    use super::providers::RATE_POINTS_KEPT;
    use super::requests::{ATTEMPTS_KEPT, CHAIN_KEPT};
    use super::script::*;
    use super::*;
    use crate::event::{BreakerState, Outcome, Phase, SkipReason, Source};

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

    /// What the detail views read: every attempt in full, the breaker's history, the errors by
    /// provider and by class, the settings, and every field of a log line.
    #[test]
    fn the_detail_of_a_failover_is_kept() {
        let mut s = failover_script();
        s.at(
            700,
            EventKind::AttemptFailed {
                request_id: "r1".into(),
                attempt: 2,
                provider: "openai".into(),
                phase: Phase::Headers,
                class: ErrorClass::RateLimited,
                retryable: true,
                status: Some(429),
                retry_after_ms: Some(5_000),
                message: "Rate limited: slow down\nplease".into(),
                elapsed_ms: 42,
            },
        )
        .at(
            710,
            breaker("openai", "closed", "open", "retry-after 5s", Some(5_000)),
        )
        .at(
            720,
            breaker("openai", "open", "half_open", "recovery elapsed", None),
        );
        let dash = s.fold();
        let r = dash.request("r1").unwrap();
        let a1 = &r.attempts[0].detail;
        assert_eq!(a1.started_at, Some(at(20)));
        assert_eq!(a1.breaker, Some(BreakerState::Closed));
        assert_eq!(a1.first_event_ms, Some(200));
        assert_eq!(
            (a1.status, a1.retry_after_ms, a1.elapsed_ms),
            (None, None, Some(10))
        );
        assert_eq!(a1.tokens.map(|t| t.output), Some(20));
        assert!(close(a1.cost_usd, 0.001));
        let a2 = &r.attempts[1].detail;
        assert_eq!(
            (a2.status, a2.retry_after_ms, a2.elapsed_ms),
            (Some(429), Some(5_000), Some(42))
        );
        assert!(close(a2.cost_usd, 0.002));
        let o = dash.provider("openai").unwrap();
        let history: Vec<_> = o
            .breaker_history
            .iter()
            .map(|c| (c.from, c.to, c.reason.as_str()))
            .collect();
        assert_eq!(
            history,
            [
                (BreakerState::Closed, BreakerState::Open, "retry-after 5s"),
                (
                    BreakerState::Open,
                    BreakerState::HalfOpen,
                    "recovery elapsed"
                ),
            ]
        );
        assert_eq!(o.breaker_history[0].recovery_ms, Some(5_000));
        let e = o.recent_errors.back().unwrap();
        assert_eq!(
            (e.request_id.as_str(), e.attempt, e.status),
            ("r1", 2, Some(429))
        );
        assert_eq!(e.message, "Rate limited: slow down please");
        let rl = &dash.class_errors[&ErrorClass::RateLimited];
        assert_eq!((rl.len(), rl[0].provider.as_str()), (1, "openai"));
        assert_eq!(
            dash.class_errors[&ErrorClass::StreamCut][0].provider,
            "anthropic"
        );

        let line = dash
            .log
            .iter()
            .find(|l| l.kind == "attempt_failed" && l.seq == 16)
            .unwrap();
        let names: Vec<&str> = line.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[..3], ["ts", "seq", "type"]);
        let field = |k: &str| {
            line.fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("status"), Some("429"));
        assert_eq!(field("retry_after_ms"), Some("5000"));
        assert_eq!(field("message"), Some("Rate limited: slow down please"));
        assert_eq!(field("type"), Some("attempt_failed"));

        // The settings a session announces.
        let mut settings = BTreeMap::new();
        settings.insert("breaker.recovery".to_string(), "30s".to_string());
        let dash = Script::default()
            .at(
                0,
                EventKind::SessionStarted {
                    format_version: 1,
                    mode: Mode::Demo,
                    providers: vec![],
                    breaker_threshold: Some(3),
                    breaker_counts: Some(vec![ErrorClass::Timeout]),
                    settings: Some(settings),
                    pools: Vec::new(),
                },
            )
            .fold();
        assert_eq!(dash.settings, [("breaker.recovery".into(), "30s".into())]);
        assert_eq!(dash.breaker_counts(), Some(&[ErrorClass::Timeout][..]));
    }

    #[test]
    fn the_details_kept_stay_bounded() {
        let mut s = Script::default();
        for i in 0..(10 * ERRORS_KEPT as u32) {
            s.at(
                i64::from(i),
                failed("r", i, "a", ErrorClass::Overloaded, Phase::Headers),
            );
        }
        for i in 0..(10 * BREAKER_HISTORY_KEPT as i64) {
            s.at(i, breaker("a", "closed", "open", &i.to_string(), None));
        }
        let dash = s.fold();
        let a = dash.provider("a").unwrap();
        assert_eq!(a.recent_errors.len(), ERRORS_KEPT);
        assert_eq!(
            a.recent_errors.back().unwrap().attempt,
            10 * ERRORS_KEPT as u32 - 1
        );
        assert_eq!(
            dash.class_errors[&ErrorClass::Overloaded].len(),
            ERRORS_KEPT
        );
        assert_eq!(a.breaker_history.len(), BREAKER_HISTORY_KEPT);
        assert_eq!(
            a.breaker_history.back().unwrap().reason,
            (10 * BREAKER_HISTORY_KEPT - 1).to_string()
        );
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

    /// A caller that went away is counted apart from the failures, as the errors panel (which
    /// leaves cancelled attempts out) already has it.
    #[test]
    fn cancelled_requests_are_not_failures() {
        let dash = Script::default()
            .at(0, session(&["a"], Some(5)))
            .at(1, request("r1", &["a"]))
            .at(2, attempt("r1", 1, "a"))
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::Cancelled, Phase::FirstEvent),
            )
            .at(3, error("r1", ErrorClass::Cancelled))
            .at(4, request("r2", &["a"]))
            .at(5, error("r2", ErrorClass::Overloaded))
            .fold();
        let t = dash.totals;
        assert_eq!(
            (t.requests, t.failed, t.cancelled, t.in_flight),
            (2, 1, 1, 0)
        );
        assert!(dash.request("r1").unwrap().cancelled());
        assert!(!dash.request("r2").unwrap().cancelled());
        assert!(dash.errors.keys().all(|(_, c)| *c != ErrorClass::Cancelled));
        let line = &dash.log.iter().rev().nth(2).unwrap().text;
        assert_eq!(
            line,
            "r1 cancelled (the caller went away) in 0.50 s, $0.000000 (1 attempt): it was cancelled"
        );
    }

    /// A new reply waits until its provider's first event, then streams: never both at once.
    #[test]
    fn a_request_waits_for_its_first_event_then_streams() {
        let mut s = Script::default();
        s.at(0, request("r1", &["a", "b"]))
            .at(1, attempt("r1", 1, "a"));
        let mut dash = s.fold();
        let r = dash.request("r1").unwrap();
        assert_eq!(r.provider.as_deref(), Some("a"));
        assert!(!r.streaming(), "an attempt started is not a stream yet");
        Script::default()
            .at(2, first("r1", 1, "a", 200))
            .apply_to(&mut dash);
        assert!(dash.request("r1").unwrap().streaming());
        Script::default()
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::StreamCut, Phase::MidStream),
            )
            .at(4, attempt("r1", 2, "b"))
            .apply_to(&mut dash);
        assert!(!dash.request("r1").unwrap().streaming(), "waiting on b");
        Script::default()
            .at(5, first("r1", 2, "b", 300))
            .at(6, ok("r1", "b", 0.0, 0.0, 0.0))
            .apply_to(&mut dash);
        assert!(!dash.request("r1").unwrap().streaming(), "finished");
    }

    /// The fault in force as the simulator has it: from the session's start, then each scenario
    /// step and operator's choice, whichever came last; scenario steps are in the log.
    #[test]
    fn the_fault_in_force_follows_the_session_the_scenario_and_the_operator() {
        let mut started = session(&["anthropic", "openai"], Some(5));
        if let EventKind::SessionStarted { providers, .. } = &mut started {
            providers[0].fault = Some("rate_limit:retry_after=5s,p=0.8".into());
        }
        let step = |fault: &str| EventKind::FaultChanged {
            provider: "anthropic".into(),
            fault: fault.into(),
            reason: "scenario incident, step at 0:30".into(),
        };
        let mut dash = Script::default().at(0, started).fold();
        let fault = |d: &Dashboard, name: &str| d.provider(name).unwrap().fault.clone();
        assert_eq!(
            fault(&dash, "anthropic").as_deref(),
            Some("rate_limit:retry_after=5s,p=0.8")
        );
        assert_eq!(fault(&dash, "openai"), None, "healthy");
        Script::default()
            .at(1, operator("set_fault", Some("anthropic"), "overloaded"))
            .at(30_000, step("stall:after=3,for=10m"))
            .apply_to(&mut dash);
        assert_eq!(
            fault(&dash, "anthropic").as_deref(),
            Some("stall:after=3,for=10m"),
            "the scenario's step replaced the injected fault"
        );
        Script::default()
            .at(40_000, step("none"))
            .apply_to(&mut dash);
        assert_eq!(fault(&dash, "anthropic").as_deref(), Some("none"));
        let steps: Vec<(Option<&str>, &str)> = dash
            .log
            .iter()
            .filter(|l| l.kind == "fault_changed")
            .map(|l| (l.provider.as_deref(), l.text.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                (
                    Some("anthropic"),
                    "anthropic fault now stall:after=3,for=10m (scenario incident, step at 0:30)"
                ),
                (
                    Some("anthropic"),
                    "anthropic fault now none, healthy (scenario incident, step at 0:30)"
                ),
            ]
        );
        assert!(LOG_KINDS.contains(&"fault_changed"), "the filter offers it");
    }

    #[test]
    fn a_held_clock_stops_the_countdowns_until_released() {
        let mut dash = Script::default()
            .at(0, session(&["a"], Some(5)))
            .at(10, breaker("a", "closed", "open", "x", Some(30_000)))
            .fold();
        dash.tick(at(12_000));
        let left = |d: &Dashboard| {
            d.provider("a")
                .and_then(|p| p.open_remaining(d.now.unwrap()))
                .unwrap()
                .num_seconds()
        };
        assert_eq!(left(&dash), 18);
        dash.hold_clock();
        assert_eq!(dash.clock_held, Some(at(12_000)));
        dash.tick(at(20_000));
        dash.hold_clock();
        assert_eq!(
            (dash.now, dash.clock_held),
            (Some(at(12_000)), Some(at(12_000)))
        );
        assert_eq!(left(&dash), 18, "the countdown stopped");
        dash.release_clock();
        dash.tick(at(20_000));
        assert_eq!((dash.now, dash.clock_held), (Some(at(20_000)), None));
        assert_eq!(left(&dash), 10);
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
                chain_name: None,
                failover: None,
                max_tokens: None,
                stream: None,
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
                unpriced: false,
                response_id: None,
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
                unpriced: false,
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
                flag: crate::event::ProviderFlag::Misconfigured,
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
        // What the detail views keep is bounded too.
        for p in &dash.providers {
            assert!(p.recent_errors.len() <= ERRORS_KEPT);
            assert!(p.breaker_history.len() <= BREAKER_HISTORY_KEPT);
            for e in &p.recent_errors {
                assert!(e.message.chars().count() <= MESSAGE_CHARS_KEPT + 1);
                assert!(e.request_id.chars().count() <= 129);
            }
        }
        for line in &dash.log {
            let kept: usize = line.fields.iter().map(|(_, v)| v.chars().count()).sum();
            assert!(
                kept <= log::LINE_FIELDS_CHARS_KEPT + line.fields.len(),
                "{kept}"
            );
        }
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
}
