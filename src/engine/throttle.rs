//! Rate-limit awareness ([`Throttle`]): the latest rate limits each provider stated (per breaker
//! key: a provider, or one model of it), when they came (tokio's clock), and whether the provider
//! is *throttled*: for some dimension, what remains is at most `steer_below` of the limit (rounded
//! down) before that dimension resets. A throttled target is passed over while a later one is not,
//! so requests move on before the 429 arrives; it stops being throttled at the reset, or when a
//! fresher response says otherwise.
//!
//! Throttling is not a breaker state: breakers never hear of it. Each change is an event
//! (`throttle_changed`), and so is each response that states other limits than the last
//! (`rate_limits`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

use crate::engine::attempt::millis;
use crate::engine::breaker::BreakerKey;
use crate::event::{Bus, EventKind, LimitDimension, RateLimit};
use crate::provider::{Allowance, RateLimits};

/// When a provider counts as throttled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Throttled when, in any dimension, what remains is at most this share of the limit (rounded
    /// down: with 0.05, a limit of 50 at 2 left, a limit of 5 only at 0). `None`: never (the
    /// limits are still tracked and shown).
    pub steer_below: Option<f64>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            steer_below: Some(0.05),
        }
    }
}

/// Why a provider is throttled: its tightest dimension, and when it resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttling {
    pub dimension: LimitDimension,
    pub remaining: u64,
    pub limit: Option<u64>,
    pub until: Instant,
}

/// Whether `limits`, stated at `seen`, throttle under `steer_below`: of the dimensions at or
/// under their threshold, the one that resets last, the first in [`LimitDimension`] order on a
/// tie (a dimension with no reset, or one already reset, never throttles).
pub fn verdict(limits: &RateLimits, seen: Instant, steer_below: f64) -> Option<Throttling> {
    limits
        .allowances
        .iter()
        // Reversed: `max_by_key` keeps the last of equals.
        .rev()
        .filter_map(|a| {
            let remaining = a.remaining?;
            let reset = a.reset.filter(|r| !r.is_zero())?;
            let threshold = a
                .limit
                .map_or(0, |l| (steer_below * l as f64).floor() as u64);
            (remaining <= threshold).then(|| Throttling {
                dimension: a.dimension,
                remaining,
                limit: a.limit,
                until: seen + reset,
            })
        })
        .max_by_key(|t| t.until)
}

/// The rate limits of every provider the engines have heard from, shared by all of them. Cloning
/// shares it.
#[derive(Clone)]
pub struct Throttle {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Bus,
    config: ThrottleConfig,
    entries: Mutex<HashMap<BreakerKey, Entry>>,
    /// Told each observation of this instance's own that changed what is shown (the fleet
    /// shares them); at most [`OBSERVATIONS_QUEUED`] wait.
    observations: Mutex<Option<tokio::sync::mpsc::Sender<(BreakerKey, RateLimits)>>>,
}

/// Observations waiting for the fleet before more are dropped.
const OBSERVATIONS_QUEUED: usize = 1024;

/// One breaker key's latest limits.
struct Entry {
    limits: RateLimits,
    /// The values last published in `rate_limits`, each reset as an instant.
    shown: Vec<Shown>,
    throttling: Option<Throttling>,
    /// Counts throttlings, so that a timer set for an earlier one does nothing.
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Shown {
    dimension: LimitDimension,
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_at: Option<Instant>,
}

/// A reset that moved by less than this is the same reset (OpenAI states it relative to now).
const SAME_RESET: Duration = Duration::from_secs(1);

impl Throttle {
    pub fn new(config: ThrottleConfig, bus: Bus) -> Self {
        Throttle {
            inner: Arc::new(Inner {
                bus,
                config,
                entries: Mutex::new(HashMap::new()),
                observations: Mutex::new(None),
            }),
        }
    }

