//! The TOML config: providers, timeouts, pricing overrides and simulated providers.
//!
//! Every field has a default (the same values as the annotated sample `assets/breakerbox.toml`, which
//! a test keeps equal), so an empty file is a valid config. Errors name the file, the line and the
//! field, and say what to do ([`ConfigError`]).
//!
//! Every value is range-checked at load, so that nothing the engine computes from it can overflow
//! or wait for ever: no duration is longer than [`MAX_DURATION`], and each field that needs a
//! narrower range (time limits, retry delays, counts, rates, factors) reads its value through a
//! `deserialize_with` check (`values.rs`), whose error toml reports at the value's line and
//! column. Checks of several values together run after deserialization (`validate.rs`) and name
//! their field by its path ([`crate::parse::locate`]).
//!
//! Files: this one (the whole config and how it is read), `providers.rs` (providers, chains,
//! routes), `sections.rs` (the sections of single settings), `values.rs`, `validate.rs`.

mod azure;
mod fleet;
mod providers;
mod sections;
mod validate;
mod values;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::classify::ClassPolicyOverride;
use crate::engine::cost::ModelPrice;
use crate::keys::KeyList;
use crate::parse::toml_error;
pub use crate::parse::{ConfigError, Dur, MAX_DURATION, OptionalDur, parse_duration};
use crate::provider::{ErrorClass, Timeouts};
use crate::sim::{SimConfig, SimProviderSpec};
pub use fleet::{FleetGateway, FleetGatewayTable, FleetSection};
use providers::default_providers;
pub use providers::{
    BreakerScope, ChainEntry, HedgeSetting, MAX_WEIGHT, MemberEntry, PoolEntry, ProviderEntry,
    RouteEntry, RouteMode, TargetEntry,
};
pub use sections::{
    BreakerSection, ClusterSection, EngineSection, GatewaySection, RateLimitsSection, RetrySection,
    SimEntry, SimSection, TimeoutsConfig,
};
use validate::Invalid;
use values::non_empty;

