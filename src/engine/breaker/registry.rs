//! The breakers that requests share: one [`Breaker`] per [`BreakerKey`] behind a std mutex (never
//! held across an await), the index from a provider to its breakers, tokio's clock, and a
//! `breaker_changed` event on the bus for every transition.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::mpsc;

use tokio::time::Instant;

use super::machine::{Breaker, BreakerConfig, BreakerSnapshot, CallOutcome, Rejection, Transition};
use crate::event::{BreakerState, Bus, EventKind, OperatorAction};
use crate::sync::lock;

/// How many counted call outcomes wait for the fleet ([`Breakers::watch_outcomes`]) before more
/// are dropped: a slow Redis must not grow memory.
const OUTCOMES_QUEUED: usize = 4096;

/// One call outcome a breaker counted (it was closed), for the fleet to add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub key: BreakerKey,
    pub failed: bool,
}

/// May this gateway send the next recovery probe of a breaker, or is another gateway of the fleet
/// sending it? (`cluster`: one probe for the fleet.) Answers soon, whatever the network does.
pub trait ProbeGate: Send + Sync {
    fn claim(
        &self,
        key: &BreakerKey,
        hold: std::time::Duration,
    ) -> futures::future::BoxFuture<'static, bool>;
}

/// What one breaker guards: a provider, or one model of it (`breaker = "model"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BreakerKey {
    pub provider: String,
    pub model: Option<String>,
}

impl BreakerKey {
    /// The breaker of a whole provider.
    pub fn provider(name: &str) -> Self {
        BreakerKey {
            provider: name.to_owned(),
            model: None,
        }
    }

    /// The breaker of one model of a provider.
    pub fn model(name: &str, model: &str) -> Self {
        BreakerKey {
            provider: name.to_owned(),
            model: Some(model.to_owned()),
        }
    }
}

impl From<&str> for BreakerKey {
    fn from(provider: &str) -> Self {
        BreakerKey::provider(provider)
    }
}

impl fmt::Display for BreakerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.model {
            Some(model) => write!(f, "{}/{model}", self.provider),
            None => f.write_str(&self.provider),
        }
    }
}

/// The breakers of all providers, shared by every request of an engine. Cloning shares them.
///
/// It owns the index from a provider to its breakers: what the operator trips, holds or resets is a
/// provider, and the registry knows which breakers (one, or one per model) that means.
#[derive(Clone)]
pub struct Breakers {
    shared: Arc<Shared>,
}

struct Shared {
    bus: Bus,
    registry: Mutex<Registry>,
    /// Told the key of every breaker that opens (the recovery prober listens).
    openings: Mutex<Option<mpsc::UnboundedSender<BreakerKey>>>,
    /// Told every outcome a closed breaker counted (the fleet adds them up).
    outcomes: Mutex<Option<mpsc::Sender<Counted>>>,
    /// Whether anyone watches the outcomes: outside a fleet, recording a call takes no other lock.
    counting: std::sync::atomic::AtomicBool,
    /// Asked before each recovery probe, in a fleet.
    probe_gate: Mutex<Option<std::sync::Arc<dyn ProbeGate>>>,
}

/// The breakers, held without keeping them alive (the prober's hold).
#[derive(Clone)]
pub struct WeakBreakers(Weak<Shared>);

impl WeakBreakers {
    pub fn upgrade(&self) -> Option<Breakers> {
        self.0.upgrade().map(|shared| Breakers { shared })
    }
}

struct Registry {
    default: BreakerConfig,
    overrides: HashMap<BreakerKey, BreakerConfig>,
    /// Few (a breaker per provider, or per model of one): a scan finds one sooner than a hash would,
    /// and every call admits and records.
    breakers: Vec<(BreakerKey, Breaker)>,
    /// The breakers each provider's targets use, in the order they were registered.
    index: BTreeMap<String, Vec<BreakerKey>>,
}

impl Registry {
    fn config(&self, key: &BreakerKey) -> &BreakerConfig {
        self.overrides.get(key).unwrap_or(&self.default)
    }

    fn find(&self, key: &BreakerKey) -> Option<&Breaker> {
        self.breakers.iter().find(|(k, _)| k == key).map(|(_, b)| b)
    }

