//! The retry policy as values, in tower's style: a per-target backoff schedule, a retry budget shared
//! by all requests, and [`decide`], which puts them together with the provider's retry-after.
//!
//! Time comes from tokio's clock, so tests run under `tokio::time::pause()`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries of one target before failing over to the next.
    pub max_retries: u32,
    /// Attempts of one request across all its targets (enforced by the failover engine).
    pub max_attempts: u32,
    /// The first backoff delay.
    pub min_delay: Duration,
    /// No backoff delay is longer, jitter included.
    pub max_delay: Duration,
    /// Each delay is the previous one times this.
    pub factor: f32,
    /// Spread retries out so that requests failed together do not retry together.
    pub jitter: bool,
    /// A longer retry-after means failing over instead of waiting.
    pub retry_after_cap: Duration,
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 2,
            max_attempts: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            factor: 2.0,
            jitter: true,
            retry_after_cap: Duration::from_secs(30),
            budget: BudgetConfig::default(),
        }
    }
}

/// The retry budget: a token bucket, so that an outage does not multiply the load by the retries.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    /// Tokens when full: the burst of retries allowed at once.
    pub capacity: f64,
    /// Tokens added per second, continuously.
    pub refill_per_sec: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            capacity: 20.0,
            refill_per_sec: 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry the same target after this delay.
    RetryAfter(Duration),
    /// Stop retrying this target: `retry_after_too_long`, `retries_exhausted` or `budget_exhausted`.
    GiveUp(&'static str),
}

/// No backoff delay is longer than this, whatever the config says (it allows an hour).
const LONGEST_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The backoff schedule of one target: exponential, capped, optionally jittered, and as long as the
/// target's retries.
#[derive(Debug)]
pub struct Backoff {
    schedule: <ExponentialBuilder as BackoffBuilder>::Backoff,
    max_delay: Duration,
}

impl Backoff {
    pub fn new(config: &RetryConfig) -> Self {
        // The config allows delays up to an hour and factors from 1; bounded here too, for any
        // other caller: backon multiplies a delay by its jitter unchecked, and a factor below 1
        // (or NaN) would shrink the delays instead of growing them.
        let max_delay = config.max_delay.min(LONGEST_DELAY);
        let factor = if config.factor >= 1.0 && config.factor.is_finite() {
            config.factor
        } else {
            1.0
        };
        // backon caps the delay before its jitter, which then adds a random part in [0, delay): a
        // jittered delay lies in [d, 2d). Capping at half the maximum keeps the spread at the cap and
        // keeps every delay within `max_delay`.
        let cap = if config.jitter {
            max_delay / 2
        } else {
            max_delay
        };
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(config.min_delay.min(max_delay))
            .with_max_delay(cap)
            .with_factor(factor)
            .with_max_times(config.max_retries as usize);
        if config.jitter {
            builder = builder.with_jitter();
        }
        Backoff {
            schedule: builder.build(),
            max_delay,
        }
    }

    /// The delay before the next retry, or `None` when the target's retries are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        // backon does not cap its first delay: a `min_delay` above the cap would pass through.
        self.schedule.next().map(|delay| delay.min(self.max_delay))
    }
}

/// Whether to retry the same target, and after how long, given what the provider said and how many
/// retries it has had. A token of the budget is spent only on a retry that will happen: the checks
/// that give up without retrying come first.
pub fn decide(
    config: &RetryConfig,
    backoff: &mut Backoff,
    retry_after: Option<Duration>,
    retries_so_far: u32,
    budget: &RetryBudget,
) -> RetryDecision {
    if retries_so_far >= config.max_retries {
        return RetryDecision::GiveUp("retries_exhausted");
    }
    if retry_after.is_some_and(|after| after > config.retry_after_cap) {
        return RetryDecision::GiveUp("retry_after_too_long");
    }
    let Some(delay) = backoff.next_delay() else {
        return RetryDecision::GiveUp("retries_exhausted");
    };
    if !budget.try_take() {
        return RetryDecision::GiveUp("budget_exhausted");
    }
    // Retrying before the provider's retry-after would only be refused again.
    RetryDecision::RetryAfter(retry_after.map_or(delay, |after| after.max(delay)))
}