/// The annotated sample config, shipped with the program.
pub const SAMPLE: &str = include_str!("../../assets/breakerbox.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The real (or any OpenAI/Anthropic-compatible) providers, in failover order.
    #[serde(default = "default_providers", deserialize_with = "non_empty")]
    pub providers: Vec<ProviderEntry>,
    /// Pools of equivalent providers, each a chain target by its name.
    #[serde(default)]
    pub pools: Vec<PoolEntry>,
    /// Named chains of targets; the default chain is every provider in order (a pool's members
    /// as their pool, where the first of them stands).
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
    /// When a provider close to a rate limit is passed over (`[rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
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
    /// The fleet this gateway shares its breakers with (`[cluster] redis`).
    #[serde(default)]
    pub cluster: ClusterSection,
    /// Console key overrides: an action name → a key or a list of keys.
    #[serde(default)]
    pub keys: BTreeMap<String, KeyList>,
    /// The gateways `breakerbox attach` watches when given no URL.
    #[serde(default)]
    pub fleet: FleetSection,
    /// Where the config came from, for messages.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            providers: default_providers(),
            pools: Vec::new(),
            chains: Vec::new(),
            routes: Vec::new(),
            timeouts: TimeoutsConfig::default(),
            engine: EngineSection::default(),
            breaker: BreakerSection::default(),
            retry: RetrySection::default(),
            rate_limits: RateLimitsSection::default(),
            policy: BTreeMap::new(),
            pricing: BTreeMap::new(),
            sim: SimSection::default(),
            gateway: GatewaySection::default(),
            cluster: ClusterSection::default(),
            keys: BTreeMap::new(),
            fleet: FleetSection::default(),
            source: None,
        }
    }
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!(
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
            let mut error = toml_error(text, origin, &e);
            error
                .message
                .push_str("\n(see assets/breakerbox.toml for every field and its default)");
            error
        })?;
        config.validate(text).map_err(|Invalid { span, message }| {
            ConfigError::at(text, origin, span.start, message)
        })?;
        Ok(config)
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts.to_timeouts()
    }

    /// The pool of this name, if one is declared.
    pub fn pool(&self, name: &str) -> Option<&PoolEntry> {
        self.pools.iter().find(|p| p.name() == name)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::Protocol;
    use std::time::Duration;

    #[test]
    fn empty_config_is_the_defaults() {
        let c = Config::parse("", "empty.toml").unwrap();
        assert_eq!(c.providers.len(), 2);
        assert_eq!(c.providers[0].name(), "anthropic");
        assert_eq!(c.providers[0].model, "claude-sonnet-5-5");
        assert_eq!(c.providers[1].model, "gpt-6.2-sol");
        assert_eq!(c.timeouts(), Timeouts::default());
        assert_eq!(c.sim_config().unwrap(), SimConfig::default());
    }

    /// Changing a default model without pricing it would show its cost as unknown to everyone.
    #[test]
    fn every_default_model_has_a_price() {
        let pricing = crate::engine::cost::Pricing::built_in();
        let c = Config::parse("", "empty.toml").unwrap();
        let sim = c.sim_config().unwrap();
        let models = c
            .providers
            .iter()
            .map(|p| p.model.as_str())
            .chain(sim.providers.iter().map(|p| p.model.as_str()));
        for model in models {
            assert!(pricing.price(model).is_some(), "{model} has no price");
        }
        // The shipped sample too (its providers are the defaults: another test keeps them so).
        let sample = include_str!("../../assets/breakerbox.toml");
        let c = Config::parse(sample, "breakerbox.toml").unwrap();
        for p in &c.providers {
            assert!(
                pricing.price(&p.model).is_some(),
                "{} has no price",
                p.model
            );
        }
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
        assert_eq!(sample.rate_limits, defaults.rate_limits);
        assert_eq!(sample.gateway, defaults.gateway);
        assert!(sample.chains.is_empty() && sample.policy.is_empty() && sample.routes.is_empty());
        assert!(sample.pools.is_empty() && defaults.pools.is_empty());
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

        let text = "[[providers]]\nname = \"a\"\nprotocol = \"cohere\"\nmodel = \"m\"\n";
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
    fn rate_limits_take_a_fraction_or_off() {
        let c = Config::parse("[rate_limits]\nsteer_below = 0.2\n", "t").unwrap();
        assert_eq!(c.rate_limits.steer_below, Some(0.2));
        let c = Config::parse("[rate_limits]\nsteer_below = \"off\"\n", "t").unwrap();
        assert_eq!(c.rate_limits.to_config().steer_below, None);
        assert_eq!(
            Config::parse("", "t").unwrap().rate_limits.steer_below,
            Some(0.05)
        );
        for (text, says) in [
            ("[rate_limits]\nsteer_below = 1.5\n", "from 0 to 1"),
            ("[rate_limits]\nsteer_below = \"half\"\n", "or \"off\""),
            ("[rate_limits]\nsteer_blow = 0.1\n", "steer_blow"),
        ] {
            let err = Config::parse(text, "my.toml").unwrap_err().to_string();
            assert!(err.starts_with("my.toml:2:"), "{err}");
            assert!(err.contains(says), "{err}");
        }
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
    fn the_cluster_section_is_checked_where_it_is_written_and_keeps_its_password_in() {
        for (text, says) in [
            (
                "[cluster]\nredis = \"http://cache:6379\"\n",
                "cluster.redis: `http:` is not a Redis URL",
            ),
            ("[cluster]\nredis = \"redis://\"\n", "names no host"),
            (
                "[cluster]\nredis = \"redis://x\"\ninstance = \"gw 1\"\n",
                "cluster.instance",
            ),
            (
                "[cluster]\nredis = \"redis://x\"\nport = 1\n",
                "unknown field",
            ),
        ] {
            let err = Config::parse(text, "my.toml").unwrap_err().to_string();
            assert!(err.starts_with("my.toml:"), "{err}");
            assert!(err.contains(says), "{err}");
        }
        let c = Config::parse("[cluster]\nredis = \"redis://:pw-123@cache:6380/1\"\nname = \"eu\"\ninstance = \"gw-1\"\n", "t").unwrap();
        let cluster = c.cluster.to_config(None).unwrap();
        assert_eq!(
            (
                cluster.address(),
                cluster.name.as_str(),
                cluster.instance.as_str()
            ),
            ("cache:6380".to_string(), "eu", "gw-1")
        );
        assert!(!format!("{:?} {cluster:?}", c.cluster).contains("pw-123"));
        // --redis wins over the config; no [cluster]: no fleet.
        assert_eq!(
            c.cluster.to_config(Some("redis://other")).unwrap().redis,
            "redis://other"
        );
        assert!(Config::default().cluster.to_config(None).is_none());
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
        assert_eq!(sim.providers[0].model, "gpt-6.2-sol");
    }

    #[test]
    fn gemini_targets_read_gemini_api_key_then_google_api_key() {
        let text =
            "[[providers]]\nname = \"g\"\nprotocol = \"gemini\"\nmodel = \"gemini-3.5-flash\"\n";
        let c = Config::parse(text, "t").unwrap();
        let none = |_: &str| None;
        let r = c.providers[0].resolve(Timeouts::default(), &none);
        assert_eq!(r.base_url, "https://generativelanguage.googleapis.com");
        assert_eq!(c.providers[0].missing_key(&none), Some("GEMINI_API_KEY"));
        let google = |k: &str| (k == "GOOGLE_API_KEY").then(|| "g-key".to_string());
        assert_eq!(c.providers[0].missing_key(&google), None);
        let r = c.providers[0].resolve(Timeouts::default(), &google);
        assert_eq!(r.api_key.expose(), "g-key");
        let both = |k: &str| match k {
            "GEMINI_API_KEY" => Some("gem-key".to_string()),
            "GOOGLE_API_KEY" => Some("g-key".to_string()),
            _ => None,
        };
        let r = c.providers[0].resolve(Timeouts::default(), &both);
        assert_eq!(r.api_key.expose(), "gem-key");
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
