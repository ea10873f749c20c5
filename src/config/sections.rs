//! The sections of single settings: `[timeouts]`, `[engine]`, `[breaker]`, `[retry]`,
//! `[rate_limits]`, `[sim]` and `[gateway]`, each with its defaults and its conversion to what the engine, the simulator or the
//! gateway takes.

use serde::Deserialize;
use std::time::Duration;

use super::values::{
    DAY_MS, HOUR_MS, amount, count, duration, factor, factor_f32, fraction, fraction_or_off,
    non_empty, optional_duration, optional_fraction,
};
use crate::engine::breaker::BreakerConfig;
use crate::engine::failover::WhenAllOpen;
use crate::engine::probe::ProbeConfig;
use crate::engine::retry::{BudgetConfig, RetryConfig};
use crate::engine::throttle::ThrottleConfig;
use crate::parse::{Dur, OptionalDur};
use crate::provider::{Protocol, Timeouts};
use crate::sim::SimConfig;
use crate::sim::fault::FaultString;

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    #[serde(default = "d5s", deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub connect: Dur,
    #[serde(default = "d10s", deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub headers: Dur,
    #[serde(default = "d10s", deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub first_event: Dur,
    #[serde(default = "d10s", deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub idle: Dur,
    #[serde(default = "d300s", deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub total: Dur,
}

fn d5s() -> Dur {
    Dur(Duration::from_secs(5))
}
fn d10s() -> Dur {
    Dur(Duration::from_secs(10))
}
fn d300s() -> Dur {
    Dur(Duration::from_secs(300))
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect: d5s(),
            headers: d10s(),
            first_event: d10s(),
            idle: d10s(),
            total: d300s(),
        }
    }
}