/// The token bucket shared by all requests of an engine: each retry takes a token, tokens refill
/// continuously up to the capacity. Cloning shares the bucket.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RetryBudget {
    /// A full bucket.
    pub fn new(config: &BudgetConfig) -> Self {
        RetryBudget {
            config: config.clone(),
            bucket: Arc::new(Mutex::new(Bucket {
                tokens: config.capacity,
                refilled_at: Instant::now(),
            })),
        }
    }

    /// Take a token for one retry, if there is one.
    pub fn try_take(&self) -> bool {
        self.with_refilled(|bucket| {
            let taken = bucket.tokens >= 1.0;
            if taken {
                bucket.tokens -= 1.0;
            }
            taken
        })
    }

    /// Tokens in the bucket now (fractional while refilling).
    pub fn available(&self) -> f64 {
        self.with_refilled(|bucket| bucket.tokens)
    }

    fn with_refilled<T>(&self, f: impl FnOnce(&mut Bucket) -> T) -> T {
        // The bucket is a number and a time, consistent after any panic: a poisoned lock is still good.
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.config.refill_per_sec)
            .min(self.config.capacity);
        bucket.refilled_at = now;
        f(&mut bucket)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn steady(max_retries: u32) -> RetryConfig {
        RetryConfig {
            max_retries,
            jitter: false,
            ..RetryConfig::default()
        }
    }

    fn schedule(config: &RetryConfig) -> Vec<Duration> {
        let mut backoff = Backoff::new(config);
        std::iter::from_fn(|| backoff.next_delay()).collect()
    }

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap_for_the_target_s_retries() {
        assert_eq!(
            schedule(&steady(7)),
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(8000),
                ms(8000)
            ]
        );
        assert_eq!(schedule(&RetryConfig::default()).len(), 2);
        assert!(schedule(&steady(0)).is_empty());
    }

    #[test]
    fn jittered_delays_spread_over_d_to_2d_and_stay_within_the_maximum() {
        let config = RetryConfig {
            max_retries: 6,
            ..RetryConfig::default()
        };
        // The cap halves under jitter: bases 0.5, 1, 2, 4, 4, 4 s.
        let bases = [500, 1000, 2000, 4000, 4000, 4000].map(ms);
        let mut firsts = Vec::new();
        for _ in 0..200 {
            let delays = schedule(&config);
            assert_eq!(delays.len(), bases.len());
            for (delay, base) in delays.iter().zip(bases) {
                assert!(*delay >= base && *delay < base * 2, "{delay:?} vs {base:?}");
                assert!(*delay <= config.max_delay);
            }
            firsts.push(delays[0]);
        }
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() > 100, "jitter should spread delays");
    }

    #[test]
    fn a_min_delay_above_the_maximum_is_capped() {
        let config = RetryConfig {
            min_delay: ms(6000),
            ..RetryConfig::default()
        };
        for _ in 0..50 {
            assert!(schedule(&config).iter().all(|d| *d <= ms(8000)));
        }
    }

    #[test]
    fn extreme_configs_give_bounded_delays_without_overflow() {
        let huge = Duration::MAX;
        for (min_delay, max_delay, factor) in [
            (huge, huge, 2.0),
            (ms(500), huge, f32::MAX),
            (ms(500), huge, f32::INFINITY),
            (ms(500), ms(8000), f32::NAN),
            (ms(500), ms(8000), 0.0),
            (ms(500), ms(8000), -2.0),
        ] {
            for jitter in [false, true] {
                let config = RetryConfig {
                    max_retries: 100,
                    min_delay,
                    max_delay,
                    factor,
                    jitter,
                    ..RetryConfig::default()
                };
                let delays = schedule(&config);
                assert_eq!(delays.len(), 100);
                assert!(
                    delays.iter().all(|d| *d <= max_delay.min(LONGEST_DELAY)),
                    "{config:?}"
                );
                // A factor that cannot grow the delays keeps them steady, never shrinking.
                if (factor.is_nan() || factor < 1.0) && !jitter {
                    assert!(delays.iter().all(|d| *d == min_delay), "{config:?}");
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_within_the_cap() {
        let config = steady(5);
        let budget = RetryBudget::new(&config.budget);
        let mut backoff = Backoff::new(&config);
        let mut ask = |after: Option<u64>, so_far| {
            decide(&config, &mut backoff, after.map(ms), so_far, &budget)
        };
        assert_eq!(ask(Some(3000), 0), RetryDecision::RetryAfter(ms(3000)));
        // The backoff wins when it is longer.
        assert_eq!(ask(Some(100), 1), RetryDecision::RetryAfter(ms(1000)));
        assert_eq!(ask(None, 2), RetryDecision::RetryAfter(ms(2000)));
        assert_eq!(ask(Some(30_000), 3), RetryDecision::RetryAfter(ms(30_000)));
        assert_eq!(
            ask(Some(30_001), 4),
            RetryDecision::GiveUp("retry_after_too_long")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_drains_and_refills_at_its_rate_up_to_capacity() {
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 3.0,
            refill_per_sec: 2.0,
        });
        let shared = budget.clone();
        assert_eq!(budget.available(), 3.0);
        assert!(budget.try_take() && shared.try_take() && budget.try_take());
        assert!(!shared.try_take());
        tokio::time::advance(ms(250)).await;
        assert_eq!(budget.available(), 0.5);
        assert!(!budget.try_take());
        tokio::time::advance(ms(250)).await;
        assert!(budget.try_take());
        assert_eq!(budget.available(), 0.0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(shared.available(), 3.0);
    }

    #[tokio::test(start_paused = true)]
    async fn decide_checks_retries_then_retry_after_then_budget() {
        let config = RetryConfig {
            budget: BudgetConfig {
                capacity: 1.0,
                refill_per_sec: 0.0,
            },
            ..steady(2)
        };
        let budget = RetryBudget::new(&config.budget);
        let mut backoff = Backoff::new(&config);
        let too_long = Some(Duration::from_secs(31));

        // Exhausted retries come first, whatever else holds.
        assert_eq!(
            decide(&config, &mut backoff, too_long, 2, &budget),
            RetryDecision::GiveUp("retries_exhausted")
        );
        // A retry-after past the cap gives up without spending a token.
        assert_eq!(
            decide(&config, &mut backoff, too_long, 0, &budget),
            RetryDecision::GiveUp("retry_after_too_long")
        );
        assert_eq!(budget.available(), 1.0);
        assert_eq!(
            decide(&config, &mut backoff, None, 0, &budget),
            RetryDecision::RetryAfter(ms(500))
        );
        assert_eq!(
            decide(&config, &mut backoff, None, 1, &budget),
            RetryDecision::GiveUp("budget_exhausted")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_used_up_means_retries_exhausted() {
        let config = steady(1);
        let budget = RetryBudget::new(&config.budget);
        let mut backoff = Backoff::new(&config);
        assert!(backoff.next_delay().is_some());
        assert_eq!(
            decide(&config, &mut backoff, None, 0, &budget),
            RetryDecision::GiveUp("retries_exhausted")
        );
    }
}
