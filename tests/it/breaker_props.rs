//! The circuit breaker against a small reference model, over random sequences of calls, outcomes,
//! time and operator actions.
//!
//! The model keeps every call since the last clear and recounts the window from scratch on each
//! question; the breaker prunes a queue as it goes. Both follow the rules of the breaker's docs.

use std::time::Duration;

use breakerbox::engine::breaker::{
    Breaker, BreakerConfig, BreakerState, CallOutcome, Rejection, Transition,
};
use breakerbox::event::SkipReason;
use proptest::prelude::*;
use tokio::time::Instant;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Closed,
    Open { until: Instant },
    HalfOpen,
    ForcedOpen,
    ForcedClosed,
}

impl Mode {
    fn state(self) -> BreakerState {
        match self {
            Mode::Closed => BreakerState::Closed,
            Mode::Open { .. } => BreakerState::Open,
            Mode::HalfOpen => BreakerState::HalfOpen,
            Mode::ForcedOpen => BreakerState::ForcedOpen,
            Mode::ForcedClosed => BreakerState::ForcedClosed,
        }
    }
}

/// What the model expects of a transition: the states, the open period, and how the reason starts.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    from: BreakerState,
    to: BreakerState,
    recovery: Option<Duration>,
    reason: String,
}

struct Model {
    cfg: BreakerConfig,
    mode: Mode,
    calls: Vec<(Instant, bool)>,
    streak: u32,
    recovery: Duration,
    probes: u32,
    opened_at: Option<Instant>,
}

impl Model {
    fn new(cfg: BreakerConfig) -> Self {
        Model {
            recovery: cfg.recovery,
            cfg,
            mode: Mode::Closed,
            calls: Vec::new(),
            streak: 0,
            probes: 0,
            opened_at: None,
        }
    }

    fn go(&mut self, to: Mode, reason: &str, recovery: Option<Duration>) -> Option<Expected> {
        let from = self.mode.state();
        self.mode = to;
        (from != to.state()).then(|| Expected {
            from,
            to: to.state(),
            recovery,
            reason: reason.to_owned(),
        })
    }