impl TimeoutsConfig {
    pub fn to_timeouts(self) -> Timeouts {
        Timeouts {
            connect: self.connect.0,
            headers: self.headers.0,
            first_event: self.first_event.0,
            idle: self.idle.0,
            total: self.total.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    #[serde(default)]
    pub when_all_open: WhenAllOpen,
    #[serde(default)]
    pub retry_silent_timeouts: bool,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            when_all_open: WhenAllOpen::Fail,
            retry_silent_timeouts: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerSection {
    #[serde(deserialize_with = "count::<_, 0, 1_000_000>")]
    pub consecutive_failures: u32,
    #[serde(deserialize_with = "fraction")]
    pub failure_rate: f64,
    #[serde(deserialize_with = "duration::<_, 1, DAY_MS>")]
    pub window: Dur,
    #[serde(deserialize_with = "count::<_, 0, 1_000_000>")]
    pub min_calls: u32,
    pub recovery: Dur,
    #[serde(deserialize_with = "factor")]
    pub recovery_growth: f64,
    pub recovery_max: Dur,
    #[serde(deserialize_with = "count::<_, 1, 1_000>")]
    pub half_open_probes: u32,
    /// `off`, or a retry-after this long or longer opens the breaker at once.
    pub open_on_retry_after: OptionalDur,
    /// `off` (the default), or a first event this late makes a call slow.
    #[serde(deserialize_with = "optional_duration::<_, 1, HOUR_MS>")]
    pub slow_call: OptionalDur,
    /// The share of slow calls in the window (at least `min_calls`) that opens the breaker.
    #[serde(deserialize_with = "fraction")]
    pub slow_call_rate: f64,
    /// `off`, or while a breaker is open its provider is probed in the background this long after
    /// it opened, then at growing intervals up to `probe_interval_max`.
    #[serde(deserialize_with = "optional_duration::<_, 100, HOUR_MS>")]
    pub probe_interval: OptionalDur,
    #[serde(deserialize_with = "duration::<_, 100, HOUR_MS>")]
    pub probe_interval_max: Dur,
}

impl Default for BreakerSection {
    fn default() -> Self {
        let d = BreakerConfig::default();
        let p = ProbeConfig::default();
        BreakerSection {
            consecutive_failures: d.consecutive_failures,
            failure_rate: d.failure_rate,
            window: Dur(d.window),
            min_calls: d.min_calls,
            recovery: Dur(d.recovery),
            recovery_growth: d.recovery_growth,
            recovery_max: Dur(d.recovery_max),
            half_open_probes: d.half_open_probes,
            open_on_retry_after: OptionalDur(d.open_on_retry_after),
            slow_call: OptionalDur(d.slow_call),
            slow_call_rate: d.slow_call_rate,
            probe_interval: OptionalDur(Some(p.interval)),
            probe_interval_max: Dur(p.max_interval),
        }
    }
}

impl BreakerSection {
    pub fn to_config(&self) -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: self.consecutive_failures,
            failure_rate: self.failure_rate,
            window: self.window.0,
            min_calls: self.min_calls,
            recovery: self.recovery.0,
            recovery_growth: self.recovery_growth,
            recovery_max: self.recovery_max.0,
            half_open_probes: self.half_open_probes,
            open_on_retry_after: self.open_on_retry_after.0,
            slow_call: self.slow_call.0,
            slow_call_rate: self.slow_call_rate,
        }
    }

    /// The recovery probes, unless they are off.
    pub fn probes(&self) -> Option<ProbeConfig> {
        self.probe_interval.0.map(|interval| ProbeConfig {
            interval,
            max_interval: self.probe_interval_max.0.max(interval),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    #[serde(deserialize_with = "count::<_, 0, 100>")]
    pub max_retries: u32,
    // Chains may be long: the hostile-upstream test runs one past a hundred targets.
    #[serde(deserialize_with = "count::<_, 1, 10_000>")]
    pub max_attempts: u32,
    #[serde(deserialize_with = "duration::<_, 0, HOUR_MS>")]
    pub min_delay: Dur,
    #[serde(deserialize_with = "duration::<_, 0, HOUR_MS>")]
    pub max_delay: Dur,
    #[serde(deserialize_with = "factor_f32")]
    pub factor: f32,
    pub jitter: bool,
    #[serde(deserialize_with = "duration::<_, 0, HOUR_MS>")]
    pub retry_after_cap: Dur,
    #[serde(deserialize_with = "amount")]
    pub budget_capacity: f64,
    #[serde(deserialize_with = "amount")]
    pub budget_refill_per_sec: f64,
}

impl Default for RetrySection {
    fn default() -> Self {
        let d = RetryConfig::default();
        RetrySection {
            max_retries: d.max_retries,
            max_attempts: d.max_attempts,
            min_delay: Dur(d.min_delay),
            max_delay: Dur(d.max_delay),
            factor: d.factor,
            jitter: d.jitter,
            retry_after_cap: Dur(d.retry_after_cap),
            budget_capacity: d.budget.capacity,
            budget_refill_per_sec: d.budget.refill_per_sec,
        }
    }
}

impl RetrySection {
    pub fn to_config(&self) -> RetryConfig {
        RetryConfig {
            max_retries: self.max_retries,
            max_attempts: self.max_attempts,
            min_delay: self.min_delay.0,
            max_delay: self.max_delay.0,
            factor: self.factor,
            jitter: self.jitter,
            retry_after_cap: self.retry_after_cap.0,
            budget: BudgetConfig {
                capacity: self.budget_capacity,
                refill_per_sec: self.budget_refill_per_sec,
            },
        }
    }
}

/// `[cluster]`: the fleet of gateways this one shares its breakers with, through Redis.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `redis://[user:password@]host[:port][/db]`; absent: no fleet (or `--redis`). It may hold a
    /// password: only its `host:port` is ever shown.
    pub redis: Option<toml::Spanned<String>>,
    /// The fleet's name, its Redis keys' prefix: gateways of one fleet share it.
    pub name: Option<String>,
    /// This gateway's name in the fleet (default: the host's name and the process id).
    pub instance: Option<String>,
}

impl std::fmt::Debug for ClusterSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSection")
            .field(
                "redis",
                &self
                    .redis
                    .as_ref()
                    .map(|r| crate::cluster::address(r.get_ref()).unwrap_or_default()),
            )
            .field("name", &self.name)
            .field("instance", &self.instance)
            .finish()
    }
}

impl ClusterSection {
    /// The fleet settings, with `redis` (`--redis`) over the config's; `None`: no fleet.
    pub fn to_config(&self, redis: Option<&str>) -> Option<crate::cluster::ClusterConfig> {
        let url = redis
            .map(str::to_string)
            .or_else(|| self.redis.as_ref().map(|r| r.get_ref().clone()))?;
        Some(crate::cluster::ClusterConfig {
            redis: url,
            name: self
                .name
                .clone()
                .unwrap_or_else(|| "breakerbox".to_string()),
            instance: self
                .instance
                .clone()
                .unwrap_or_else(crate::cluster::default_instance),
        })
    }
}

/// `[rate_limits]`: when a provider whose responses say it is close to a rate limit is passed
/// over for the next target until the limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    /// Throttled when what remains of any dimension (requests, tokens) is at most this share of
    /// its limit, rounded down; `"off"` never steers (the limits are still shown).
    #[serde(deserialize_with = "fraction_or_off")]
    pub steer_below: Option<f64>,
}

