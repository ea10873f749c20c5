//! The circuit breaker of one provider (or one model of it) as a pure state machine, in resilience4j's
//! vocabulary: whatever depends on time takes `now`, so tests drive it with explicit instants or under
//! `tokio::time::pause()`.
//!
//! ```text
//!            failures reach a trigger                 recovery elapsed (at the next admit)
//!   Closed ─────────────────────────► Open ──────────────────────────────────────► HalfOpen
//!     ▲                                ▲                  probe failed (recovery × growth) │
//!     │                                └───────────────────────────────────────────────────┤
//!     └────────────────────────────────────────────────────────────────────────────────────┘
//!                                       probe succeeded
//!   ForcedOpen / ForcedClosed: set by the operator from any state; automatic again only after reset.
//! ```
//!
//! Open → HalfOpen also happens early, when a background recovery probe (`engine::probe`) got an
//! answer ([`Breaker::probe_answered`]): real traffic then confirms, as after the recovery.
//!
//! The triggers: consecutive failures, the failure rate over a sliding window, a long retry-after,
//! and (off by default) the slow-call rate: the share of calls in the window whose first event came
//! later than `slow_call` (resilience4j's slow-call-rate threshold).

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::event::{BreakerState, SkipReason};

/// The longest a breaker stays open, whatever the provider's retry-after says: a header of years is a
/// provider bug, and an instant that far ahead would overflow. A day leaves the operator time to step in.
const MAX_OPEN: Duration = Duration::from_secs(24 * 60 * 60);

/// In a fleet (`[cluster]`), how long a half-open period that another gateway's probe holds keeps
/// this one's own probes back: its verdict (closed, or open again) normally arrives within the
/// probe call's timeouts; should that gateway vanish meanwhile, this one probes for itself after.
pub const FLEET_PROBE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 disables this trigger.
    pub consecutive_failures: u32,
    /// Fraction of failed calls in the window that opens the breaker.
    pub failure_rate: f64,
    /// A sliding time window of call outcomes for the failure rate.
    pub window: Duration,
    /// The rate trigger needs at least this many calls in the window.
    pub min_calls: u32,
    /// How long the breaker stays open before it lets a probe through.
    pub recovery: Duration,
    /// Each re-open from half-open multiplies the recovery by this (1.0 keeps it fixed).
    pub recovery_growth: f64,
    /// Cap on the grown recovery.
    pub recovery_max: Duration,
    /// Probes admitted at once while half-open (at least one).
    pub half_open_probes: u32,
    /// A failure whose retry-after is at least this opens the breaker at once.
    pub open_on_retry_after: Option<Duration>,
    /// A call whose first event took this long or longer is slow; `None`: no slow-call trigger.
    pub slow_call: Option<Duration>,
    /// Fraction of slow calls in the window (at least `min_calls`) that opens the breaker.
    pub slow_call_rate: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(60),
            min_calls: 10,
            recovery: Duration::from_secs(30),
            recovery_growth: 2.0,
            recovery_max: Duration::from_secs(5 * 60),
            half_open_probes: 1,
            open_on_retry_after: Some(Duration::from_secs(20)),
            slow_call: None,
            slow_call_rate: 0.5,
        }
    }
}

/// A change of state, with the reason an operator reads in the console.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
    /// The open period, when `to` is `Open`.
    pub recovery: Option<Duration>,
}

/// What an admitted call tells the breaker about the provider's health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallOutcome {
    /// It answered; how fast is not known (or not counted).
    Success,
    /// It answered, its first event after this long (slow when at least `slow_call`).
    Answered {
        first_event: Duration,
    },
    Failure {
        retry_after: Option<Duration>,
    },
    /// Says nothing about health (a bad request, a cancelled call): not counted.
    Neutral,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// `breaker_open`, `forced_open` or `half_open_busy` (the `attempt_skipped` reason).
    pub reason: SkipReason,
    /// How long until the breaker lets a probe through, when that is known.
    pub retry_in: Option<Duration>,
}

/// What the console and the gateway show of one breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// The consecutive-failure threshold (0: disabled).
    pub threshold: u32,
    pub calls_in_window: u32,
    pub failures_in_window: u32,
    /// Calls in the window that answered slowly (with a slow-call trigger).
    pub slow_in_window: u32,
    /// While open: how long until the next admit turns it half-open.
    pub open_remaining: Option<Duration>,
    pub probes_in_flight: u32,
    /// How many times it opened by itself since it was created.
    pub trips: u32,
}

/// One call in the sliding window.
#[derive(Debug, Clone, Copy)]
struct Call {
    at: Instant,
    failed: bool,
    slow: bool,
}

