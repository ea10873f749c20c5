//! The TOML config: providers, timeouts, pricing overrides and simulated providers.
//!
//! Every field has a default (the same values as the annotated sample `assets/breakerbox.toml`, which
//! a test keeps equal), so an empty file is a valid config. Errors name the file, the line and the
//! field, and say what to do.
//!
//! Every value is range-checked at load, so that nothing the engine computes from it can overflow
//! or wait for ever: no duration is longer than [`MAX_DURATION`], and each field that needs a
//! narrower range (time limits, retry delays, counts, rates, factors) reads its value through a
//! `deserialize_with` check, whose error toml reports at the value's line and column. Checks of
//! several values together run after deserialization and name their field by its path
//! ([`locate`]).

pub(crate) mod locate;

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

use crate::engine::breaker::BreakerConfig;
use crate::engine::classify::ClassPolicyOverride;
use crate::engine::cost::ModelPrice;
use crate::engine::failover::{HedgeTrigger, MidStreamPolicy, WhenAllOpen};
use crate::engine::retry::{BudgetConfig, RetryConfig};
use crate::provider::ErrorClass;
use crate::provider::{ApiKey, Protocol, ProviderConfig, Timeouts};
use crate::sim::{Fault, SimConfig, SimProviderSpec};

/// The annotated sample config, shipped with the program.
pub const SAMPLE: &str = include_str!("../assets/breakerbox.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The real (or any OpenAI/Anthropic-compatible) providers, in failover order.
    #[serde(default = "default_providers", deserialize_with = "non_empty")]
    pub providers: Vec<ProviderEntry>,
    /// Named chains of targets; the default chain is every provider in order.
    #[serde(default)]
    pub chains: Vec<ChainEntry>,
    /// The gateway's routes: a model name clients send → a chain. Without any, the route
    /// `default` uses the chain `default`.
    #[serde(default)]
    pub routes: Vec<RouteEntry>,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub breaker: BreakerSection,
    #[serde(default)]
    pub retry: RetrySection,
    /// Per-class overrides of the retry / failover / breaker policy.
    #[serde(default)]
    pub policy: BTreeMap<ErrorClass, ClassPolicyOverride>,
    /// Per-model price overrides, USD per million tokens, merged over `assets/pricing.toml`.
    #[serde(default)]
    pub pricing: BTreeMap<String, ModelPrice>,
    #[serde(default)]
    pub sim: SimSection,
    /// The gateway's limits on client connections (`breakerbox serve`).
    #[serde(default)]
    pub gateway: GatewaySection,
    /// Console key overrides: an action name → a key or a list of keys.
    #[serde(default)]
    pub keys: BTreeMap<String, crate::console::keys::KeyList>,
    /// Where the config came from, for messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub name: Spanned<String>,
    /// `anthropic` (Messages), `openai` (Chat Completions, and the servers compatible with it) or
    /// `openai_responses` (OpenAI's Responses API: OpenAI's key, base URL and variables).
    pub protocol: Protocol,
    pub model: String,
    /// Explicit base URL; else the value of `base_url_env`; else the protocol's public endpoint.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// The environment variable holding the key (default `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Accepts a partial assistant reply to continue from (default: yes for Anthropic, no for
    /// OpenAI's two APIs).
    #[serde(default)]
    pub accepts_prefill: Option<bool>,
    /// Context window in tokens, for failing over `context_length` errors to a larger model.
    #[serde(default, deserialize_with = "context_window")]
    pub context_window: Option<u64>,
    /// One breaker for the provider (`provider`, the default) or one per model (`model`).
    #[serde(default)]
    pub breaker: BreakerScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerScope {
    #[default]
    Provider,
    Model,
}

/// A named, ordered chain of targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    pub name: Spanned<String>,
    pub targets: Vec<Spanned<TargetEntry>>,
    #[serde(default)]
    pub mid_stream: MidStreamPolicy,
    /// `off`, a duration (`2s`) or a percentile of recent first-event latency (`p95`).
    #[serde(default)]
    pub hedge: HedgeSetting,
}

/// A gateway route: requests naming `model` go down `chain`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// The model name a client sends to pick this route.
    pub model: Spanned<String>,
    /// The chain to use (`default`: the chain named so, else every provider in order).
    #[serde(default = "default_chain_name")]
    pub chain: Spanned<String>,
    /// What a streaming client sees of a failover after text reached it.
    #[serde(default)]
    pub mode: RouteMode,
    /// Forward the client's own API key to the targets that speak the client's protocol, instead
    /// of the gateway's keys.
    #[serde(default)]
    pub passthrough: bool,
}