    /// The breaker of `key`, created on first use.
    fn breaker(&mut self, key: &BreakerKey) -> &mut Breaker {
        let i = match self.breakers.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                let config = self.overrides.get(key).unwrap_or(&self.default).clone();
                self.breakers.push((key.clone(), Breaker::new(config)));
                self.breakers.len() - 1
            }
        };
        &mut self.breakers[i].1
    }

    /// The breakers of `provider`: those its targets registered, else its own one.
    fn keys_of(&self, provider: &str) -> Vec<BreakerKey> {
        match self.index.get(provider) {
            Some(keys) if !keys.is_empty() => keys.clone(),
            _ => vec![BreakerKey::provider(provider)],
        }
    }
}

impl Breakers {
    pub fn new(config: BreakerConfig, bus: Bus) -> Self {
        Breakers {
            shared: Arc::new(Shared {
                bus,
                registry: Mutex::new(Registry {
                    default: config,
                    overrides: HashMap::new(),
                    breakers: Vec::new(),
                    index: BTreeMap::new(),
                }),
                openings: Mutex::new(None),
                outcomes: Mutex::new(None),
                counting: std::sync::atomic::AtomicBool::new(false),
                probe_gate: Mutex::new(None),
            }),
        }
    }

    /// Every outcome a closed breaker counts from now on (one listener; at most
    /// [`OUTCOMES_QUEUED`] waiting, beyond which they are dropped).
    pub fn watch_outcomes(&self) -> mpsc::Receiver<Counted> {
        let (tx, rx) = mpsc::channel(OUTCOMES_QUEUED);
        *lock(&self.shared.outcomes) = Some(tx);
        self.shared
            .counting
            .store(true, std::sync::atomic::Ordering::Release);
        rx
    }

    /// Ask `gate` before each recovery probe from now on.
    pub fn set_probe_gate(&self, gate: std::sync::Arc<dyn ProbeGate>) {
        *lock(&self.shared.probe_gate) = Some(gate);
    }

    /// The gate recovery probes ask, in a fleet.
    pub fn probe_gate(&self) -> Option<std::sync::Arc<dyn ProbeGate>> {
        lock(&self.shared.probe_gate).clone()
    }

    /// The thresholds `key`'s breaker uses.
    pub fn config_of(&self, key: &BreakerKey) -> BreakerConfig {
        self.lock().config(key).clone()
    }

    /// Every breaker there is, with its state (for the fleet to publish after a reconnect).
    pub fn states(&self) -> Vec<(BreakerKey, BreakerState)> {
        self.lock()
            .breakers
            .iter()
            .map(|(key, breaker)| (key.clone(), breaker.state()))
            .collect()
    }

    /// Follow what `instance`, another gateway of the fleet, says its breaker of `key` did (see
    /// [`Breaker::follow`]); the `breaker_changed` names that instance.
    pub fn follow(
        &self,
        key: &BreakerKey,
        to: BreakerState,
        reason: String,
        open_for: Option<std::time::Duration>,
        by_operator: bool,
        instance: &str,
    ) -> bool {
        self.update_from(key, Some(instance), |breaker, now| {
            let t = breaker.follow(now, to, reason, open_for, by_operator);
            (t.is_some(), t)
        })
    }

    /// The fleet's failures together reached a trigger of `key`'s breaker: open it here (the
    /// fleet follows, as after any opening here).
    pub fn open_for_fleet(&self, key: &BreakerKey, reason: String) -> bool {
        self.update(key, |breaker, now| {
            let t = breaker.open_for_fleet(now, reason);
            (t.is_some(), t)
        })
    }

    /// An operator's action taken at `instance`, another gateway of the fleet, carried out here:
    /// trip, force closed or reset every breaker of `provider`.
    pub fn operate_for(&self, action: OperatorAction, provider: &str, instance: &str) -> bool {
        let step: fn(&mut Breaker) -> Option<Transition> = match action {
            OperatorAction::Trip => Breaker::force_open,
            OperatorAction::ForceClosed => Breaker::force_closed,
            OperatorAction::Reset => Breaker::reset,
            OperatorAction::SetFault | OperatorAction::Load => return false,
        };
        let keys = self.lock().keys_of(provider);
        keys.iter().fold(false, |changed, key| {
            self.update_from(key, Some(instance), |breaker, _| {
                let transition = step(breaker);
                (transition.is_some(), transition)
            }) | changed
        })
    }