/// The circuit breaker of one provider.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    /// Outcomes of the calls recorded while closed, oldest first. One entry per call in the window
    /// is cheap at LLM request rates and keeps the rates exact.
    window: VecDeque<Call>,
    /// The recovery the next opening uses: the base, grown by each failed probe.
    recovery: Duration,
    opened_at: Option<Instant>,
    open_until: Option<Instant>,
    /// Until when the provider asked us to stay away (its retry-after), while open: no recovery
    /// probe goes before.
    hold_until: Option<Instant>,
    /// Half-open because a recovery probe was answered: if real traffic then fails, the probe
    /// misled us, and the next probes wait out the whole (grown) recovery.
    probe_led: bool,
    /// Probes admitted and not yet recorded or released. Operator actions do not clear it: those calls
    /// are still out, and counting them keeps a later half-open period within its limit.
    probes_in_flight: u32,
    trips: u32,
    /// Half-open because another gateway of the fleet is probing: until then this one lets no
    /// probe of its own through (one probe for the fleet).
    fleet_probe_until: Option<Instant>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Breaker {
            recovery: config.recovery,
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            window: VecDeque::new(),
            opened_at: None,
            open_until: None,
            hold_until: None,
            probe_led: false,
            probes_in_flight: 0,
            trips: 0,
            fleet_probe_until: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// When the breaker last opened, while it is open or half-open.
    pub fn opened_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open | BreakerState::HalfOpen => self.opened_at,
            _ => None,
        }
    }

    /// While open: when the provider's retry-after ends (a recovery probe waits for it).
    pub fn hold_until(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open => self.hold_until,
            _ => None,
        }
    }

    /// A background recovery probe got an answer: an open breaker turns half-open now, for real
    /// traffic to confirm. Any other state stays as it is (the operator's, or already moving).
    pub fn probe_answered(&mut self, reason: impl Into<String>) -> Option<Transition> {
        if self.state != BreakerState::Open {
            return None;
        }
        self.open_until = None;
        self.probe_led = true;
        self.move_to(BreakerState::HalfOpen, reason, None)
    }

    /// New thresholds; the state, counters and window stay as they are.
    pub(super) fn set_config(&mut self, config: BreakerConfig) {
        self.config = config;
    }

    /// Ask to send a call now. `Ok(true)` means the call is a half-open probe. An open breaker whose
    /// recovery has elapsed turns half-open here, lazily, and says so in the transition.
    pub fn admit(&mut self, now: Instant) -> (Result<bool, Rejection>, Option<Transition>) {
        let recovered = self.open_until.is_none_or(|until| now >= until);
        let transition = if self.state == BreakerState::Open && recovered {
            self.move_to(BreakerState::HalfOpen, "recovery elapsed", None)
        } else {
            None
        };
        let admission = match self.state {
            BreakerState::Closed | BreakerState::ForcedClosed => Ok(false),
            BreakerState::ForcedOpen => Err(Rejection {
                reason: SkipReason::ForcedOpen,
                retry_in: None,
            }),
            BreakerState::Open => Err(Rejection {
                reason: SkipReason::BreakerOpen,
                retry_in: self
                    .open_until
                    .map(|until| until.saturating_duration_since(now)),
            }),
            // Another gateway's probe is out: its verdict comes back through the fleet.
            BreakerState::HalfOpen if self.fleet_probe_until.is_some_and(|until| now < until) => {
                Err(Rejection {
                    reason: SkipReason::HalfOpenBusy,
                    retry_in: None,
                })
            }
            // Zero probes would leave it half-open for ever.
            BreakerState::HalfOpen
                if self.probes_in_flight < self.config.half_open_probes.max(1) =>
            {
                self.probes_in_flight += 1;
                Ok(true)
            }
            BreakerState::HalfOpen => Err(Rejection {
                reason: SkipReason::HalfOpenBusy,
                retry_in: None,
            }),
        };
        (admission, transition)
    }

    /// Record the outcome of an admitted call; `probe` is what [`Breaker::admit`] returned.
    pub fn record(
        &mut self,
        now: Instant,
        probe: bool,
        outcome: CallOutcome,
    ) -> Option<Transition> {
        if probe {
            self.release_probe();
        }
        match self.state {
            BreakerState::HalfOpen if probe => self.record_probe(now, outcome),
            BreakerState::Closed => self.record_closed(now, outcome),
            // Forced states ignore outcomes. Open, and half-open for a non-probe, only hear late calls
            // admitted before the breaker opened: it has already acted on what they would say.
            _ => None,
        }
    }

    /// A probe ended without an outcome (its caller was cancelled): free its slot.
    pub fn release_probe(&mut self) {
        self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
    }

    /// The operator's trip: rejects everything until reset or forced closed.
    pub fn force_open(&mut self) -> Option<Transition> {
        self.move_to(BreakerState::ForcedOpen, "operator: trip", None)
    }

    /// Admits everything and never trips until reset.
    pub fn force_closed(&mut self) -> Option<Transition> {
        self.move_to(BreakerState::ForcedClosed, "operator: force closed", None)
    }

    /// Follow a change another gateway of the fleet made to its breaker of the same provider.
    /// An automatic change does not undo an operator's forced state here (an operator's own
    /// change, `by_operator`, does: it applies fleet-wide). `open_for` is what is left of its
    /// open period. Half-open there means its probe is out: here no probe goes until its verdict
    /// arrives (or [`FLEET_PROBE_WAIT`] passes).
    pub fn follow(
        &mut self,
        now: Instant,
        to: BreakerState,
        reason: String,
        open_for: Option<Duration>,
        by_operator: bool,
    ) -> Option<Transition> {
        let forced = matches!(
            self.state,
            BreakerState::ForcedOpen | BreakerState::ForcedClosed
        );
        if forced && !by_operator {
            return None;
        }
        match to {
            BreakerState::Open => {
                let period = open_for.unwrap_or(self.recovery).min(MAX_OPEN);
                let until = now.checked_add(period).unwrap_or(now);
                self.fleet_probe_until = None;
                self.opened_at = Some(now);
                // Already open here: the later of the two ends.
                self.open_until = Some(
                    self.open_until
                        .filter(|_| self.state == BreakerState::Open)
                        .map_or(until, |mine| mine.max(until)),
                );
                self.move_to(BreakerState::Open, reason, Some(period))
            }
            BreakerState::HalfOpen => {
                self.open_until = None;
                self.fleet_probe_until = now.checked_add(FLEET_PROBE_WAIT);
                self.move_to(BreakerState::HalfOpen, reason, None)
            }
            BreakerState::Closed => {
                self.clear();
                self.move_to(BreakerState::Closed, reason, None)
            }
            BreakerState::ForcedOpen | BreakerState::ForcedClosed => self.move_to(to, reason, None),
        }
    }

    /// The fleet's failures together reached a trigger: open, as this breaker's own would.
    pub fn open_for_fleet(&mut self, now: Instant, reason: String) -> Option<Transition> {
        if self.state != BreakerState::Closed {
            return None;
        }
        self.open(now, reason, None)
    }

    /// Back to automatic: closed, with counters, window and recovery cleared.
    pub fn reset(&mut self) -> Option<Transition> {
        self.clear();
        self.move_to(BreakerState::Closed, "operator: reset", None)
    }

    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let mut calls_in_window = 0;
        let mut failures_in_window = 0;
        let mut slow_in_window = 0;
        for call in &self.window {
            if now.saturating_duration_since(call.at) < self.config.window {
                calls_in_window += 1;
                failures_in_window += u32::from(call.failed);
                slow_in_window += u32::from(call.slow);
            }
        }
        BreakerSnapshot {
            state: self.state,
            consecutive_failures: self.consecutive_failures,
            threshold: self.config.consecutive_failures,
            calls_in_window,
            failures_in_window,
            slow_in_window,
            open_remaining: match self.state {
                BreakerState::Open => self
                    .open_until
                    .map(|until| until.saturating_duration_since(now)),
                _ => None,
            },
            probes_in_flight: self.probes_in_flight,
            trips: self.trips,
        }
    }

    fn record_closed(&mut self, now: Instant, outcome: CallOutcome) -> Option<Transition> {
        let retry_after = match outcome {
            CallOutcome::Neutral => return None,
            CallOutcome::Success | CallOutcome::Answered { .. } => {
                let slow = self.is_slow(outcome);
                self.push_outcome(now, false, slow);
                self.consecutive_failures = 0;
                // Only a failure or a slow answer opens the breaker: opening on a fast success
                // would read as nonsense, even when old successes leaving the window raise the rate.
                let reason = if slow { self.slow_reason() } else { None }?;
                return self.open(now, reason, None);
            }
            CallOutcome::Failure { retry_after } => retry_after,
        };
        self.push_outcome(now, true, false);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let reason = self.trip_reason(retry_after)?;
        self.open(now, reason, retry_after)
    }

    /// Whether an answer counts as slow (only with a slow-call trigger).
    fn is_slow(&self, outcome: CallOutcome) -> bool {
        match (outcome, self.config.slow_call) {
            (CallOutcome::Answered { first_event }, Some(limit)) => first_event >= limit,
            _ => false,
        }
    }

    /// Why the slow answer just recorded opens the breaker, if it does.
    fn slow_reason(&self) -> Option<String> {
        let limit = self.config.slow_call?;
        let calls = self.window.len();
        let slow = self.window.iter().filter(|call| call.slow).count();
        let rate = slow as f64 / calls as f64;
        (calls >= self.config.min_calls.max(1) as usize && rate >= self.config.slow_call_rate).then(
            || {
                format!(
                    "slow calls {:.0}% over {calls} calls in {} (first event ≥ {})",
                    rate * 100.0,
                    human(self.config.window),
                    human(limit)
                )
            },
        )
    }

    fn record_probe(&mut self, now: Instant, outcome: CallOutcome) -> Option<Transition> {
        match outcome {
            // The slot is already free; stay half-open for the next probe.
            CallOutcome::Neutral => None,
            CallOutcome::Success | CallOutcome::Answered { .. } if !self.is_slow(outcome) => {
                self.clear();
                self.move_to(BreakerState::Closed, "probe succeeded", None)
            }
            CallOutcome::Success | CallOutcome::Answered { .. } => {
                self.reopen(now, "probe answered slowly", None)
            }
            CallOutcome::Failure { retry_after } => self.reopen(now, "probe failed", retry_after),
        }
    }

    /// A half-open probe failed: open again for longer. When a recovery probe had let it through,
    /// the next recovery probes wait out that whole period: a provider that answers one token but
    /// fails real requests must not cost a real request every probe interval.
    fn reopen(
        &mut self,
        now: Instant,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Option<Transition> {
        let misled = std::mem::take(&mut self.probe_led);
        self.grow_recovery();
        let transition = self.open(now, reason.to_owned(), retry_after);
        if misled {
            self.hold_until = self.hold_until.max(self.open_until);
        }
        transition
    }

    /// A failed probe: the next opening lasts longer, up to the cap.
    fn grow_recovery(&mut self) {
        let growth = self.config.recovery_growth.max(1.0);
        let cap = self.config.recovery_max.max(self.config.recovery);
        let grown =
            Duration::try_from_secs_f64(self.recovery.as_secs_f64() * growth).unwrap_or(cap);
        self.recovery = grown.min(cap);
    }

    /// Why the failure just recorded opens the breaker, if it does.
    fn trip_reason(&self, retry_after: Option<Duration>) -> Option<String> {
        if let (Some(retry_after), Some(limit)) = (retry_after, self.config.open_on_retry_after)
            && retry_after >= limit
        {
            return Some(format!("retry-after {}", human(retry_after)));
        }
        let threshold = self.config.consecutive_failures;
        if threshold > 0 && self.consecutive_failures >= threshold {
            return Some(format!(
                "{} consecutive failures",
                self.consecutive_failures
            ));
        }
        let calls = self.window.len();
        let failures = self.window.iter().filter(|call| call.failed).count();
        let rate = failures as f64 / calls as f64;
        if calls >= self.config.min_calls as usize && rate >= self.config.failure_rate {
            return Some(format!(
                "failure rate {:.0}% over {calls} calls in {}",
                rate * 100.0,
                human(self.config.window)
            ));
        }
        None
    }

    /// Open for the current recovery, but never for less than the provider asked us to stay away.
    fn open(
        &mut self,
        now: Instant,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Option<Transition> {
        let period = retry_after
            .map_or(self.recovery, |after| after.max(self.recovery))
            .min(MAX_OPEN);
        self.opened_at = Some(now);
        self.fleet_probe_until = None;
        // A day from now is always representable; checked all the same, since it is the clock.
        self.open_until = Some(now.checked_add(period).unwrap_or(now));
        self.hold_until = retry_after.and_then(|after| now.checked_add(after.min(MAX_OPEN)));
        self.trips += 1;
        self.move_to(BreakerState::Open, reason, Some(period))
    }

    fn push_outcome(&mut self, now: Instant, failed: bool, slow: bool) {
        while let Some(call) = self.window.front() {
            if now.saturating_duration_since(call.at) < self.config.window {
                break;
            }
            self.window.pop_front();
        }
        self.window.push_back(Call {
            at: now,
            failed,
            slow,
        });
    }

    fn clear(&mut self) {
        self.consecutive_failures = 0;
        self.window.clear();
        self.recovery = self.config.recovery;
        self.opened_at = None;
        self.open_until = None;
        self.hold_until = None;
        self.probe_led = false;
        self.fleet_probe_until = None;
    }

    fn move_to(
        &mut self,
        to: BreakerState,
        reason: impl Into<String>,
        recovery: Option<Duration>,
    ) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let from = std::mem::replace(&mut self.state, to);
        Some(Transition {
            from,
            to,
            reason: reason.into(),
            recovery,
        })
    }
}