fn default_chain_name() -> Spanned<String> {
    Spanned::new(0..0, "default".to_string())
}

/// How a route streams to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// Forward events as they arrive. A failure after text reached the client continues on a
    /// target that accepts a prefill, else ends the client's stream with an error.
    #[default]
    Live,
    /// Hold the reply until the provider's stream completes: any failover is invisible, at the
    /// cost of first-token latency.
    Buffered,
}

impl RouteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMode::Live => "live",
            RouteMode::Buffered => "buffered",
        }
    }
}

/// A target: a provider name, or a table naming a provider and a model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TargetEntry {
    Name(String),
    Table {
        provider: String,
        #[serde(default)]
        model: Option<String>,
    },
}

impl TargetEntry {
    pub fn provider(&self) -> &str {
        match self {
            TargetEntry::Name(name) => name,
            TargetEntry::Table { provider, .. } => provider,
        }
    }
    pub fn model(&self) -> Option<&str> {
        match self {
            TargetEntry::Name(_) => None,
            TargetEntry::Table { model, .. } => model.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HedgeSetting(pub Option<HedgeTrigger>);

impl<'de> Deserialize<'de> for HedgeSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_hedge(&text)
            .map(HedgeSetting)
            .map_err(serde::de::Error::custom)
    }
}

fn parse_hedge(text: &str) -> Result<Option<HedgeTrigger>, String> {
    let t = text.trim();
    if t == "off" {
        return Ok(None);
    }
    if let Some(p) = t.strip_prefix('p') {
        let percentile: f64 = p
            .parse()
            .ok()
            .filter(|p| (1.0..=99.9).contains(p))
            .ok_or_else(|| {
                format!("invalid hedge `{text}`: a percentile is written like `p95` (1 to 99.9)")
            })?;
        return Ok(Some(HedgeTrigger::Percentile {
            percentile,
            fallback: Duration::from_secs(2),
        }));
    }
    parse_duration(t)
        .map(|d| Some(HedgeTrigger::After(d)))
        .map_err(|e| {
            format!("{e}; hedge is `off`, a duration like `2s`, or a percentile like `p95`")
        })
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
}

impl Default for BreakerSection {
    fn default() -> Self {
        let d = BreakerConfig::default();
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
        }
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

/// A duration or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDur(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptionalDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = duration_text(d)?;
        if text.trim() == "off" {
            return Ok(OptionalDur(None));
        }
        parse_duration(&text)
            .map(|d| OptionalDur(Some(d)))
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `off`")))
    }
}

impl ProviderEntry {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    fn api_key_var(&self) -> &str {
        self.api_key_env.as_deref().unwrap_or(match self.protocol {
            Protocol::Anthropic => "ANTHROPIC_API_KEY",
            Protocol::Openai | Protocol::OpenaiResponses => "OPENAI_API_KEY",
        })
    }

    fn base_url_var(&self) -> &str {
        self.base_url_env.as_deref().unwrap_or(match self.protocol {
            Protocol::Anthropic => "ANTHROPIC_BASE_URL",
            Protocol::Openai | Protocol::OpenaiResponses => "OPENAI_BASE_URL",
        })
    }