    fn tell_counted(&self, key: &BreakerKey, failed: bool) {
        if !self
            .shared
            .counting
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        if let Some(tx) = lock(&self.shared.outcomes).as_ref() {
            // Full or gone: the fleet misses one count, never this call.
            let _ = tx.try_send(Counted {
                key: key.clone(),
                failed,
            });
        }
    }

    /// Say that a target of `key.provider` uses this breaker (for the operator's commands, which
    /// name a provider). Registering a key twice is harmless.
    pub fn register(&self, key: &BreakerKey) {
        let mut registry = self.lock();
        let keys = registry.index.entry(key.provider.clone()).or_default();
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    /// Whether a target of this engine uses `provider` (it has registered a breaker).
    pub fn knows(&self, provider: &str) -> bool {
        self.lock().index.contains_key(provider)
    }

    /// The breakers of `provider` (see [`Breakers::register`]).
    pub fn keys_of(&self, provider: &str) -> Vec<BreakerKey> {
        self.lock().keys_of(provider)
    }

    /// Give one key its own thresholds. A breaker that exists keeps its state under the new config.
    pub fn configure(&self, key: &BreakerKey, config: BreakerConfig) {
        let mut registry = self.lock();
        if let Some((_, breaker)) = registry.breakers.iter_mut().find(|(k, _)| k == key) {
            breaker.set_config(config.clone());
        }
        registry.overrides.insert(key.clone(), config);
    }

    /// Ask to send a call to `key` now. The permit must be recorded, or dropped if the call was cancelled.
    pub fn admit(&self, key: &BreakerKey) -> Result<Permit, Rejection> {
        let probe = self.update(key, |breaker, now| breaker.admit(now))?;
        Ok(Permit {
            breakers: self.clone(),
            key: key.clone(),
            probe,
            settled: false,
        })
    }

    /// The key of every breaker that opens from now on (one listener: a new one replaces it).
    pub fn watch_openings(&self) -> mpsc::UnboundedReceiver<BreakerKey> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.shared.openings) = Some(tx);
        rx
    }

    pub fn downgrade(&self) -> WeakBreakers {
        WeakBreakers(Arc::downgrade(&self.shared))
    }

    /// The bus the transitions go to.
    pub fn bus(&self) -> &Bus {
        &self.shared.bus
    }

    /// A recovery probe of `key` got an answer: an open breaker turns half-open now.
    pub fn probe_answered(&self, key: &BreakerKey, reason: String) {
        self.update(key, |breaker, _| ((), breaker.probe_answered(reason)));
    }

    /// While `key`'s breaker is open: when the provider's retry-after ends.
    pub fn hold_until(&self, key: &BreakerKey) -> Option<Instant> {
        self.lock().find(key).and_then(Breaker::hold_until)
    }

    /// Operator trip of every breaker of `provider`; whether any state changed.
    pub fn force_open(&self, provider: &str) -> bool {
        self.operate(provider, Breaker::force_open)
    }

    /// Operator hold closed of every breaker of `provider`; whether any state changed.
    pub fn force_closed(&self, provider: &str) -> bool {
        self.operate(provider, Breaker::force_closed)
    }

    /// Operator reset to automatic of every breaker of `provider`; whether any state changed.
    pub fn reset(&self, provider: &str) -> bool {
        self.operate(provider, Breaker::reset)
    }

    fn operate(&self, provider: &str, step: fn(&mut Breaker) -> Option<Transition>) -> bool {
        let keys = self.lock().keys_of(provider);
        keys.iter().fold(false, |changed, key| {
            self.update(key, |breaker, _| {
                let transition = step(breaker);
                (transition.is_some(), transition)
            }) | changed
        })
    }

    pub fn state(&self, key: &BreakerKey) -> BreakerState {
        self.lock()
            .find(key)
            .map_or(BreakerState::Closed, Breaker::state)
    }

    pub fn snapshot(&self, key: &BreakerKey) -> BreakerSnapshot {
        let now = Instant::now();
        let registry = self.lock();
        match registry.find(key) {
            Some(breaker) => breaker.snapshot(now),
            None => Breaker::new(registry.config(key).clone()).snapshot(now),
        }
    }

    /// When the breaker of `key` last opened, while it is open or half-open (to try the one that
    /// opened first when all are open).
    pub fn opened_at(&self, key: &BreakerKey) -> Option<Instant> {
        self.lock().find(key).and_then(Breaker::opened_at)
    }

    /// Run `f` on the breaker of `key` (created on first use) and publish the transition it returns.
    fn update<T>(
        &self,
        key: &BreakerKey,
        f: impl FnOnce(&mut Breaker, Instant) -> (T, Option<Transition>),
    ) -> T {
        self.update_from(key, None, f)
    }

    /// [`Breakers::update`], for a change that `instance` (another gateway of the fleet) made
    /// first, when there is one.
    fn update_from<T>(
        &self,
        key: &BreakerKey,
        instance: Option<&str>,
        f: impl FnOnce(&mut Breaker, Instant) -> (T, Option<Transition>),
    ) -> T {
        let mut registry = self.lock();
        let (value, transition) = f(registry.breaker(key), Instant::now());
        // Published under the lock so that the bus carries the transitions of a breaker in the order
        // they happened; publishing never waits.
        if let Some(transition) = transition {
            if transition.to == BreakerState::Open {
                self.tell_opened(key);
            }
            self.shared.bus.publish(EventKind::BreakerChanged {
                provider: key.provider.clone(),
                model: key.model.clone(),
                from: transition.from,
                to: transition.to,
                reason: transition.reason,
                recovery_ms: transition
                    .recovery
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                instance: instance.map(str::to_owned),
            });
        }
        value
    }

    fn tell_opened(&self, key: &BreakerKey) {
        if let Some(tx) = lock(&self.shared.openings).as_ref() {
            // A listener that has gone stops nothing.
            let _ = tx.send(key.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves a consistent registry: every update is a
        // single state-machine step.
        lock(&self.shared.registry)
    }
}

/// Leave to send one call through a breaker. Record its outcome; dropping it unrecorded (a cancelled
/// call) frees its probe slot and counts nothing.
pub struct Permit {
    breakers: Breakers,
    key: BreakerKey,
    probe: bool,
    settled: bool,
}

impl Permit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn record(mut self, outcome: CallOutcome) {
        self.settled = true;
        let probe = self.probe;
        let counted = self.breakers.update(&self.key, |breaker, now| {
            let counted = breaker.state() == BreakerState::Closed && !probe;
            (counted, breaker.record(now, probe, outcome))
        });
        let failed = match outcome {
            CallOutcome::Neutral => return,
            CallOutcome::Success | CallOutcome::Answered { .. } => false,
            CallOutcome::Failure { .. } => true,
        };
        if counted {
            self.breakers.tell_counted(&self.key, failed);
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("key", &self.key)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breakers.update(&self.key, |breaker, _| {
                breaker.release_probe();
                ((), None)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::event::{Event, SkipReason};
    use std::time::Duration;
    use tokio::sync::broadcast;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn failure() -> CallOutcome {
        CallOutcome::Failure { retry_after: None }
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

    fn breaker_events(rx: &mut broadcast::Receiver<Arc<Event>>) -> Vec<EventKind> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|event| event.kind.clone())
            .collect()
    }

    fn changed(from: &str, to: &str, reason: &str, recovery_ms: Option<u64>) -> EventKind {
        EventKind::BreakerChanged {
            provider: "anthropic".into(),
            model: None,
            from: from.parse().expect("a name in the vocabulary"),
            to: to.parse().expect("a name in the vocabulary"),
            reason: reason.into(),
            recovery_ms,
            instance: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_registry_publishes_every_transition_with_its_reason() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let breakers = Breakers::new(consecutive_only(2), bus);
        for _ in 0..2 {
            breakers
                .admit(&"anthropic".into())
                .unwrap()
                .record(failure());
        }
        let opened = breakers.opened_at(&"anthropic".into()).unwrap();
        assert_eq!(
            breakers.admit(&"anthropic".into()).unwrap_err(),
            Rejection {
                reason: SkipReason::BreakerOpen,
                retry_in: Some(secs(30)),
            }
        );
        tokio::time::advance(secs(30)).await;
        let probe = breakers.admit(&"anthropic".into()).unwrap();
        assert!(probe.is_probe());
        probe.record(CallOutcome::Success);
        assert_eq!(breakers.opened_at(&"anthropic".into()), None);
        assert!(breakers.force_open("anthropic"));
        assert!(!breakers.force_open("anthropic"));
        assert!(breakers.force_closed("anthropic"));
        assert!(breakers.reset("anthropic"));
        assert!(!breakers.reset("anthropic"));

        assert_eq!(
            breaker_events(&mut rx),
            [
                changed("closed", "open", "2 consecutive failures", Some(30_000)),
                changed("open", "half_open", "recovery elapsed", None),
                changed("half_open", "closed", "probe succeeded", None),
                changed("closed", "forced_open", "operator: trip", None),
                changed(
                    "forced_open",
                    "forced_closed",
                    "operator: force closed",
                    None
                ),
                changed("forced_closed", "closed", "operator: reset", None),
            ]
        );
        assert!(opened <= Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_dropped_unrecorded_frees_its_probe_slot() {
        let breakers = Breakers::new(consecutive_only(1), Bus::new(16));
        breakers.admit(&"p".into()).unwrap().record(failure());
        tokio::time::advance(secs(30)).await;
        let probe = breakers.admit(&"p".into()).unwrap();
        assert_eq!(
            breakers.admit(&"p".into()).unwrap_err().reason,
            SkipReason::HalfOpenBusy
        );
        drop(probe);
        assert_eq!(breakers.snapshot(&"p".into()).probes_in_flight, 0);
        let probe = breakers.admit(&"p".into()).unwrap();
        assert!(probe.is_probe());
        // An ordinary permit dropped unrecorded counts nothing.
        probe.record(CallOutcome::Success);
        drop(breakers.admit(&"p".into()).unwrap());
        assert_eq!(breakers.snapshot(&"p".into()).calls_in_window, 0);
    }

    #[test]
    fn concurrent_admits_let_exactly_the_probe_limit_through() {
        const THREADS: usize = 16;
        let config = BreakerConfig {
            half_open_probes: 3,
            // Half-open at the first admit after the trip, without waiting on a clock.
            recovery: Duration::ZERO,
            ..consecutive_only(1)
        };
        let breakers = Breakers::new(config, Bus::new(16));
        breakers.admit(&"p".into()).unwrap().record(failure());
        assert_eq!(breakers.state(&"p".into()), BreakerState::Open);

        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let breakers = breakers.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    breakers.admit(&"p".into())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let admitted: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(admitted.len(), 3);
        assert!(admitted.iter().all(|permit| permit.is_probe()));
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|rejection| rejection.reason == SkipReason::HalfOpenBusy)
        );
        assert_eq!(breakers.snapshot(&"p".into()).probes_in_flight, 3);
        drop(results);
        assert_eq!(breakers.snapshot(&"p".into()).probes_in_flight, 0);
        assert_eq!(breakers.state(&"p".into()), BreakerState::HalfOpen);
    }

    #[test]
    fn a_key_can_have_its_own_config() {
        let breakers = Breakers::new(consecutive_only(5), Bus::new(16));
        breakers.configure(&"fragile".into(), consecutive_only(1));
        breakers.admit(&"fragile".into()).unwrap().record(failure());
        breakers.admit(&"sturdy".into()).unwrap().record(failure());
        assert_eq!(breakers.state(&"fragile".into()), BreakerState::Open);
        assert_eq!(breakers.state(&"sturdy".into()), BreakerState::Closed);
        assert_eq!(breakers.snapshot(&"unseen".into()).threshold, 5);
        assert_eq!(breakers.state(&"unseen".into()), BreakerState::Closed);
    }
}