/// "30s", "1.5s", "500ms": short enough for a reason column.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d >= Duration::from_secs(1) {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn failure() -> CallOutcome {
        CallOutcome::Failure { retry_after: None }
    }

    fn failure_after(retry_after: Duration) -> CallOutcome {
        CallOutcome::Failure {
            retry_after: Some(retry_after),
        }
    }

    /// Admit a call at `now` and record its outcome.
    fn call(b: &mut Breaker, now: Instant, outcome: CallOutcome) -> Option<Transition> {
        let probe = b.admit(now).0.unwrap();
        b.record(now, probe, outcome)
    }

    /// A breaker that only the consecutive trigger opens.
    fn consecutive_only(threshold: u32) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: threshold,
            failure_rate: 2.0,
            open_on_retry_after: None,
            ..BreakerConfig::default()
        }
    }

    fn opened(b: &mut Breaker, now: Instant) {
        let (admission, _) = b.admit(now);
        let probe = admission.unwrap();
        let t = b.record(now, probe, failure_after(MAX_OPEN));
        assert_eq!(b.state(), BreakerState::Open, "{t:?}");
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_restarts_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(3));
        assert_eq!(call(&mut b, t0, failure()), None);
        assert_eq!(call(&mut b, t0, failure()), None);
        assert_eq!(call(&mut b, t0, CallOutcome::Success), None);
        assert_eq!(call(&mut b, t0, failure()), None);
        assert_eq!(call(&mut b, t0, failure()), None);
        assert_eq!(
            call(&mut b, t0, failure()),
            Some(Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: "3 consecutive failures".into(),
                recovery: Some(secs(30)),
            })
        );
        let snap = b.snapshot(t0);
        assert_eq!(snap.consecutive_failures, 3);
        assert_eq!(snap.threshold, 3);
        assert_eq!(snap.trips, 1);
        assert_eq!(snap.open_remaining, Some(secs(30)));
    }

    #[test]
    fn zero_threshold_disables_the_consecutive_trigger() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(0));
        for _ in 0..100 {
            assert_eq!(call(&mut b, t0, failure()), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn neutral_outcomes_are_not_counted() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(2));
        call(&mut b, t0, failure());
        for _ in 0..10 {
            call(&mut b, t0, CallOutcome::Neutral);
        }
        let snap = b.snapshot(t0);
        assert_eq!((snap.consecutive_failures, snap.calls_in_window), (1, 1));
        assert!(call(&mut b, t0, failure()).is_some());
    }

    #[test]
    fn failure_rate_needs_min_calls_in_the_sliding_window() {
        let config = BreakerConfig {
            consecutive_failures: 0,
            failure_rate: 0.5,
            min_calls: 4,
            window: secs(60),
            open_on_retry_after: None,
            ..BreakerConfig::default()
        };
        let t0 = Instant::now();
        let mut b = Breaker::new(config);
        // Three failures: 100% but below min_calls.
        for i in 0..3 {
            assert_eq!(call(&mut b, t0 + secs(i), failure()), None);
        }
        // 30s later the first three are still in the window: four calls, all failed.
        let t = call(&mut b, t0 + secs(30), failure()).unwrap();
        assert_eq!(t.reason, "failure rate 100% over 4 calls in 60s");

        // Old calls leave the window: failures at 0..3s are gone at 65s.
        let mut b = Breaker::new(b.config.clone());
        for i in 0..3 {
            call(&mut b, t0 + secs(i), failure());
        }
        call(&mut b, t0 + secs(50), CallOutcome::Success);
        call(&mut b, t0 + secs(55), CallOutcome::Success);
        let snap = b.snapshot(t0 + secs(65));
        assert_eq!((snap.calls_in_window, snap.failures_in_window), (2, 0));
        // 2 of 4 in the window at 66s: 50%, at the threshold.
        assert_eq!(call(&mut b, t0 + secs(66), failure()), None);
        let t = call(&mut b, t0 + secs(66), failure()).unwrap();
        assert_eq!(t.reason, "failure rate 50% over 4 calls in 60s");

        // A call exactly one window old has left it.
        let mut b = Breaker::new(b.config.clone());
        for _ in 0..3 {
            call(&mut b, t0, failure());
        }
        assert_eq!(b.snapshot(t0 + secs(60)).calls_in_window, 0);
        assert_eq!(call(&mut b, t0 + secs(60), failure()), None);
    }

    #[test]
    fn a_long_retry_after_opens_at_once_for_at_least_that_long() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::default());
        // Below the trigger: counted as an ordinary failure.
        assert_eq!(call(&mut b, t0, failure_after(secs(19))), None);
        let t = call(&mut b, t0, failure_after(secs(45))).unwrap();
        assert_eq!(t.reason, "retry-after 45s");
        assert_eq!(t.recovery, Some(secs(45)));
        // At the trigger it opens too, for no less than the recovery.
        let mut at_trigger = Breaker::new(BreakerConfig::default());
        let t = call(&mut at_trigger, t0, failure_after(secs(20))).unwrap();
        assert_eq!(
            (t.reason.as_str(), t.recovery),
            ("retry-after 20s", Some(secs(30)))
        );

        let (admission, _) = b.admit(t0 + secs(44));
        assert_eq!(
            admission,
            Err(Rejection {
                reason: SkipReason::BreakerOpen,
                retry_in: Some(secs(1)),
            })
        );
        let (admission, t) = b.admit(t0 + secs(45));
        assert_eq!(admission, Ok(true));
        assert_eq!(t.unwrap().reason, "recovery elapsed");
    }

    #[test]
    fn the_open_period_is_never_shorter_than_the_retry_after() {
        let t0 = Instant::now();
        let config = BreakerConfig {
            recovery: secs(10),
            ..consecutive_only(2)
        };
        let mut b = Breaker::new(config);
        call(&mut b, t0, failure());
        let t = call(&mut b, t0, failure_after(secs(15))).unwrap();
        assert_eq!(t.reason, "2 consecutive failures");
        assert_eq!(t.recovery, Some(secs(15)));
        assert_eq!(
            b.admit(t0 + secs(14)).0.unwrap_err().reason,
            SkipReason::BreakerOpen
        );
        assert_eq!(b.admit(t0 + secs(15)).0, Ok(true));
    }

    #[test]
    fn an_absurd_retry_after_is_capped_at_a_day() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig::default());
        let t = call(&mut b, t0, failure_after(Duration::MAX)).unwrap();
        assert_eq!(t.recovery, Some(MAX_OPEN));
    }

    #[test]
    fn extreme_recoveries_and_growths_open_for_a_day_at_most() {
        for (recovery, growth, recovery_max) in [
            (Duration::MAX, 2.0, Duration::MAX),
            (secs(10), f64::MAX, Duration::MAX),
            (secs(10), f64::INFINITY, Duration::MAX),
            (secs(10), f64::NAN, secs(60)),
            (secs(10), -3.0, secs(60)),
        ] {
            let mut b = Breaker::new(BreakerConfig {
                consecutive_failures: 1,
                recovery,
                recovery_growth: growth,
                recovery_max,
                ..BreakerConfig::default()
            });
            let mut now = Instant::now();
            let first = call(&mut b, now, failure()).unwrap().recovery.unwrap();
            assert!(first <= MAX_OPEN, "{first:?}");
            // Probes fail over and over: the recovery grows, the clock never overflows.
            for _ in 0..5 {
                now += MAX_OPEN;
                let (admitted, _) = b.admit(now);
                assert_eq!(admitted, Ok(true));
                let t = b.record(now, true, failure()).unwrap();
                let period = t.recovery.unwrap();
                assert!(
                    period >= first.min(recovery) && period <= MAX_OPEN,
                    "{period:?}"
                );
            }
        }
    }

    #[test]
    fn half_open_admits_a_limited_number_of_probes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            half_open_probes: 2,
            ..BreakerConfig::default()
        });
        opened(&mut b, t0);
        let later = t0 + MAX_OPEN;
        assert_eq!(b.admit(later).0, Ok(true));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(later).0, Ok(true));
        let busy = Rejection {
            reason: SkipReason::HalfOpenBusy,
            retry_in: None,
        };
        assert_eq!(b.admit(later), (Err(busy.clone()), None));
        assert_eq!(b.snapshot(later).probes_in_flight, 2);
        // A neutral probe frees its slot and leaves it half-open.
        assert_eq!(b.record(later, true, CallOutcome::Neutral), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(later).0, Ok(true));
        assert_eq!(b.admit(later).0, Err(busy));
        // A cancelled probe frees its slot too.
        b.release_probe();
        assert_eq!(b.admit(later).0, Ok(true));
    }

    #[test]
    fn a_successful_probe_closes_and_clears() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(2));
        call(&mut b, t0, failure());
        call(&mut b, t0, failure());
        let t1 = t0 + secs(30);
        assert_eq!(b.admit(t1).0, Ok(true));
        let t = b.record(t1, true, CallOutcome::Success).unwrap();
        assert_eq!(
            (t.from, t.to, t.reason.as_str()),
            (
                BreakerState::HalfOpen,
                BreakerState::Closed,
                "probe succeeded"
            )
        );
        let snap = b.snapshot(t1);
        assert_eq!(
            (snap.consecutive_failures, snap.calls_in_window, snap.trips),
            (0, 0, 1)
        );
        assert_eq!(b.opened_at(), None);
    }

    #[test]
    fn failed_probes_grow_the_recovery_up_to_the_cap_and_closing_resets_it() {
        let config = BreakerConfig {
            recovery: secs(10),
            recovery_growth: 3.0,
            recovery_max: secs(60),
            ..consecutive_only(1)
        };
        let mut now = Instant::now();
        let mut b = Breaker::new(config);
        let mut periods = vec![call(&mut b, now, failure()).unwrap().recovery.unwrap()];
        for _ in 0..3 {
            now += *periods.last().unwrap();
            let t = call(&mut b, now, failure()).unwrap();
            assert_eq!(t.reason, "probe failed");
            periods.push(t.recovery.unwrap());
        }
        assert_eq!(periods, [secs(10), secs(30), secs(60), secs(60)]);

        // A failed probe with a long retry-after stays away that long, without growing past the cap.
        now += secs(60);
        let t = call(&mut b, now, failure_after(secs(90))).unwrap();
        assert_eq!(t.recovery, Some(secs(90)));

        now += secs(90);
        call(&mut b, now, CallOutcome::Success);
        assert_eq!(b.state(), BreakerState::Closed);
        let t = call(&mut b, now, failure()).unwrap();
        assert_eq!(t.recovery, Some(secs(10)));
    }

    #[test]
    fn late_outcomes_do_not_move_an_open_breaker() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(1));
        let early = b.admit(t0).0.unwrap();
        call(&mut b, t0, failure());
        assert_eq!(b.record(t0, early, CallOutcome::Success), None);
        assert_eq!(b.state(), BreakerState::Open);
        // Nor a half-open one: only probes decide.
        assert_eq!(b.admit(t0 + secs(30)).0, Ok(true));
        assert_eq!(b.record(t0 + secs(30), false, CallOutcome::Success), None);
        assert_eq!(b.state(), BreakerState::HalfOpen);
    }

    #[test]
    fn forced_states_ignore_outcomes_until_reset() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(1));
        let t = b.force_open().unwrap();
        assert_eq!(
            (t.from, t.to, t.reason.as_str()),
            (
                BreakerState::Closed,
                BreakerState::ForcedOpen,
                "operator: trip"
            )
        );
        assert_eq!(b.force_open(), None);
        assert_eq!(
            b.admit(t0 + MAX_OPEN).0,
            Err(Rejection {
                reason: SkipReason::ForcedOpen,
                retry_in: None,
            })
        );
        assert_eq!(b.record(t0, false, CallOutcome::Success), None);
        assert_eq!(b.state(), BreakerState::ForcedOpen);

        assert_eq!(b.force_closed().unwrap().reason, "operator: force closed");
        for _ in 0..10 {
            assert_eq!(call(&mut b, t0, failure_after(MAX_OPEN)), None);
        }
        assert_eq!(b.state(), BreakerState::ForcedClosed);
        assert_eq!(b.snapshot(t0).consecutive_failures, 0);

        let t = b.reset().unwrap();
        assert_eq!(
            (t.to, t.reason.as_str()),
            (BreakerState::Closed, "operator: reset")
        );
        assert_eq!(b.reset(), None);
        assert!(call(&mut b, t0, failure()).is_some());
    }

    #[test]
    fn reset_clears_counters_and_recovery() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerConfig {
            recovery: secs(10),
            ..consecutive_only(2)
        });
        call(&mut b, t0, failure());
        call(&mut b, t0, failure());
        call(&mut b, t0 + secs(10), failure());
        assert_eq!(b.snapshot(t0).open_remaining, Some(secs(30)));
        b.reset();
        let snap = b.snapshot(t0 + secs(10));
        assert_eq!(
            (snap.state, snap.consecutive_failures, snap.calls_in_window),
            (BreakerState::Closed, 0, 0)
        );
        call(&mut b, t0, failure());
        let t = call(&mut b, t0, failure()).unwrap();
        assert_eq!(t.recovery, Some(secs(10)));
    }

    fn answered(ms: u64) -> CallOutcome {
        CallOutcome::Answered {
            first_event: Duration::from_millis(ms),
        }
    }

    #[test]
    fn slow_answers_open_it_when_their_share_reaches_the_rate() {
        let config = BreakerConfig {
            slow_call: Some(secs(5)),
            slow_call_rate: 0.5,
            min_calls: 4,
            ..consecutive_only(0)
        };
        let t0 = Instant::now();
        let mut b = Breaker::new(config.clone());
        assert_eq!(call(&mut b, t0, answered(6_000)), None, "below min_calls");
        assert_eq!(call(&mut b, t0, answered(200)), None);
        assert_eq!(call(&mut b, t0, answered(300)), None);
        assert_eq!(b.snapshot(t0).slow_in_window, 1);
        // 2 slow of 4: at the rate. The fast answer just before did not open it.
        let t = call(&mut b, t0, answered(5_000)).unwrap();
        assert_eq!(
            t.reason,
            "slow calls 50% over 4 calls in 60s (first event ≥ 5s)"
        );
        assert_eq!(t.to, BreakerState::Open);

        // Off by default: the same answers never open it.
        let mut b = Breaker::new(BreakerConfig {
            min_calls: 4,
            ..consecutive_only(0)
        });
        for _ in 0..10 {
            assert_eq!(call(&mut b, t0, answered(60_000)), None);
        }
        // A probe that answers slowly fails, and the next opening is longer.
        let mut b = Breaker::new(BreakerConfig {
            min_calls: 1,
            slow_call_rate: 1.0,
            ..config
        });
        assert!(call(&mut b, t0, answered(9_000)).is_some());
        let t = call(&mut b, t0 + secs(30), answered(9_000)).unwrap();
        assert_eq!(
            (t.reason.as_str(), t.recovery),
            ("probe answered slowly", Some(secs(60)))
        );
        let t = call(&mut b, t0 + secs(90), answered(100)).unwrap();
        assert_eq!(t.reason, "probe succeeded");
    }

    #[test]
    fn an_answered_recovery_probe_turns_it_half_open_early() {
        let t0 = Instant::now();
        let mut b = Breaker::new(consecutive_only(1));
        call(&mut b, t0, failure_after(secs(3)));
        assert_eq!(
            b.hold_until(),
            Some(t0 + secs(3)),
            "the retry-after holds probes off"
        );
        let t = b.probe_answered("recovery probe answered in 80ms").unwrap();
        assert_eq!(
            (t.from, t.to, t.recovery),
            (BreakerState::Open, BreakerState::HalfOpen, None)
        );
        assert_eq!(b.hold_until(), None);
        // Long before the recovery would have elapsed, one real call is let through to confirm.
        assert_eq!(b.admit(t0 + secs(1)).0, Ok(true));
        assert_eq!(
            b.admit(t0 + secs(1)).0.unwrap_err().reason,
            SkipReason::HalfOpenBusy
        );
        let t = b.record(t0 + secs(1), true, CallOutcome::Success).unwrap();
        assert_eq!(t.to, BreakerState::Closed);
        // Only an open breaker moves: not a closed one, nor the operator's.
        assert_eq!(b.probe_answered("x"), None);

        // A recovery probe answered, but the real request it let through failed: the next recovery
        // probes wait out the whole (grown) recovery, not the probe interval.
        let t1 = t0 + secs(100);
        call(&mut b, t1, failure()); // reset by the closing above; trips again
        assert_eq!(b.hold_until(), None);
        b.probe_answered("probe answered");
        let t = call(&mut b, t1, failure()).unwrap();
        assert_eq!(
            (t.reason.as_str(), t.recovery),
            ("probe failed", Some(secs(60)))
        );
        assert_eq!(b.hold_until(), Some(t1 + secs(60)));
        // A half-open probe after the plain recovery that fails does not hold the probes off.
        let t2 = t1 + secs(60);
        let t = call(&mut b, t2, failure()).unwrap();
        assert_eq!(t.recovery, Some(secs(120)));
        assert_eq!(b.hold_until(), None);
        b.force_open();
        assert_eq!(b.probe_answered("x"), None);
        assert_eq!(b.state(), BreakerState::ForcedOpen);
    }

    #[test]
    fn states_serialize_as_their_names() {
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::ForcedOpen,
            BreakerState::ForcedClosed,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
        }
    }

    #[test]
    fn reasons_read_durations_briefly() {
        assert_eq!(human(secs(30)), "30s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
    }
}
