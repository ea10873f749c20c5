//! Active recovery probes: while a breaker is open, the engine asks its provider, in the background,
//! for one output token on the target's model, on a jittered interval that backs off during a long
//! outage up to a cap. The first answer turns the breaker half-open at once, where real traffic
//! confirms it; a recovered provider carries traffic again within one interval instead of after
//! the whole (grown) recovery period. Probes never wait less than a retry-after the provider gave.
//!
//! One probe at a time per breaker, never more than one per interval, whatever the traffic: an
//! outage of any length costs one minimal request per interval. Probes are events
//! (`probe_started`, `probe_finished`, with their tokens and cost), never user requests: they go to
//! no caller and count toward no request.
//!
//! The prober holds the breakers weakly: it ends with the engines it probes for.

use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::engine::breaker::{BreakerKey, BreakerState, WeakBreakers};
use crate::engine::cost::Pricing;
use crate::event::{Bus, EventKind};
use crate::provider::{
    ErrorClass, Message, Phase, Provider, ProviderError, Request, StreamEvent, Usage,
};
use crate::rng;

/// How often an open breaker's provider is probed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeConfig {
    /// The first probe goes this long after the breaker opened; each failed one makes the next
    /// wait half as long again, up to `max_interval`.
    pub interval: Duration,
    pub max_interval: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(8),
        }
    }
}

/// Each failed probe makes the next interval this much longer.
const GROWTH: f64 = 1.5;
/// A probe's wait varies by up to this share either way, so that many gateways do not probe in step.
const JITTER: f64 = 0.2;
/// A probe that has not answered in this long failed: a silent provider is not recovered.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a retry-after holds probes off (the breaker's own cap).
const MAX_HOLD: Duration = Duration::from_secs(24 * 60 * 60);

/// What a breaker's probes ask: its target's provider and model. Registered by the engines.
#[derive(Clone)]
struct ProbeTarget {
    provider: Arc<dyn Provider>,
    model: String,
}

/// The targets the engines have registered, per breaker: what to probe when one opens. Cloning
/// shares them.
#[derive(Clone, Default)]
pub struct ProbeTargets(Arc<Mutex<HashMap<BreakerKey, ProbeTarget>>>);

impl ProbeTargets {
    /// Probe `key`'s breaker with `model` on `provider` (the first registration of a key stands).
    pub fn register(&self, key: &BreakerKey, provider: Arc<dyn Provider>, model: &str) {
        let model = if model.is_empty() {
            provider.default_model().to_string()
        } else {
            model.to_string()
        };
        self.lock()
            .entry(key.clone())
            .or_insert(ProbeTarget { provider, model });
    }

    fn get(&self, key: &BreakerKey) -> Option<ProbeTarget> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BreakerKey, ProbeTarget>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Start probing every breaker of `breakers` that opens from now on. Needs a tokio runtime.
pub fn start(
    breakers: &crate::engine::breaker::Breakers,
    targets: ProbeTargets,
    pricing: Pricing,
    config: ProbeConfig,
) {
    let openings = breakers.watch_openings();
    let prober = Prober {
        breakers: breakers.downgrade(),
        targets,
        pricing,
        config,
    };
    tokio::spawn(prober.run(openings));
}

#[derive(Clone)]
struct Prober {
    breakers: WeakBreakers,
    targets: ProbeTargets,
    pricing: Pricing,
    config: ProbeConfig,
}

impl Prober {
    /// One probing loop per open breaker, started when it opens; ends when the breakers are gone.
    async fn run(self, mut openings: mpsc::UnboundedReceiver<BreakerKey>) {
        let mut loops: JoinSet<BreakerKey> = JoinSet::new();
        let mut probing: HashSet<BreakerKey> = HashSet::new();
        loop {
            tokio::select! {
                opened = openings.recv() => match opened {
                    Some(key) => self.probe(key, &mut probing, &mut loops),
                    None => return,
                },
                Some(ended) = loops.join_next(), if !loops.is_empty() => {
                    let Ok(key) = ended else { continue };
                    probing.remove(&key);
                    // It may have opened again as its loop was ending.
                    if self.is_open(&key) {
                        self.probe(key, &mut probing, &mut loops);
                    }
                }
            }
        }
    }

    fn probe(
        &self,
        key: BreakerKey,
        probing: &mut HashSet<BreakerKey>,
        loops: &mut JoinSet<BreakerKey>,
    ) {
        let Some(target) = self.targets.get(&key) else {
            return;
        };
        if probing.insert(key.clone()) {
            loops.spawn(self.clone().while_open(key, target));
        }
    }