    /// This instance's own observations from now on, when they change what is shown (one
    /// listener: the fleet).
    pub fn watch_observations(&self) -> tokio::sync::mpsc::Receiver<(BreakerKey, RateLimits)> {
        let (tx, rx) = tokio::sync::mpsc::channel(OBSERVATIONS_QUEUED);
        *crate::sync::lock(&self.inner.observations) = Some(tx);
        rx
    }

    /// What another gateway of the fleet saw of a provider's limits, as if a response here had
    /// said it: the limits are the provider account's, whoever asked.
    pub fn observe_from_fleet(&self, key: &BreakerKey, limits: RateLimits) {
        self.record(key, limits, false);
    }

    pub fn config(&self) -> ThrottleConfig {
        self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<BreakerKey, Entry>> {
        // Nothing panics while it is held; were it poisoned, the entries are still whole.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A response for `key` stated `limits`, now: keep them, publish them if they differ from the
    /// last ones published, and throttle or lift the provider as they say.
    pub fn observe(&self, key: &BreakerKey, limits: RateLimits) {
        self.record(key, limits, true);
    }

    fn record(&self, key: &BreakerKey, limits: RateLimits, own: bool) {
        let now = Instant::now();
        let verdict = self
            .inner
            .config
            .steer_below
            .and_then(|share| verdict(&limits, now, share));
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            limits: RateLimits::default(),
            shown: Vec::new(),
            throttling: None,
            generation: 0,
        });
        let shown = shown(&limits, now);
        if !same(&entry.shown, &shown) {
            entry.shown = shown;
            if own && let Some(tx) = crate::sync::lock(&self.inner.observations).as_ref() {
                // Full or gone: the fleet misses one observation, never this response.
                let _ = tx.try_send((key.clone(), limits.clone()));
            }
            self.inner.bus.publish(EventKind::RateLimits {
                provider: key.provider.clone(),
                model: key.model.clone(),
                limits: limits.allowances.iter().map(rate_limit).collect(),
            });
        }
        let before = entry.throttling;
        entry.limits = limits;
        entry.throttling = verdict;
        let armed = match (before, verdict) {
            (None, None) => None,
            (Some(was), None) => {
                let left = entry.limits.get(was.dimension).copied();
                let reason = match left {
                    Some(a) => format!("{} left", amount(was.dimension, a.remaining, a.limit)),
                    None => format!("{} no longer stated", was.dimension.words()),
                };
                self.lifted(key, was, reason);
                None
            }
            (was, Some(now_is)) => {
                if was.is_none() {
                    self.throttled_now(key, now_is, now);
                }
                (was.map(|w| w.until) != Some(now_is.until)).then(|| {
                    entry.generation += 1;
                    (entry.generation, now_is.until)
                })
            }
        };
        drop(entries);
        if let Some((generation, until)) = armed {
            self.lift_at(key.clone(), generation, until);
        }
    }

    /// Lift every throttling of `provider` now (an operator's reset): the next response's limits
    /// throttle it again if they still say so. Whether any was lifted.
    pub fn forget(&self, provider: &str) -> bool {
        let mut lifted = Vec::new();
        for (key, entry) in self.lock().iter_mut() {
            if key.provider != provider {
                continue;
            }
            if let Some(was) = entry.throttling.take() {
                // The pending lift of this throttling is void.
                entry.generation += 1;
                lifted.push((key.clone(), was));
            }
        }
        let any = !lifted.is_empty();
        for (key, was) in lifted {
            self.lifted(&key, was, "operator reset".to_string());
        }
        any
    }

    /// Whether `key`'s provider is throttled now (lifting it if its reset has come).
    pub fn throttled(&self, key: &BreakerKey) -> bool {
        self.expire(key, None)
    }

    /// Lift `key`'s throttling if its reset has come (and, with a `generation`, only the
    /// throttling that number names); whether it is still throttled.
    fn expire(&self, key: &BreakerKey, generation: Option<u64>) -> bool {
        let now = Instant::now();
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(key) else {
            return false;
        };
        let Some(t) = entry.throttling else {
            return false;
        };
        if generation.is_some_and(|g| g != entry.generation) || now < t.until {
            return true;
        }
        entry.throttling = None;
        self.lifted(key, t, format!("{} reset", t.dimension.words()));
        false
    }

