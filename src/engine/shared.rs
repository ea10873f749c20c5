//! What all engines of one process share ([`Shared`]): the bus, the breakers, the retry budget and
//! prices, and what the engines learn as they go: a ring of recent first-event latencies per provider
//! (for percentile hedging and the `lowest_latency` pools), the attempts in flight per provider (for
//! the `least_in_flight` pools), the running totals per provider ([`ProviderTotals`]) and the
//! providers' rate limits ([`Throttle`]).

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::engine::attempt::AttemptReport;
use crate::engine::breaker::Breakers;
use crate::engine::cost::Pricing;
use crate::engine::probe::{ProbeConfig, ProbeTargets};
use crate::engine::retry::RetryBudget;
use crate::engine::throttle::{Throttle, ThrottleConfig};
use crate::event::Bus;
use crate::event::facts::Spend;

/// What all engines of one process share: the bus, the breakers, the retry budget, prices, recent
/// first-event latencies and the running totals per provider.
#[derive(Clone)]
pub struct Shared {
    pub bus: Bus,
    pub breakers: Breakers,
    pub budget: RetryBudget,
    pub pricing: Pricing,
    /// What each breaker's recovery probes ask, as the engines registered it.
    pub probe_targets: ProbeTargets,
    /// What the providers' responses say is left of their rate limits, and who is throttled
    /// (`[rate_limits]`; the defaults unless set).
    pub throttle: Throttle,
    latencies: Arc<Mutex<HashMap<String, VecDeque<u64>>>>,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
    totals: Arc<Mutex<BTreeMap<String, ProviderTotals>>>,
    next_request: Arc<AtomicU64>,
}

/// Everything spent at one provider so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderTotals {
    pub attempts: u64,
    pub failures: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
    /// The part of `cost_usd` spent on attempts that failed or were cancelled.
    pub failed_cost_usd: f64,
    /// Attempts that used a model without a price: `cost_usd` leaves them out (a lower bound).
    pub unpriced_attempts: u64,
    /// Of those, the ones that failed or were cancelled.
    pub failed_unpriced_attempts: u64,
}

impl ProviderTotals {
    /// What it cost, unpriced attempts said apart (never shown as $0).
    pub fn cost(&self) -> Spend {
        Spend {
            usd: self.cost_usd,
            unpriced: self.unpriced_attempts,
        }
    }

    /// What its failed and cancelled attempts cost.
    pub fn failed_cost(&self) -> Spend {
        Spend {
            usd: self.failed_cost_usd,
            unpriced: self.failed_unpriced_attempts,
        }
    }
}

/// Recent first-event latencies kept per provider, for percentile hedging.
const LATENCY_SAMPLES: usize = 200;
/// Samples needed before a percentile is trusted.
const MIN_LATENCY_SAMPLES: usize = 20;
/// The latest samples whose median is a provider's recent latency ([`Shared::recent_latency`]).
const RECENT_SAMPLES: usize = 20;

/// One attempt in flight on a provider, counted while it lives ([`Shared::busy`]).
pub(super) struct Busy {
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
    provider: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.provider) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Shared {
    pub fn new(bus: Bus, breakers: Breakers, budget: RetryBudget, pricing: Pricing) -> Self {
        Shared {
            throttle: Throttle::new(ThrottleConfig::default(), bus.clone()),
            bus,
            breakers,
            budget,
            pricing,
            probe_targets: ProbeTargets::default(),
            latencies: Arc::default(),
            in_flight: Arc::default(),
            totals: Arc::default(),
            next_request: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Probe the providers of open breakers in the background, from now on (needs a runtime).
    pub fn start_probing(&self, config: ProbeConfig) {
        crate::engine::probe::start(
            &self.breakers,
            self.probe_targets.clone(),
            self.pricing.clone(),
            config,
        );
    }

    pub(super) fn next_request_id(&self) -> String {
        format!("r{}", self.next_request.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Running totals per provider, attempts of every engine of this process included.
    pub fn totals(&self) -> BTreeMap<String, ProviderTotals> {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn note_attempt(&self, report: &AttemptReport) {
        let mut map = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let t = map.entry(report.provider.clone()).or_default();
        t.attempts += 1;
        t.input_tokens += report.usage.input_tokens;
        t.output_tokens += report.usage.output_tokens;
        t.cache_read_tokens += report.usage.cache_read_tokens;
        t.cache_write_tokens += report.usage.cache_write_tokens;
        t.cost_usd += report.cost_usd;
        t.unpriced_attempts += u64::from(report.unpriced);
        if report.result.is_err() {
            t.failures += 1;
            t.failed_cost_usd += report.cost_usd;
            t.failed_unpriced_attempts += u64::from(report.unpriced);
        }
    }

    pub(super) fn note_latency(&self, provider: &str, ms: u64) {
        let mut map = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.entry(provider.to_string()).or_default();
        if ring.len() == LATENCY_SAMPLES {
            ring.pop_front();
        }
        ring.push_back(ms);
    }

    /// Count an attempt in flight on `provider` until the returned guard is dropped.
    pub(super) fn busy(&self, provider: &str) -> Busy {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(provider.to_string()).or_default() += 1;
        Busy {
            in_flight: Arc::clone(&self.in_flight),
            provider: provider.to_string(),
        }
    }

    /// Attempts in flight on `provider` now, by every engine of this process.
    pub fn in_flight(&self, provider: &str) -> u32 {
        let map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.get(provider).copied().unwrap_or(0)
    }

    /// The median of `provider`'s latest first-event latencies (up to [`RECENT_SAMPLES`] of
    /// them); `None` before its first.
    pub fn recent_latency(&self, provider: &str) -> Option<Duration> {
        let map = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.get(provider).filter(|r| !r.is_empty())?;
        let mut recent: Vec<u64> = ring.iter().rev().take(RECENT_SAMPLES).copied().collect();
        recent.sort_unstable();
        recent
            .get(recent.len() / 2)
            .map(|&ms| Duration::from_millis(ms))
    }

    pub(super) fn latency_percentile(&self, provider: &str, percentile: f64) -> Option<Duration> {
        let map = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.get(provider)?;
        if ring.len() < MIN_LATENCY_SAMPLES {
            return None;
        }
        let mut sorted: Vec<u64> = ring.iter().copied().collect();
        sorted.sort_unstable();
        let rank = ((percentile / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted
            .get(rank.min(sorted.len() - 1))
            .map(|&ms| Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::testkit::*;
    use crate::provider::{ErrorClass, Phase};

    #[tokio::test(start_paused = true)]
    async fn totals_per_provider_count_every_attempt() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                usage(100, 0),
                text("x"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["one", "two"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        ask(&e).await;
        let totals = e.shared().totals();
        let (ta, tb) = (&totals["a"], &totals["b"]);
        assert_eq!((ta.attempts, ta.failures, ta.input_tokens), (1, 1, 100));
        assert!(ta.cost_usd > 0.0 && ta.failed_cost_usd == ta.cost_usd);
        assert_eq!((tb.attempts, tb.failures, tb.output_tokens), (1, 0, 2));
        assert_eq!(tb.failed_cost_usd, 0.0);
    }
}