    fn in_window(&self, now: Instant) -> (usize, usize) {
        let recent: Vec<bool> = self
            .calls
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < self.cfg.window)
            .map(|(_, failed)| *failed)
            .collect();
        (recent.len(), recent.iter().filter(|f| **f).count())
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.streak = 0;
        self.recovery = self.cfg.recovery;
        self.opened_at = None;
    }

    fn open(
        &mut self,
        now: Instant,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Option<Expected> {
        let mut period = self.recovery;
        if let Some(after) = retry_after {
            period = period.max(after);
        }
        let period = period.min(DAY);
        self.opened_at = Some(now);
        self.go(
            Mode::Open {
                until: now + period,
            },
            reason,
            Some(period),
        )
    }

    fn admit(&mut self, now: Instant) -> (Result<bool, Rejection>, Option<Expected>) {
        let mut transition = None;
        if let Mode::Open { until } = self.mode
            && now >= until
        {
            transition = self.go(Mode::HalfOpen, "recovery elapsed", None);
        }
        let reject = |reason, retry_in| Err(Rejection { reason, retry_in });
        let admission = match self.mode {
            Mode::Closed | Mode::ForcedClosed => Ok(false),
            Mode::ForcedOpen => reject(SkipReason::ForcedOpen, None),
            Mode::Open { until } => reject(SkipReason::BreakerOpen, Some(until - now)),
            Mode::HalfOpen => {
                if self.probes < self.cfg.half_open_probes.max(1) {
                    self.probes += 1;
                    Ok(true)
                } else {
                    reject(SkipReason::HalfOpenBusy, None)
                }
            }
        };
        (admission, transition)
    }

    fn record(&mut self, now: Instant, probe: bool, outcome: CallOutcome) -> Option<Expected> {
        if probe && self.probes > 0 {
            self.probes -= 1;
        }
        if self.mode == Mode::HalfOpen && probe {
            return match outcome {
                CallOutcome::Neutral => None,
                // Without a slow-call trigger an answer is a success however slow.
                CallOutcome::Success | CallOutcome::Answered { .. } => {
                    self.clear();
                    self.go(Mode::Closed, "probe succeeded", None)
                }
                CallOutcome::Failure { retry_after } => {
                    let cap = self.cfg.recovery_max.max(self.cfg.recovery);
                    self.recovery = self.recovery.mul_f64(self.cfg.recovery_growth).min(cap);
                    self.open(now, "probe failed", retry_after)
                }
            };
        }
        if self.mode != Mode::Closed {
            return None;
        }
        match outcome {
            CallOutcome::Neutral => None,
            CallOutcome::Success | CallOutcome::Answered { .. } => {
                self.calls.push((now, false));
                self.streak = 0;
                None
            }
            CallOutcome::Failure { retry_after } => {
                self.calls.push((now, true));
                self.streak += 1;
                let (calls, failures) = self.in_window(now);
                let long_retry_after = match (retry_after, self.cfg.open_on_retry_after) {
                    (Some(after), Some(limit)) => after >= limit,
                    _ => false,
                };
                let streak = self.cfg.consecutive_failures > 0
                    && self.streak >= self.cfg.consecutive_failures;
                let rate = calls >= self.cfg.min_calls as usize
                    && failures as f64 / calls as f64 >= self.cfg.failure_rate;
                let reason = if long_retry_after {
                    "retry-after".to_owned()
                } else if streak {
                    format!("{} consecutive failures", self.streak)
                } else if rate {
                    "failure rate".to_owned()
                } else {
                    return None;
                };
                self.open(now, &reason, retry_after)
            }
        }
    }

    fn operator(&mut self, op: &Op) -> Option<Expected> {
        match op {
            Op::ForceOpen => self.go(Mode::ForcedOpen, "operator: trip", None),
            Op::ForceClosed => self.go(Mode::ForcedClosed, "operator: force closed", None),
            _ => {
                self.clear();
                self.go(Mode::Closed, "operator: reset", None)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Admit,
    /// Record the outcome of one of the calls in flight (by index, modulo their number).
    Record(usize, CallOutcome),
    /// One of the calls in flight is cancelled.
    Cancel(usize),
    Advance(Duration),
    ForceOpen,
    ForceClosed,
    Reset,
}

fn secs(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_secs)
}

/// Up to `max` seconds, often whole seconds so that boundaries (a period that just ended, a retry-after
/// equal to the trigger) are hit exactly.
fn duration(max: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        secs(0..=max),
        (0..=max * 1000).prop_map(Duration::from_millis)
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (
        (
            0..=4u32,
            prop::sample::select(vec![0.25, 0.5, 0.75, 1.0]),
            secs(1..=60),
            0..=6u32,
        ),
        (
            secs(1..=30),
            prop::sample::select(vec![1.0, 1.5, 2.0, 3.0]),
            secs(1..=120),
            0..=3u32,
            prop::option::of(secs(1..=30)),
        ),
    )
        .prop_map(
            |(
                (consecutive_failures, failure_rate, window, min_calls),
                (recovery, recovery_growth, recovery_max, half_open_probes, open_on_retry_after),
            )| BreakerConfig {
                consecutive_failures,
                failure_rate,
                window,
                min_calls,
                recovery,
                recovery_growth,
                recovery_max,
                half_open_probes,
                open_on_retry_after,
                slow_call: None,
                slow_call_rate: 0.5,
            },
        )
}

fn outcome() -> impl Strategy<Value = CallOutcome> {
    prop_oneof![
        2 => Just(CallOutcome::Success),
        1 => duration(60).prop_map(|first_event| CallOutcome::Answered { first_event }),
        4 => prop::option::of(duration(60))
            .prop_map(|retry_after| CallOutcome::Failure { retry_after }),
        1 => Just(CallOutcome::Neutral),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Admit),
        6 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Record(i, o)),
        1 => any::<usize>().prop_map(Op::Cancel),
        4 => duration(40).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::ForceClosed),
        1 => Just(Op::Reset),
    ]
}