    /// Lift the throttling numbered `generation` at `until`, if nothing lifted or replaced it first.
    fn lift_at(&self, key: BreakerKey, generation: u64, until: Instant) {
        // Outside a runtime (a test of the bookkeeping alone) the next check lifts it instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let throttle = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep_until(until).await;
            throttle.expire(&key, Some(generation));
        });
    }

    fn throttled_now(&self, key: &BreakerKey, t: Throttling, now: Instant) {
        let reset = t.until.saturating_duration_since(now);
        let reason = format!(
            "{} left, resets in {}",
            amount(t.dimension, Some(t.remaining), t.limit),
            span(reset)
        );
        self.inner.bus.publish(EventKind::ThrottleChanged {
            provider: key.provider.clone(),
            model: key.model.clone(),
            throttled: true,
            dimension: Some(t.dimension),
            remaining: Some(t.remaining),
            limit: t.limit,
            reset_ms: Some(millis(reset)),
            reason,
        });
    }

    fn lifted(&self, key: &BreakerKey, was: Throttling, reason: String) {
        self.inner.bus.publish(EventKind::ThrottleChanged {
            provider: key.provider.clone(),
            model: key.model.clone(),
            throttled: false,
            dimension: Some(was.dimension),
            remaining: None,
            limit: None,
            reset_ms: None,
            reason,
        });
    }
}

/// `requests 2/50`, `tokens 180` (no limit stated): what a reason says is left.
fn amount(dimension: LimitDimension, remaining: Option<u64>, limit: Option<u64>) -> String {
    let left = remaining.map_or_else(|| "?".to_string(), |r| r.to_string());
    match limit {
        Some(limit) => format!("{} {left}/{limit}", dimension.words()),
        None => format!("{} {left}", dimension.words()),
    }
}

/// A wait in whole seconds, rounded up, as a reason says it: `12s`, `6m0s`, `1h5m`.
fn span(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s / 60 % 60),
    }
}

fn shown(limits: &RateLimits, now: Instant) -> Vec<Shown> {
    limits
        .allowances
        .iter()
        .map(|a| Shown {
            dimension: a.dimension,
            limit: a.limit,
            remaining: a.remaining,
            reset_at: a.reset.map(|r| now + r),
        })
        .collect()
}

/// Whether two statements of limits say the same (resets within [`SAME_RESET`] of each other).
fn same(a: &[Shown], b: &[Shown]) -> bool {
    let close = |x: Option<Instant>, y: Option<Instant>| match (x, y) {
        (Some(x), Some(y)) => x.max(y).duration_since(x.min(y)) < SAME_RESET,
        (x, y) => x.is_none() && y.is_none(),
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.dimension, x.limit, x.remaining) == (y.dimension, y.limit, y.remaining)
                && close(x.reset_at, y.reset_at)
        })
}