impl Default for RateLimitsSection {
    fn default() -> Self {
        RateLimitsSection {
            steer_below: ThrottleConfig::default().steer_below,
        }
    }
}

impl RateLimitsSection {
    pub fn to_config(self) -> ThrottleConfig {
        ThrottleConfig {
            steer_below: self.steer_below,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSection {
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_sim_providers", deserialize_with = "non_empty")]
    pub providers: Vec<SimEntry>,
}

impl Default for SimSection {
    fn default() -> Self {
        SimSection {
            seed: 0,
            providers: default_sim_providers(),
        }
    }
}

fn default_sim_providers() -> Vec<SimEntry> {
    SimConfig::default()
        .providers
        .into_iter()
        .map(|p| SimEntry {
            name: p.name,
            protocol: p.protocol,
            model: Some(p.model),
            first_event_latency: Some(Dur(p.first_event_latency)),
            token_delay: Some(Dur(p.token_delay)),
            jitter: Some(p.jitter),
            use_tools: Some(p.use_tools),
            fault: None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimEntry {
    pub name: String,
    /// Which wire protocol the simulated provider speaks (any of them).
    pub protocol: Protocol,
    pub model: Option<String>,
    pub first_event_latency: Option<Dur>,
    pub token_delay: Option<Dur>,
    #[serde(default, deserialize_with = "optional_fraction")]
    pub jitter: Option<f64>,
    pub use_tools: Option<bool>,
    pub fault: Option<FaultString>,
}

/// `[gateway]`: what a client connection may take before it has a request in progress. None of
/// these cuts a reply that is streaming. Each value is range-checked where it is read, so a bad
/// one is reported at its line and column.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// From accepting a connection to the end of its first request's headers.
    #[serde(deserialize_with = "duration::<_, 1, HOUR_MS>")]
    pub header_timeout: Dur,
    /// Reading a request body, from the end of its headers.
    #[serde(deserialize_with = "duration::<_, 1, HOUR_MS>")]
    pub body_timeout: Dur,
    /// A kept-alive connection between requests: from the end of a response to the end of the
    /// next request's headers.
    #[serde(deserialize_with = "duration::<_, 1, HOUR_MS>")]
    pub idle_timeout: Dur,
    /// Client connections open at once; past it a new one gets a 503 and is closed.
    #[serde(deserialize_with = "count::<_, 1, 1_000_000>")]
    pub max_connections: u32,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            header_timeout: Dur(Duration::from_secs(10)),
            body_timeout: Dur(Duration::from_secs(60)),
            idle_timeout: Dur(Duration::from_secs(60)),
            // Half of the common 1,024 file descriptors: each open request also holds an
            // upstream connection.
            max_connections: 512,
        }
    }
}