    /// Resolve URL and key from the config and the environment.
    pub fn resolve(
        &self,
        timeouts: Timeouts,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> ProviderConfig {
        let base_url = self
            .base_url
            .clone()
            .or_else(|| env(self.base_url_var()).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| {
                match self.protocol {
                    Protocol::Anthropic => "https://api.anthropic.com",
                    Protocol::Openai | Protocol::OpenaiResponses => "https://api.openai.com/v1",
                }
                .to_string()
            });
        ProviderConfig {
            api_key: ApiKey::new(env(self.api_key_var()).unwrap_or_default()),
            model: self.model.clone(),
            timeouts,
            ..ProviderConfig::new(self.name(), self.protocol, base_url.trim_end_matches('/'))
        }
    }

    /// The variable holding this provider's key, if it is not set.
    pub fn missing_key(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<&str> {
        let var = self.api_key_var();
        env(var).filter(|v| !v.is_empty()).is_none().then_some(var)
    }
}

fn default_providers() -> Vec<ProviderEntry> {
    let entry = |name: &str, protocol, model: &str| ProviderEntry {
        name: Spanned::new(0..0, name.to_string()),
        protocol,
        model: model.to_string(),
        base_url: None,
        base_url_env: None,
        api_key_env: None,
        accepts_prefill: None,
        context_window: None,
        breaker: BreakerScope::Provider,
    };
    vec![
        entry("anthropic", Protocol::Anthropic, "claude-sonnet-4-5"),
        entry("openai", Protocol::Openai, "gpt-5"),
    ]
}

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
    /// Which wire protocol the simulated provider speaks (any of the three).
    pub protocol: Protocol,
    pub model: Option<String>,
    pub first_event_latency: Option<Dur>,
    pub token_delay: Option<Dur>,
    #[serde(default, deserialize_with = "optional_fraction")]
    pub jitter: Option<f64>,
    pub use_tools: Option<bool>,
    pub fault: Option<FaultString>,
}

/// A fault in `KIND[:PARAMS]` form, checked while parsing so errors carry the line.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultString(pub Fault);

impl<'de> Deserialize<'de> for FaultString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Fault>()
            .map(FaultString)
            .map_err(serde::de::Error::custom)
    }
}