    fn is_open(&self, key: &BreakerKey) -> bool {
        self.breakers
            .upgrade()
            .is_some_and(|b| b.state(key) == BreakerState::Open)
    }

    /// Probe `key`'s provider until its breaker is no longer open (or the breakers are gone).
    async fn while_open(self, key: BreakerKey, target: ProbeTarget) -> BreakerKey {
        let seed = {
            let mut h = DefaultHasher::new();
            key.hash(&mut h);
            h.finish()
        };
        let mut interval = self.config.interval;
        let mut held: Option<Instant> = None;
        for n in 1u32.. {
            let Some(hold) = self.hold(&key) else {
                break;
            };
            let wait = jittered(interval, seed, n);
            let at = [Some(Instant::now() + wait), hold, held]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or_else(Instant::now);
            tokio::time::sleep_until(at).await;
            let Some(bus) = self.bus_if_open(&key) else {
                break;
            };
            let next_in = next_interval(interval, &self.config);
            let next_wait = jittered(next_in, seed, n.saturating_add(1));
            // In a fleet, one gateway probes for all: the others wait for its verdict.
            if !self.may_probe(&key, wait).await {
                continue;
            }
            let answered = self.send(&bus, &key, &target, n, next_wait).await;
            match answered {
                Ok(latency_ms) => {
                    if let Some(breakers) = self.breakers.upgrade() {
                        breakers.probe_answered(
                            &key,
                            format!("recovery probe {n} answered in {latency_ms} ms"),
                        );
                    }
                    break;
                }
                Err(retry_after) => {
                    interval = next_in;
                    held = retry_after.map(|after| Instant::now() + after.min(MAX_HOLD));
                }
            }
        }
        key
    }

    /// Whether this gateway sends the probe of `key` now (always, outside a fleet). `hold`: how
    /// long the claim keeps the others' probes back.
    async fn may_probe(&self, key: &BreakerKey, hold: Duration) -> bool {
        let gate = self.breakers.upgrade().and_then(|b| b.probe_gate());
        match gate {
            Some(gate) => gate.claim(key, hold).await,
            None => true,
        }
    }

    /// While `key`'s breaker is open: `Some`, with the end of the provider's retry-after if any.
    fn hold(&self, key: &BreakerKey) -> Option<Option<Instant>> {
        let breakers = self.breakers.upgrade()?;
        (breakers.state(key) == BreakerState::Open).then(|| breakers.hold_until(key))
    }

    fn bus_if_open(&self, key: &BreakerKey) -> Option<Bus> {
        let breakers = self.breakers.upgrade()?;
        (breakers.state(key) == BreakerState::Open).then(|| breakers.bus().clone())
    }