/// An allowance as events carry it.
pub(crate) fn rate_limit(a: &Allowance) -> RateLimit {
    RateLimit {
        dimension: a.dimension,
        limit: a.limit,
        remaining: a.remaining,
        reset_ms: a.reset.map(millis),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::Event;
    use tokio::sync::broadcast::Receiver;

    fn requests(limit: Option<u64>, remaining: u64, reset_s: Option<u64>) -> Allowance {
        Allowance {
            dimension: LimitDimension::Requests,
            limit,
            remaining: Some(remaining),
            reset: reset_s.map(Duration::from_secs),
        }
    }

    fn limits(allowances: &[Allowance]) -> RateLimits {
        RateLimits {
            allowances: allowances.to_vec(),
        }
    }

    fn events(rx: &mut Receiver<Arc<Event>>) -> Vec<EventKind> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(e.kind.clone());
        }
        out
    }

    /// (throttled, reason) of each `throttle_changed` among `events`.
    fn changes(events: &[EventKind]) -> Vec<(bool, String)> {
        events
            .iter()
            .filter_map(|e| match e {
                EventKind::ThrottleChanged {
                    throttled, reason, ..
                } => Some((*throttled, reason.clone())),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn the_threshold_is_a_share_of_the_limit_rounded_down() {
        let now = Instant::now();
        let throttles = |a: Allowance| verdict(&limits(&[a]), now, 0.05).is_some();
        assert!(throttles(requests(Some(50), 2, Some(12))));
        assert!(!throttles(requests(Some(50), 3, Some(12))));
        assert!(throttles(requests(Some(100), 5, Some(12))));
        assert!(!throttles(requests(Some(100), 6, Some(12))));
        // A limit of 5 is not throttled at 4, nor at 1: only when nothing is left.
        assert!(!throttles(requests(Some(5), 4, Some(12))));
        assert!(!throttles(requests(Some(5), 1, Some(12))));
        assert!(throttles(requests(Some(5), 0, Some(12))));
        // Without a limit, only nothing left throttles; without a reset (or one past), nothing.
        assert!(throttles(requests(None, 0, Some(12))));
        assert!(!throttles(requests(None, 1, Some(12))));
        assert!(!throttles(requests(Some(50), 0, None)));
        assert!(!throttles(requests(Some(50), 0, Some(0))));
        // Any dimension throttles; the one that resets last says until when.
        let tokens = Allowance {
            dimension: LimitDimension::Tokens,
            limit: Some(40_000),
            remaining: Some(1_000),
            reset: Some(Duration::from_secs(90)),
        };
        let t = verdict(
            &limits(&[requests(Some(50), 1, Some(12)), tokens]),
            now,
            0.05,
        )
        .unwrap();
        assert_eq!(
            (t.dimension, t.remaining, t.until),
            (LimitDimension::Tokens, 1_000, now + Duration::from_secs(90))
        );
        // On a tie, the first dimension: requests before tokens.
        let spent = requests(Some(50), 0, Some(90));
        let t = verdict(&limits(&[spent, tokens]), now, 0.05).unwrap();
        assert_eq!(t.dimension, LimitDimension::Requests);
    }

    #[tokio::test(start_paused = true)]
    async fn an_operators_reset_lifts_the_throttling_and_its_timer_stays_void() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let throttle = Throttle::new(ThrottleConfig::default(), bus);
        let key = BreakerKey::provider("anthropic");
        let other = BreakerKey::provider("openai");
        throttle.observe(&key, limits(&[requests(Some(50), 0, Some(30))]));
        throttle.observe(&other, limits(&[requests(Some(50), 0, Some(30))]));
        assert!(throttle.throttled(&key));
        events(&mut rx);

        assert!(throttle.forget("anthropic"));
        assert!(!throttle.throttled(&key));
        assert!(throttle.throttled(&other), "only the provider named");
        assert_eq!(
            changes(&events(&mut rx)),
            [(false, "operator reset".into())]
        );
        assert!(!throttle.forget("anthropic"), "nothing left to lift");

        // Its reset time passing lifts nothing more; a new 0-left response throttles again.
        tokio::time::sleep(Duration::from_secs(31)).await;
        let after = events(&mut rx);
        let lifted: Vec<&str> = after
            .iter()
            .filter_map(|e| match e {
                EventKind::ThrottleChanged { provider, .. } => Some(provider.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(lifted, ["openai"], "{after:?}");
        throttle.observe(&key, limits(&[requests(Some(50), 0, Some(30))]));
        assert!(throttle.throttled(&key));
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_until_the_reset_then_lifted_by_the_clock() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let throttle = Throttle::new(ThrottleConfig::default(), bus);
        let key = BreakerKey::provider("anthropic");
        throttle.observe(&key, limits(&[requests(Some(50), 10, Some(30))]));
        assert!(!throttle.throttled(&key));
        throttle.observe(&key, limits(&[requests(Some(50), 2, Some(12))]));
        assert!(throttle.throttled(&key));
        let seen = events(&mut rx);
        assert_eq!(
            seen.iter()
                .filter(|e| e.type_name() == "rate_limits")
                .count(),
            2
        );
        assert_eq!(
            changes(&seen),
            [(true, "requests 2/50 left, resets in 12s".to_string())]
        );
        let EventKind::ThrottleChanged {
            reset_ms,
            remaining,
            limit,
            dimension,
            ..
        } = seen.last().unwrap()
        else {
            panic!("{seen:?}")
        };
        assert_eq!(
            (*reset_ms, *remaining, *limit, *dimension),
            (
                Some(12_000),
                Some(2),
                Some(50),
                Some(LimitDimension::Requests)
            )
        );

        tokio::time::sleep(Duration::from_millis(11_900)).await;
        assert!(throttle.throttled(&key));
        assert!(events(&mut rx).is_empty());
        // The timer lifts it at the reset, with nobody asking.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            changes(&events(&mut rx)),
            [(false, "requests reset".to_string())]
        );
        assert!(!throttle.throttled(&key));
        assert!(events(&mut rx).is_empty(), "lifted once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresher_response_lifts_it_and_the_old_timer_does_nothing() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let throttle = Throttle::new(ThrottleConfig::default(), bus);
        let key = BreakerKey::model("openai", "gpt-5");
        throttle.observe(&key, limits(&[requests(Some(20), 0, Some(5))]));
        assert!(throttle.throttled(&key));
        tokio::time::sleep(Duration::from_secs(1)).await;
        throttle.observe(&key, limits(&[requests(Some(20), 19, Some(59))]));
        assert!(!throttle.throttled(&key));
        // Throttled again with a later reset: the first timer (at 5 s) must not lift it.
        throttle.observe(&key, limits(&[requests(Some(20), 1, Some(30))]));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(throttle.throttled(&key));
        let seen = events(&mut rx);
        assert_eq!(
            changes(&seen),
            [
                (true, "requests 0/20 left, resets in 5s".to_string()),
                (false, "requests 19/20 left".to_string()),
                (true, "requests 1/20 left, resets in 30s".to_string()),
            ]
        );
        assert!(seen.iter().all(|e| match e {
            EventKind::RateLimits { model, .. } | EventKind::ThrottleChanged { model, .. } =>
                model.as_deref() == Some("gpt-5"),
            _ => false,
        }));
        tokio::time::sleep(Duration::from_secs(21)).await;
        assert!(!throttle.throttled(&key));
        assert_eq!(changes(&events(&mut rx)).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_limits_are_published_once_and_off_never_throttles() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let throttle = Throttle::new(ThrottleConfig { steer_below: None }, bus);
        let key = BreakerKey::provider("anthropic");
        for _ in 0..3 {
            throttle.observe(&key, limits(&[requests(Some(50), 0, Some(30))]));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!throttle.throttled(&key));
        let seen = events(&mut rx);
        assert_eq!(seen.len(), 1, "{seen:?}");
        let EventKind::RateLimits { limits, model, .. } = &seen[0] else {
            panic!("{seen:?}")
        };
        assert_eq!(*model, None);
        assert_eq!(
            limits,
            &[RateLimit {
                dimension: LimitDimension::Requests,
                limit: Some(50),
                remaining: Some(0),
                reset_ms: Some(30_000),
            }]
        );
        // The same numbers with a reset that moved by more than a second are news.
        throttle.observe(&key, limits_at(0, 40));
        assert_eq!(events(&mut rx).len(), 1);
        assert!(!throttle.throttled(&BreakerKey::provider("unheard")));
    }

    fn limits_at(remaining: u64, reset_s: u64) -> RateLimits {
        limits(&[requests(Some(50), remaining, Some(reset_s))])
    }
}