fn check(actual: Option<Transition>, expected: Option<Expected>) -> Result<(), TestCaseError> {
    match (actual, expected) {
        (None, None) => Ok(()),
        (Some(a), Some(e)) => {
            prop_assert_eq!((a.from, a.to, a.recovery), (e.from, e.to, e.recovery));
            prop_assert!(
                a.reason.starts_with(&e.reason),
                "reason {:?}, expected {:?}",
                a.reason,
                e.reason
            );
            Ok(())
        }
        (a, e) => Err(TestCaseError::fail(format!(
            "transition {a:?}, model {e:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_breaker_follows_the_model(cfg in config(), ops in prop::collection::vec(op(), 1..120)) {
        let mut now = Instant::now();
        let mut breaker = Breaker::new(cfg.clone());
        let mut model = Model::new(cfg.clone());
        // Admitted calls not yet recorded or cancelled: whether each is a probe.
        let mut in_flight: Vec<bool> = Vec::new();
        // When the current open period ends, from the transition that opened it.
        let mut open_until: Option<Instant> = None;

        for op in &ops {
            let before = breaker.state();
            let transition = match op {
                Op::Admit => {
                    let (admission, transition) = breaker.admit(now);
                    let (expected, model_transition) = model.admit(now);
                    prop_assert_eq!(&admission, &expected);
                    if before == BreakerState::Open && admission.is_ok() {
                        prop_assert!(open_until.is_some_and(|until| now >= until), "admitted while open");
                    }
                    if let Ok(probe) = admission {
                        in_flight.push(probe);
                    }
                    check(transition.clone(), model_transition)?;
                    transition
                }
                Op::Record(i, outcome) if !in_flight.is_empty() => {
                    let probe = in_flight.remove(i % in_flight.len());
                    let transition = breaker.record(now, probe, *outcome);
                    check(transition.clone(), model.record(now, probe, *outcome))?;
                    transition
                }
                Op::Cancel(i) if !in_flight.is_empty() => {
                    if in_flight.remove(i % in_flight.len()) {
                        breaker.release_probe();
                        model.probes = model.probes.saturating_sub(1);
                    }
                    None
                }
                Op::Record(..) | Op::Cancel(_) => None,
                Op::Advance(by) => {
                    now += *by;
                    None
                }
                Op::ForceOpen | Op::ForceClosed | Op::Reset => {
                    let transition = match op {
                        Op::ForceOpen => breaker.force_open(),
                        Op::ForceClosed => breaker.force_closed(),
                        _ => breaker.reset(),
                    };
                    check(transition.clone(), model.operator(op))?;
                    transition
                }
            };
            if let Some(t) = &transition
                && t.to == BreakerState::Open {
                    open_until = Some(now + t.recovery.unwrap());
                }

            let state = breaker.state();
            prop_assert_eq!(state, model.mode.state());
            let is_operator = matches!(op, Op::ForceOpen | Op::ForceClosed | Op::Reset);
            if matches!(before, BreakerState::ForcedOpen | BreakerState::ForcedClosed) && !is_operator {
                prop_assert_eq!(state, before, "a forced state changed by itself");
            }

            let snap = breaker.snapshot(now);
            let (calls, failures) = model.in_window(now);
            prop_assert_eq!(snap.state, state);
            prop_assert_eq!(snap.consecutive_failures, model.streak);
            prop_assert_eq!((snap.calls_in_window as usize, snap.failures_in_window as usize), (calls, failures));
            prop_assert_eq!(snap.probes_in_flight, model.probes);
            prop_assert!(snap.probes_in_flight <= cfg.half_open_probes.max(1));
            prop_assert_eq!(snap.probes_in_flight as usize, in_flight.iter().filter(|p| **p).count());
            let remaining = match model.mode {
                Mode::Open { until } => Some(until.saturating_duration_since(now)),
                _ => None,
            };
            prop_assert_eq!(snap.open_remaining, remaining);
            let opened_at = match model.mode {
                Mode::Open { .. } | Mode::HalfOpen => model.opened_at,
                _ => None,
            };
            prop_assert_eq!(breaker.opened_at(), opened_at);
        }
    }
}