    /// One probe, published; `Ok` with its latency when it answered, else the retry-after it got.
    /// `next_wait` is the wait before the next probe should this one fail (a retry-after, the
    /// probe's or the breaker's, can make it longer).
    async fn send(
        &self,
        bus: &Bus,
        key: &BreakerKey,
        target: &ProbeTarget,
        n: u32,
        next_wait: Duration,
    ) -> Result<u64, Option<Duration>> {
        bus.publish(EventKind::ProbeStarted {
            provider: key.provider.clone(),
            model: key.model.clone(),
            target_model: target.model.clone(),
            probe: n,
        });
        let started = Instant::now();
        let reply = ask_once(target).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let cost = self.pricing.cost(&reply.model, &reply.usage);
        let unpriced = cost.is_none() && reply.usage != Usage::default();
        let error = reply.result.as_ref().err();
        let next_probe_ms = error.map(|e| {
            let now = Instant::now();
            let at = [
                Some(now + next_wait),
                e.retry_after.map(|after| now + after.min(MAX_HOLD)),
                self.hold(key).flatten(),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            u64::try_from(at.duration_since(now).as_millis()).unwrap_or(u64::MAX)
        });
        bus.publish(EventKind::ProbeFinished {
            provider: key.provider.clone(),
            model: key.model.clone(),
            probe: n,
            ok: error.is_none(),
            latency_ms,
            class: error.map(|e| e.class),
            status: error.and_then(|e| e.status),
            message: error.map(|e| e.message.clone()),
            input_tokens: reply.usage.input_tokens,
            output_tokens: reply.usage.output_tokens,
            cost_usd: cost.unwrap_or(0.0),
            unpriced,
            next_probe_ms,
        });
        match reply.result {
            Ok(()) => Ok(latency_ms),
            Err(err) => Err(err.retry_after),
        }
    }
}

/// What a probe got back.
struct ProbeReply {
    model: String,
    usage: crate::provider::Usage,
    result: Result<(), ProviderError>,
}

/// The smallest request the target answers: one output token on its model. Only a complete reply
/// within [`PROBE_TIMEOUT`] counts.
async fn ask_once(target: &ProbeTarget) -> ProbeReply {
    let request = Request {
        model: target.model.clone(),
        messages: Arc::new(vec![Message::user("ping")]),
        max_tokens: 1,
        ..Request::default()
    };
    let mut reply = ProbeReply {
        model: target.model.clone(),
        usage: Default::default(),
        result: Err(ProviderError::new(
            target.provider.name(),
            ErrorClass::StreamCut,
            Phase::FirstEvent,
            "the probe's stream ended without a reply",
        )),
    };
    let mut stream = target.provider.stream(request);
    let read = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(StreamEvent::MessageStart { model, .. }) if !model.is_empty() => {
                    reply.model = model;
                }
                Ok(StreamEvent::Usage(usage)) => reply.usage = usage,
                Ok(StreamEvent::Done { .. }) => {
                    reply.result = Ok(());
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    reply.result = Err(err);
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(PROBE_TIMEOUT, read).await.is_err() {
        reply.result = Err(ProviderError::new(
            target.provider.name(),
            ErrorClass::Timeout,
            Phase::FirstEvent,
            format!(
                "the probe got no complete reply in {} s",
                PROBE_TIMEOUT.as_secs()
            ),
        ));
    }
    reply
}

/// The interval after a failed probe: longer by [`GROWTH`], up to the cap.
fn next_interval(interval: Duration, config: &ProbeConfig) -> Duration {
    let cap = config.max_interval.max(config.interval);
    Duration::try_from_secs_f64(interval.as_secs_f64() * GROWTH)
        .unwrap_or(cap)
        .min(cap)
}

/// `interval` varied by up to [`JITTER`] either way, the same for the same seed and probe number.
fn jittered(interval: Duration, seed: u64, n: u32) -> Duration {
    // splitmix64 of the seed and the probe number: a spread, not a secret.
    let unit = rng::unit(rng::mix(seed ^ u64::from(n).wrapping_mul(rng::GAMMA)));
    interval.mul_f64(1.0 + JITTER * (2.0 * unit - 1.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::engine::breaker::{BreakerConfig, Breakers, CallOutcome};
    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::failover::{FailoverEngine, Shared};
    use crate::engine::retry::{BudgetConfig, RetryBudget};
    use crate::engine::testkit::*;
    use crate::event::Event;
    use crate::provider::ProviderStream;
    use tokio::sync::broadcast;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn shared(breaker: BreakerConfig) -> Shared {
        let bus = Bus::new(1 << 14);
        Shared::new(
            bus.clone(),
            Breakers::new(breaker, bus),
            RetryBudget::new(&BudgetConfig {
                capacity: 1000.0,
                refill_per_sec: 100.0,
            }),
            Pricing::built_in(),
        )
    }

    fn one_strike() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 1,
            open_on_retry_after: None,
            ..BreakerConfig::default()
        }
    }

    /// `a` as the one target of an engine (which registers what to probe), with probes started
    /// or not, and its breaker tripped by one failure with `retry_after`.
    fn tripped(
        a: &Arc<Scripted>,
        probing: bool,
        retry_after: Option<Duration>,
    ) -> (Shared, FailoverEngine) {
        let shared = shared(one_strike());
        let e = FailoverEngine::new(
            "chain",
            vec![target(a, false)],
            settings(MidStreamPolicy::Restart),
            shared.clone(),
        );
        if probing {
            shared.start_probing(ProbeConfig::default());
        }
        shared
            .breakers
            .admit(&BreakerKey::provider("a"))
            .unwrap()
            .record(CallOutcome::Failure { retry_after });
        (shared, e)
    }

    /// The probe events and breaker changes seen until `until` (virtual time), with when.
    async fn watch(
        rx: &mut broadcast::Receiver<Arc<Event>>,
        until: Instant,
    ) -> Vec<(Duration, EventKind)> {
        let t0 = Instant::now();
        let mut seen = Vec::new();
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
            while let Ok(event) = rx.try_recv() {
                if matches!(
                    event.kind,
                    EventKind::ProbeStarted { .. }
                        | EventKind::ProbeFinished { .. }
                        | EventKind::BreakerChanged { .. }
                ) {
                    seen.push((t0.elapsed(), event.kind.clone()));
                }
            }
        }
        seen
    }

    fn started_at(seen: &[(Duration, EventKind)]) -> Vec<Duration> {
        seen.iter()
            .filter(|(_, k)| matches!(k, EventKind::ProbeStarted { .. }))
            .map(|(at, _)| *at)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_is_probed_on_a_growing_interval_until_an_answer_turns_it_half_open() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::Overloaded, Phase::Headers)],
                vec![fail("a", ErrorClass::Overloaded, Phase::Headers)],
                vec![fail("a", ErrorClass::Overloaded, Phase::Headers)],
                reply(&["pong"]),
            ],
        );
        let key = BreakerKey::provider("a");
        let (shared, _e) = tripped(&a, true, None);
        // Subscribed after the trip: the probes are seconds away.
        let mut rx = shared.bus.subscribe();
        let seen = watch(&mut rx, Instant::now() + secs(29)).await;

        // 2 s, then half as long again each time (±20% jitter): about 2, 5, 9.5 and 16 s.
        let starts = started_at(&seen);
        assert_eq!(starts.len(), 4, "{seen:#?}");
        let gaps: Vec<f64> = std::iter::once(starts[0])
            .chain(starts.windows(2).map(|w| w[1] - w[0]))
            .map(|d| d.as_secs_f64())
            .collect();
        for (gap, base) in gaps.iter().zip([2.0, 3.0, 4.5, 6.75]) {
            assert!(
                (base * 0.79..=base * 1.21).contains(gap),
                "gap {gap} s, expected {base} s ± 20%: {gaps:?}"
            );
        }
        // Each is the smallest request: one output token on the target's model.
        let probe = a.last_request();
        assert_eq!(
            (probe.max_tokens, probe.model.as_str()),
            (1, "claude-sonnet-5-5")
        );
        // The fourth was answered: the breaker went half-open long before its 30 s recovery.
        let (at, last) = seen.last().unwrap();
        let EventKind::BreakerChanged {
            from, to, reason, ..
        } = last
        else {
            panic!("{last:?}");
        };
        assert_eq!((*from, *to), (BreakerState::Open, BreakerState::HalfOpen));
        assert_eq!(reason, "recovery probe 4 answered in 0 ms");
        assert!(*at < secs(20), "{at:?}");
        let finished: Vec<bool> = seen
            .iter()
            .filter_map(|(_, k)| match k {
                EventKind::ProbeFinished { ok, .. } => Some(*ok),
                _ => None,
            })
            .collect();
        assert_eq!(finished, [false, false, false, true]);

        // Half-open: real traffic confirms, and no probe goes any more.
        let seen = watch(&mut rx, Instant::now() + secs(60)).await;
        assert!(started_at(&seen).is_empty(), "{seen:?}");
        assert_eq!(shared.breakers.state(&key), BreakerState::HalfOpen);
        assert_eq!(a.calls(), 4);
    }

    /// A probe answered by a model the price table does not know costs something unknown, not $0.
    #[tokio::test(start_paused = true)]
    async fn a_probe_of_a_model_without_a_price_is_unpriced() {
        let unpriced_reply = vec![
            Play::Emit(Ok(StreamEvent::MessageStart {
                id: "m".into(),
                model: "llama-3.3-70b".into(),
            })),
            text("pong"),
            usage(10, 1),
            done(),
        ];
        let a = Scripted::new("a", vec![unpriced_reply]);
        let shared = shared(one_strike());
        let _e = FailoverEngine::new(
            "chain",
            vec![target(&a, false)],
            settings(MidStreamPolicy::Restart),
            shared.clone(),
        );
        shared.start_probing(ProbeConfig::default());
        let mut rx = shared.bus.subscribe();
        shared
            .breakers
            .admit(&BreakerKey::provider("a"))
            .unwrap()
            .record(CallOutcome::Failure { retry_after: None });
        let seen = watch(&mut rx, Instant::now() + secs(5)).await;
        let finished: Vec<(bool, f64, bool)> = seen
            .iter()
            .filter_map(|(_, k)| match k {
                EventKind::ProbeFinished {
                    ok,
                    cost_usd,
                    unpriced,
                    ..
                } => Some((*ok, *cost_usd, *unpriced)),
                _ => None,
            })
            .collect();
        assert_eq!(finished, [(true, 0.0, true)], "{seen:#?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_probe_goes_before_the_providers_retry_after_nor_while_the_operator_holds_it() {
        let a = Scripted::new("a", vec![reply(&["pong"]); 3]);
        let (shared, _e) = tripped(&a, true, Some(secs(12)));
        let mut rx = shared.bus.subscribe();
        let seen = watch(&mut rx, Instant::now() + secs(20)).await;
        let starts = started_at(&seen);
        assert_eq!(starts.len(), 1, "{seen:?}");
        assert!(
            starts[0] >= secs(12),
            "probed at {:?}, before the retry-after",
            starts[0]
        );

        // Tripped by the operator: never probed.
        shared.breakers.force_open("a");
        let seen = watch(&mut rx, Instant::now() + secs(60)).await;
        assert!(started_at(&seen).is_empty(), "{seen:?}");
        assert_eq!(a.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_are_off_unless_started() {
        let a = Scripted::new("a", vec![reply(&["pong"])]);
        let key = BreakerKey::provider("a");
        let (shared, _e) = tripped(&a, false, None);
        tokio::time::sleep(secs(29)).await;
        assert_eq!(a.calls(), 0);
        assert_eq!(shared.breakers.state(&key), BreakerState::Open);
    }

    /// Down until `until` (overloaded), healthy after: time, not a script, decides.
    struct Outage {
        name: &'static str,
        until: Instant,
        calls: Mutex<Vec<(Instant, u32)>>,
    }

    impl Provider for Outage {
        fn name(&self) -> &str {
            self.name
        }
        fn default_model(&self) -> &str {
            "claude-sonnet-5-5"
        }
        fn stream(&self, request: Request) -> ProviderStream {
            let now = Instant::now();
            self.calls.lock().unwrap().push((now, request.max_tokens));
            let plays = if now < self.until {
                vec![fail(self.name, ErrorClass::Overloaded, Phase::Headers)]
            } else {
                reply(&["from ", self.name])
            };
            let items: Vec<_> = plays
                .into_iter()
                .filter_map(|p| match p {
                    Play::Emit(item) => Some(item),
                    Play::Wait(_) => None,
                })
                .collect();
            Box::pin(futures::stream::iter(items))
        }
    }

    /// The measurement: a primary down for 60 s, then healthy, a request every 4 s. With
    /// the default settings (and probes), the primary answers again within 10 s of recovering,
    /// and the outage costs at most one probe per interval.
    #[tokio::test(start_paused = true)]
    async fn a_recovered_primary_carries_traffic_again_within_seconds() {
        let t0 = Instant::now();
        let primary = Arc::new(Outage {
            name: "primary",
            until: t0 + secs(60),
            calls: Mutex::default(),
        });
        let fallback = Scripted::new("fallback", vec![reply(&["from ", "fallback"]); 30]);
        let shared = shared(BreakerConfig::default());
        let p: Arc<dyn Provider> = primary.clone();
        let e = FailoverEngine::new(
            "chain",
            vec![
                crate::engine::chain::Target::new(p),
                target(&fallback, false),
            ],
            crate::engine::chain::EngineSettings::default(),
            shared.clone(),
        );
        shared.start_probing(ProbeConfig::default());
        let mut answered_by_primary_at = None;
        for i in 0..20u64 {
            tokio::time::sleep_until(t0 + secs(4 * i)).await;
            let seen = ask(&e).await;
            if seen.text == "from primary" && answered_by_primary_at.is_none() && i > 0 {
                answered_by_primary_at = Some(Instant::now() - t0);
            }
        }
        let back = answered_by_primary_at.expect("the primary never answered again");
        assert!(
            back >= secs(60) && back <= secs(70),
            "back on the primary at {back:?}, recovered at 60 s"
        );
        let calls = primary.calls.lock().unwrap();
        let probes: Vec<Duration> = calls
            .iter()
            .filter(|(_, max_tokens)| *max_tokens == 1)
            .map(|(at, _)| *at - t0)
            .collect();
        // At most one per interval: over the 60 s outage the interval grows to 8 s (±20%).
        assert!(!probes.is_empty() && probes.len() <= 13, "{probes:?}");
        for w in probes.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(1_500), "{probes:?}");
        }
    }
}
