//! The TOML config: providers, timeouts, pricing overrides and simulated providers.
//!
//! Every field has a default (the same values as the annotated sample `assets/breakerbox.toml`, which
//! a test keeps equal), so an empty file is a valid config. Errors name the file, the line and the
//! field, and say what to do.

use serde::Deserialize;
use std::collections::BTreeMap;
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
    #[serde(default = "default_providers")]
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
    /// Accepts a partial assistant reply to continue from (default: yes for Anthropic, no for OpenAI).
    #[serde(default)]
    pub accepts_prefill: Option<bool>,
    /// Context window in tokens, for failing over `context_length` errors to a larger model.
    #[serde(default)]
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
    pub consecutive_failures: u32,
    pub failure_rate: f64,
    pub window: Dur,
    pub min_calls: u32,
    pub recovery: Dur,
    pub recovery_growth: f64,
    pub recovery_max: Dur,
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
    pub max_retries: u32,
    pub max_attempts: u32,
    pub min_delay: Dur,
    pub max_delay: Dur,
    pub factor: f32,
    pub jitter: bool,
    pub retry_after_cap: Dur,
    pub budget_capacity: f64,
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
        let text = String::deserialize(d)?;
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
            Protocol::Openai => "OPENAI_API_KEY",
        })
    }

    fn base_url_var(&self) -> &str {
        self.base_url_env.as_deref().unwrap_or(match self.protocol {
            Protocol::Anthropic => "ANTHROPIC_BASE_URL",
            Protocol::Openai => "OPENAI_BASE_URL",
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
                    Protocol::Openai => "https://api.openai.com/v1",
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
    #[serde(default = "d5s")]
    pub connect: Dur,
    #[serde(default = "d10s")]
    pub headers: Dur,
    #[serde(default = "d10s")]
    pub first_event: Dur,
    #[serde(default = "d10s")]
    pub idle: Dur,
    #[serde(default = "d300s")]
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
    #[serde(default = "default_sim_providers")]
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
    pub protocol: Protocol,
    pub model: Option<String>,
    pub first_event_latency: Option<Dur>,
    pub token_delay: Option<Dur>,
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

/// A duration written as `500ms`, `2s`, `1.5s`, `3m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// Parse `500ms`, `2s`, `1.5s`, `3m`, `1h` (a number and a unit; no unit is an error, to avoid
/// seconds-versus-milliseconds mistakes).
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
        .map_err(|_| format!("invalid duration `{text}`: out of range"))
}

/// `[gateway]`: what a client connection may take before it has a request in progress. None of
/// these cuts a reply that is streaming. Each value is range-checked where it is read, so a bad
/// one is reported at its line and column.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// From accepting a connection to the end of its first request's headers.
    #[serde(deserialize_with = "connection_limit")]
    pub header_timeout: Dur,
    /// Reading a request body, from the end of its headers.
    #[serde(deserialize_with = "connection_limit")]
    pub body_timeout: Dur,
    /// A kept-alive connection between requests: from the end of a response to the end of the
    /// next request's headers.
    #[serde(deserialize_with = "connection_limit")]
    pub idle_timeout: Dur,
    /// Client connections open at once; past it a new one gets a 503 and is closed.
    #[serde(deserialize_with = "connection_count")]
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

/// A duration from 1 ms to 1 hour.
fn connection_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let Dur(duration) = Dur::deserialize(d)?;
    if duration < Duration::from_millis(1) || duration > Duration::from_secs(3600) {
        return Err(serde::de::Error::custom(format!(
            "{duration:?} is out of range: use a duration from 1ms to 1h"
        )));
    }
    Ok(Dur(duration))
}

/// A connection count from 1 to 1,000,000.
fn connection_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = i64::deserialize(d)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is out of range: use a number of connections from 1 to 1000000"
            ))
        })
}