/// A duration written as `500ms`, `2s`, `1.5s`, `3m` or `1h`, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = duration_text(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// The longest duration a config, a scenario, a fault or a flag may give: a day. Every time limit
/// is added to the clock's present, and a day is far from where that could overflow; a longer wait
/// is a mistake, not a setting.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
const HOUR_MS: u64 = 60 * 60 * 1000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Parse `500ms`, `2s`, `1.5s`, `3m`, `1h` (a number and a unit; no unit is an error, to avoid
/// seconds-versus-milliseconds mistakes), up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!(
            "invalid duration `{text}`: expected a number and a unit, like `500ms`, `2s` or `1m`"
        )
    })?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => {
            return Err(format!(
                "invalid duration `{text}`: add a unit (`ms`, `s`, `m` or `h`), like `{num}s`"
            ));
        }
        other => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{other}` (use `ms`, `s`, `m` or `h`)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("invalid duration `{text}`: the longest allowed is 24h"))
}

/// The text of a duration. A bare number gets an error that says how to write one.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration with a unit, like \"500ms\", \"2s\" or \"1m\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Err(E::custom(format!(
                "invalid duration {v}: write it as a string with a unit, like \"{v}s\""
            )))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Err(E::custom(format!(
                "invalid duration {v}: write it as a string with a unit, like \"{v}s\""
            )))
        }
    }
    d.deserialize_any(Text)
}

/// A duration from `MIN` to `MAX` milliseconds.
fn duration<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Dur, D::Error> {
    let text = duration_text(d)?;
    let value = parse_duration(&text).map_err(serde::de::Error::custom)?;
    let (min, max) = (Duration::from_millis(MIN), Duration::from_millis(MAX));
    if value < min || value > max {
        return Err(serde::de::Error::custom(format!(
            "`{text}` is out of range: use a duration from {} to {}",
            limit(min),
            limit(max)
        )));
    }
    Ok(Dur(value))
}

/// A limit as people write it: `0s`, `1ms`, `1h`, `24h`.
fn limit(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// A whole number; anything else gets an error that says so.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            Err(E::custom(format!("{v} is not a whole number")))
        }
    }
    d.deserialize_any(Whole)
}

/// A whole number from `MIN` to `MAX`.
fn count<'de, D: Deserializer<'de>, const MIN: u32, const MAX: u32>(d: D) -> Result<u32, D::Error> {
    let n = whole_number(d)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (MIN..=MAX).contains(n))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is out of range: use a whole number from {MIN} to {MAX}"
            ))
        })
}

/// A number from `min` to `max` (so never NaN or infinite); `what` says what it is.
fn number<'de, D: Deserializer<'de>>(
    d: D,
    min: f64,
    max: f64,
    what: &str,
) -> Result<f64, D::Error> {
    let n = f64::deserialize(d)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} is out of range: use {what} from {min} to {max}"
        )))
    }
}

/// A share of something: from 0 to 1.
fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 0.0, 1.0, "a fraction")
}

fn optional_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    fraction(d).map(Some)
}

/// A growth factor: from 1 (fixed) to 100.
fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 1.0, 100.0, "a factor (1 = no growth)")
}

fn factor_f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    // Within 1 to 100, so the conversion is exact enough and cannot overflow.
    factor(d).map(|f| f as f32)
}

/// A budget's size or rate: from 0 to a million.
fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 0.0, 1_000_000.0, "a number")
}

fn context_window<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = whole_number(d)?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is out of range: use the model's context window in tokens (1 or more)"
            ))
        })
}

/// A list that must hold something: leaving the key out gives the defaults.
fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let list = Vec::<T>::deserialize(d)?;
    if list.is_empty() {
        return Err(serde::de::Error::custom(
            "the list is empty: declare at least one entry, or leave the key out for the defaults",
        ));
    }
    Ok(list)
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

/// A config problem, with where it is and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A check that failed after deserialization: where, and what to say (naming the field).
struct Invalid {
    span: Range<usize>,
    message: String,
}

fn invalid<T>(span: Range<usize>, message: String) -> Result<T, Invalid> {
    Err(Invalid { span, message })
}

/// `origin:line:column`, for an error at `offset` in `text`.
fn place(text: &str, origin: &str, offset: usize) -> String {
    let (line, column) = line_col(text, offset);
    format!("{origin}:{line}:{column}")
}

/// A toml error as `origin:line:column: field: message`, naming the field written where toml
/// found the problem. Scenario files read the same way.
pub fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return format!("{origin}: {message}");
    };
    match locate::field_at(text, span.start) {
        Some(field) => format!("{}: {field}: {message}", place(text, origin, span.start)),
        None => format!("{}: {message}", place(text, origin, span.start)),
    }
}

/// The highest price accepted, USD per million tokens: far above any model's, low enough that a
/// cost cannot overflow.
const MAX_PRICE: f64 = 1_000_000.0;

/// Every price of a model, with the path of its field.
fn prices(price: &ModelPrice) -> Vec<(Vec<&'static str>, f64)> {
    let mut all = vec![(vec!["input"], price.input), (vec!["output"], price.output)];
    all.extend(price.cache_write.map(|v| (vec!["cache_write"], v)));
    all.extend(price.cache_read.map(|v| (vec!["cache_read"], v)));
    if let Some(long) = &price.long_context {
        all.push((vec!["long_context", "input"], long.input));
        all.push((vec!["long_context", "output"], long.output));
        all.extend(
            long.cache_write
                .map(|v| (vec!["long_context", "cache_write"], v)),
        );
        all.extend(
            long.cache_read
                .map(|v| (vec!["long_context", "cache_read"], v)),
        );
    }
    all
}

/// A base URL the HTTP client can use.
fn check_base_url(url: &str) -> Result<(), String> {
    // Shown without the user info and query, where keys hide.
    let shown = crate::secret::url_for_display(url);
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(_) => Err(format!("`{shown}` is not an http:// or https:// URL")),
        Err(e) => Err(format!(
            "`{shown}` is not a URL ({e}): write e.g. `https://api.example.com/v1`"
        )),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Default for Config {
    fn default() -> Self {
        Config {
            providers: default_providers(),
            chains: Vec::new(),
            routes: Vec::new(),
            timeouts: TimeoutsConfig::default(),
            engine: EngineSection::default(),
            breaker: BreakerSection::default(),
            retry: RetrySection::default(),
            policy: BTreeMap::new(),
            pricing: BTreeMap::new(),
            sim: SimSection::default(),
            gateway: GatewaySection::default(),
            keys: BTreeMap::new(),
            source: None,
        }
    }
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parse and validate config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "{}\n(see assets/breakerbox.toml for every field and its default)",
                toml_error(text, origin, &e)
            ))
        })?;
        config.validate(text).map_err(|Invalid { span, message }| {
            ConfigError(format!("{}: {message}", place(text, origin, span.start)))
        })?;
        Ok(config)
    }

    /// The checks of values that deserialized, alone or together. Each failure names the field
    /// (by its [`Spanned`] span, or its path in the text) and says what to do.
    fn validate(&self, text: &str) -> Result<(), Invalid> {
        let at = |path: &[locate::Step<'_>]| locate::span_of(text, path);
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let name = p.name();
            if !valid_name(name) {
                return invalid(
                    p.name.span(),
                    format!(
                        "providers.name `{name}` is not a valid name: use letters, digits, `-` and `_`"
                    ),
                );
            }
            if !seen.insert(name) {
                return invalid(
                    p.name.span(),
                    format!(
                        "providers.name `{name}` is declared twice: give each provider its own name"
                    ),
                );
            }
            let field = |key: &'static str| at(&["providers".into(), i.into(), key.into()]);
            if p.model.trim().is_empty() {
                return invalid(
                    field("model"),
                    format!("providers.model of `{name}` is empty: name the model to ask for"),
                );
            }
            if let Some(url) = &p.base_url {
                check_base_url(url).or_else(|why| {
                    invalid(
                        field("base_url"),
                        format!("providers.base_url of `{name}`: {why}"),
                    )
                })?;
            }
            for (key, var) in [
                ("base_url_env", &p.base_url_env),
                ("api_key_env", &p.api_key_env),
            ] {
                if let Some(var) = var
                    && !valid_env_name(var)
                {
                    return invalid(
                        field(key),
                        format!(
                            "providers.{key} of `{name}`: `{var}` is not an environment variable \
                             name: use letters, digits and `_`"
                        ),
                    );
                }
            }
        }
        let known: Vec<&str> = self
            .providers
            .iter()
            .map(ProviderEntry::name)
            .chain(self.sim.providers.iter().map(|p| p.name.as_str()))
            .collect();
        let mut chain_names = std::collections::HashSet::new();
        for (i, chain) in self.chains.iter().enumerate() {
            let name = chain.name.get_ref();
            if !valid_name(name) {
                return invalid(
                    chain.name.span(),
                    format!(
                        "chains.name `{name}` is not a valid name: use letters, digits, `-` and `_`"
                    ),
                );
            }
            if !chain_names.insert(name) {
                return invalid(
                    chain.name.span(),
                    format!("chains.name `{name}` is declared twice"),
                );
            }
            if chain.targets.is_empty() {
                return invalid(
                    at(&["chains".into(), i.into(), "targets".into()]),
                    format!("chains.targets: chain `{name}` has none: list provider names"),
                );
            }
            for target in &chain.targets {
                let provider = target.get_ref().provider();
                if !known.contains(&provider) {
                    return invalid(
                        target.span(),
                        format!(
                            "chains.targets: no provider is named `{provider}` (declared: {})",
                            known.join(", ")
                        ),
                    );
                }
                if target
                    .get_ref()
                    .model()
                    .is_some_and(|m| m.trim().is_empty())
                {
                    return invalid(
                        target.span(),
                        format!(
                            "chains.targets: the model for `{provider}` is empty: name a model, \
                             or leave `model` out for the provider's own"
                        ),
                    );
                }
            }
        }
        let mut route_names = std::collections::HashSet::new();
        for route in &self.routes {
            let model = route.model.get_ref();
            if model.trim().is_empty() {
                return invalid(
                    route.model.span(),
                    "routes.model is empty: give the model name clients will send".to_string(),
                );
            }
            if !route_names.insert(model) {
                return invalid(
                    route.model.span(),
                    format!(
                        "routes.model `{model}` is declared twice: each model name picks one route"
                    ),
                );
            }
            let chain = route.chain.get_ref();
            if chain != "default" && !chain_names.contains(chain) {
                return invalid(
                    route.chain.span(),
                    format!(
                        "routes.chain: no chain is named `{chain}`, for route `{model}` (declared: {})",
                        if chain_names.is_empty() {
                            "none; declare it under [[chains]]".to_string()
                        } else {
                            let mut names: Vec<&str> =
                                chain_names.iter().map(|n| n.as_str()).collect();
                            names.sort_unstable();
                            names.join(", ")
                        }
                    ),
                );
            }
        }
        // One action at a time, so that an error points at the override that caused it.
        let mut keys = BTreeMap::new();
        for (action, list) in &self.keys {
            keys.insert(action.clone(), list.clone());
            if let Err(e) = crate::console::keys::Bindings::with_overrides(&keys) {
                return invalid(at(&["keys".into(), action.as_str().into()]), e);
            }
        }
        for (model, price) in &self.pricing {
            let here = |fields: &[&str]| {
                let mut path = vec!["pricing".into(), model.as_str().into()];
                path.extend(fields.iter().map(|&f| locate::Step::Key(f)));
                at(&path)
            };
            if model.trim().is_empty() {
                return invalid(
                    here(&[]),
                    "pricing: a model name is empty: name the model (or its prefix) the prices are for"
                        .to_string(),
                );
            }
            for (fields, value) in prices(price) {
                if !(0.0..=MAX_PRICE).contains(&value) {
                    return invalid(
                        here(&fields),
                        format!(
                            "pricing.{}.{}: {value} is out of range: use USD per million tokens, \
                             from 0 to {MAX_PRICE}",
                            locate::quoted(model),
                            fields.join(".")
                        ),
                    );
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.sim.providers.iter().enumerate() {
            let field =
                |key: &'static str| at(&["sim".into(), "providers".into(), i.into(), key.into()]);
            if !valid_name(&p.name) || p.name == "_sim" {
                return invalid(
                    field("name"),
                    format!(
                        "sim.providers.name `{}` is not a valid name: use letters, digits, `-` and `_` (and not `_sim`)",
                        p.name
                    ),
                );
            }
            if !seen.insert(&p.name) {
                return invalid(
                    field("name"),
                    format!("sim.providers.name `{}` is declared twice", p.name),
                );
            }
            if p.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
                return invalid(
                    field("model"),
                    format!(
                        "sim.providers.model of `{}` is empty: name a model, or leave it out for the default",
                        p.name
                    ),
                );
            }
        }
        Ok(())
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.to_timeouts()
    }

    /// The simulated providers this config declares.
    pub fn sim_config(&self) -> Result<SimConfig, ConfigError> {
        let providers = self
            .sim
            .providers
            .iter()
            .map(|e| {
                let base = SimProviderSpec::new(&e.name, e.protocol);
                SimProviderSpec {
                    model: e.model.clone().unwrap_or(base.model),
                    first_event_latency: e
                        .first_event_latency
                        .map_or(base.first_event_latency, |d| d.0),
                    token_delay: e.token_delay.map_or(base.token_delay, |d| d.0),
                    jitter: e.jitter.unwrap_or(base.jitter),
                    use_tools: e.use_tools.unwrap_or(base.use_tools),
                    fault: e.fault.clone().map_or(base.fault, |f| f.0),
                    name: base.name,
                    protocol: base.protocol,
                }
            })
            .collect();
        Ok(SimConfig {
            providers,
            seed: self.sim.seed,
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        let c = Config::parse("", "empty.toml").unwrap();
        assert_eq!(c.providers.len(), 2);
        assert_eq!(c.providers[0].name(), "anthropic");
        assert_eq!(c.providers[1].model, "gpt-5");
        assert_eq!(c.timeouts(), Timeouts::default());
        assert_eq!(c.sim_config().unwrap(), SimConfig::default());
    }

    #[test]
    fn shipped_sample_equals_the_defaults() {
        let sample = Config::parse(SAMPLE, "assets/breakerbox.toml").unwrap();
        let defaults = Config::default();
        assert_eq!(sample.timeouts, defaults.timeouts);
        assert_eq!(sample.sim, defaults.sim);
        assert_eq!(sample.engine, defaults.engine);
        assert_eq!(sample.breaker, defaults.breaker);
        assert_eq!(sample.retry, defaults.retry);
        assert_eq!(sample.gateway, defaults.gateway);
        assert!(sample.chains.is_empty() && sample.policy.is_empty() && sample.routes.is_empty());
        let names = |c: &Config| {
            c.providers
                .iter()
                .map(|p| (p.name().to_string(), p.protocol, p.model.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&sample), names(&defaults));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = "[timeouts]\nconnect = \"5\"\n";
        let err = Config::parse(text, "my.toml").unwrap_err().to_string();
        assert!(err.starts_with("my.toml:2:"), "{err}");
        assert!(err.contains("add a unit"), "{err}");

        let text = "[[providers]]\nname = \"a\"\nprotocol = \"gemini\"\nmodel = \"m\"\n";
        let err = Config::parse(text, "my.toml").unwrap_err().to_string();
        assert!(err.starts_with("my.toml:3:"), "{err}");
        assert!(err.contains("anthropic"), "{err}");

        let text = "[timeouts]\nconect = \"5s\"\n";
        let err = Config::parse(text, "my.toml").unwrap_err().to_string();
        assert!(
            err.contains("my.toml:2:") && err.contains("conect"),
            "{err}"
        );

        let text = "[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\n\n[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\n";
        let err = Config::parse(text, "my.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("my.toml:7:") && err.contains("twice"),
            "{err}"
        );
    }

    #[test]
    fn gateway_limits_are_range_checked_where_they_are_written() {
        for (text, says) in [
            ("[gateway]\nheader_timeout = \"0s\"\n", "from 1ms to 1h"),
            ("[gateway]\nidle_timeout = \"2h\"\n", "from 1ms to 1h"),
            ("[gateway]\nmax_connections = 0\n", "from 1 to 1000000"),
            ("[gateway]\nmax_connections = -5\n", "from 1 to 1000000"),
        ] {
            let err = Config::parse(text, "my.toml").unwrap_err().to_string();
            assert!(err.starts_with("my.toml:2:"), "{err}");
            assert!(err.contains(says), "{err}");
        }
        let c = Config::parse("[gateway]\nbody_timeout = \"5s\"\n", "t").unwrap();
        assert_eq!(c.gateway.body_timeout.0, Duration::from_secs(5));
        assert_eq!(c.gateway.max_connections, 512);
    }

    #[test]
    fn base_url_and_key_resolution() {
        let text = "[[providers]]\nname = \"groq\"\nprotocol = \"openai\"\nmodel = \"llama\"\nbase_url = \"https://api.groq.com/openai/v1/\"\napi_key_env = \"GROQ_API_KEY\"\n\n[[providers]]\nname = \"openai\"\nprotocol = \"openai\"\nmodel = \"gpt-5\"\n";
        let c = Config::parse(text, "t").unwrap();
        let env = |k: &str| match k {
            "GROQ_API_KEY" => Some("gsk-1".to_string()),
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:9/v1".to_string()),
            _ => None,
        };
        let groq = c.providers[0].resolve(Timeouts::default(), &env);
        assert_eq!(groq.base_url, "https://api.groq.com/openai/v1");
        assert_eq!(groq.api_key.expose(), "gsk-1");
        let openai = c.providers[1].resolve(Timeouts::default(), &env);
        assert_eq!(openai.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.providers[1].missing_key(&env), Some("OPENAI_API_KEY"));
        assert_eq!(c.providers[0].missing_key(&env), None);
    }

    #[test]
    fn openai_responses_targets_use_openais_key_and_base_url() {
        let text = "[[providers]]\nname = \"r\"\nprotocol = \"openai_responses\"\nmodel = \"gpt-5\"\n\n\
                    [[sim.providers]]\nname = \"sr\"\nprotocol = \"openai_responses\"\n";
        let c = Config::parse(text, "t").unwrap();
        let none = |_: &str| None;
        let r = c.providers[0].resolve(Timeouts::default(), &none);
        assert_eq!(r.protocol, Protocol::OpenaiResponses);
        assert_eq!(r.base_url, "https://api.openai.com/v1");
        assert_eq!(c.providers[0].missing_key(&none), Some("OPENAI_API_KEY"));
        let env = |k: &str| (k == "OPENAI_BASE_URL").then(|| "http://127.0.0.1:9/v1".to_string());
        let r = c.providers[0].resolve(Timeouts::default(), &env);
        assert_eq!(r.base_url, "http://127.0.0.1:9/v1");
        let sim = c.sim_config().unwrap();
        assert_eq!(sim.providers[0].protocol, Protocol::OpenaiResponses);
        assert_eq!(sim.providers[0].model, "gpt-5");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").unwrap_err().contains("add a unit"));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn routes_name_a_model_and_a_declared_chain() {
        let ok = Config::parse(
            "[[chains]]\nname = \"fast\"\ntargets = [\"openai\"]\n\n[[routes]]\nmodel = \"default\"\n\n[[routes]]\nmodel = \"quick\"\nchain = \"fast\"\nmode = \"buffered\"\npassthrough = true\n",
            "gw.toml",
        )
        .unwrap();
        assert_eq!(ok.routes.len(), 2);
        assert_eq!(ok.routes[0].chain.get_ref(), "default");
        assert_eq!(ok.routes[0].mode, RouteMode::Live);
        assert_eq!(ok.routes[1].mode, RouteMode::Buffered);
        assert!(ok.routes[1].passthrough);

        let err = Config::parse("[[routes]]\nmodel = \"x\"\nchain = \"nope\"\n", "gw.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("gw.toml:3:9: routes.chain: no chain is named `nope`"),
            "{err}"
        );
        let err = Config::parse(
            "[[routes]]\nmodel = \"x\"\n\n[[routes]]\nmodel = \"x\"\n",
            "gw.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("gw.toml:5:9: routes.model `x` is declared twice"),
            "{err}"
        );
        let err = Config::parse("[[routes]]\nmodel = \"x\"\nmode = \"fast\"\n", "gw.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("gw.toml:3:8"), "{err}");
    }
}