/// A config problem, with where it is and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

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
            let place = e
                .span()
                .map(|span| {
                    let (line, col) = line_col(text, span.start);
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            ConfigError(format!(
                "{origin}{place}: {}\n(see assets/breakerbox.toml for every field and its default)",
                e.message()
            ))
        })?;
        config.validate(text, origin)?;
        Ok(config)
    }

    fn validate(&self, text: &str, origin: &str) -> Result<(), ConfigError> {
        let at = |span: std::ops::Range<usize>| {
            let (line, col) = line_col(text, span.start);
            format!("{origin}:{line}:{col}")
        };
        if self.providers.is_empty() {
            return Err(ConfigError(format!(
                "{origin}: `providers` is empty: declare at least one [[providers]] entry"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.providers {
            let name = p.name();
            if !valid_name(name) {
                return Err(ConfigError(format!(
                    "{}: providers.name `{name}` is not a valid name: use letters, digits, `-` and `_`",
                    at(p.name.span())
                )));
            }
            if !seen.insert(name) {
                return Err(ConfigError(format!(
                    "{}: providers.name `{name}` is declared twice: give each provider its own name",
                    at(p.name.span())
                )));
            }
        }
        let known: Vec<&str> = self
            .providers
            .iter()
            .map(ProviderEntry::name)
            .chain(self.sim.providers.iter().map(|p| p.name.as_str()))
            .collect();
        let mut chain_names = std::collections::HashSet::new();
        for chain in &self.chains {
            if !chain_names.insert(chain.name.get_ref()) {
                return Err(ConfigError(format!(
                    "{}: chains.name `{}` is declared twice",
                    at(chain.name.span()),
                    chain.name.get_ref()
                )));
            }
            if chain.targets.is_empty() {
                return Err(ConfigError(format!(
                    "{}: chain `{}` has no targets: list provider names in `targets`",
                    at(chain.name.span()),
                    chain.name.get_ref()
                )));
            }
            for target in &chain.targets {
                let name = target.get_ref().provider();
                if !known.contains(&name) {
                    return Err(ConfigError(format!(
                        "{}: chains.targets: no provider is named `{name}` (declared: {})",
                        at(target.span()),
                        known.join(", ")
                    )));
                }
            }
        }
        let mut route_names = std::collections::HashSet::new();
        for route in &self.routes {
            let model = route.model.get_ref();
            if model.trim().is_empty() {
                return Err(ConfigError(format!(
                    "{}: routes.model is empty: give the model name clients will send",
                    at(route.model.span())
                )));
            }
            if !route_names.insert(model) {
                return Err(ConfigError(format!(
                    "{}: routes.model `{model}` is declared twice: each model name picks one route",
                    at(route.model.span())
                )));
            }
            let chain = route.chain.get_ref();
            if chain != "default" && !chain_names.contains(chain) {
                return Err(ConfigError(format!(
                    "{}: route `{model}`: no chain is named `{chain}` (declared: {})",
                    at(route.chain.span()),
                    if chain_names.is_empty() {
                        "none; declare it under [[chains]]".to_string()
                    } else {
                        let mut names: Vec<&str> = chain_names.iter().map(|n| n.as_str()).collect();
                        names.sort_unstable();
                        names.join(", ")
                    }
                )));
            }
        }
        if let Err(e) = crate::console::keys::Bindings::with_overrides(&self.keys) {
            return Err(ConfigError(format!("{origin}: {e}")));
        }
        let b = &self.breaker;
        let checks = [
            (
                !(0.0..=1.0).contains(&b.failure_rate),
                "breaker.failure_rate must be a fraction from 0 to 1",
            ),
            (
                b.half_open_probes == 0,
                "breaker.half_open_probes must be at least 1",
            ),
            (
                b.recovery_growth < 1.0,
                "breaker.recovery_growth must be 1 or more (1 = fixed)",
            ),
            (
                self.retry.max_attempts == 0,
                "retry.max_attempts must be at least 1",
            ),
            (self.retry.factor < 1.0, "retry.factor must be 1 or more"),
        ];
        if let Some((_, message)) = checks.iter().find(|(bad, _)| *bad) {
            return Err(ConfigError(format!("{origin}: {message}")));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.sim.providers {
            if !valid_name(&p.name) || p.name == "_sim" {
                return Err(ConfigError(format!(
                    "{origin}: sim.providers.name `{}` is not a valid name: use letters, digits, `-` and `_` (and not `_sim`)",
                    p.name
                )));
            }
            if !seen.insert(&p.name) {
                return Err(ConfigError(format!(
                    "{origin}: sim.providers.name `{}` is declared twice",
                    p.name
                )));
            }
            if let Some(j) = p.jitter
                && !(0.0..=1.0).contains(&j)
            {
                return Err(ConfigError(format!(
                    "{origin}: sim.providers `{}`: jitter {j} is out of range: use a fraction from 0 to 1",
                    p.name
                )));
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
    let before = &text[..offset.min(text.len())];
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
            err.starts_with("gw.toml:3:9: route `x`: no chain is named `nope`"),
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
