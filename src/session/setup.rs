//! Where the providers come from: the built-in simulator (demo mode) or real endpoints from the config
//! and the environment. Shared by every command that sends requests.

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::cli::CommonArgs;
use crate::config::{BreakerScope, Config, PoolEntry, TargetEntry};
use crate::engine::breaker::{BreakerKey, Breakers};
use crate::engine::classify::Policy;
use crate::engine::cost::Pricing;
use crate::engine::failover::{EngineSettings, FailoverEngine, MidStreamPolicy, Shared, Target};
use crate::engine::pool::Pool;
use crate::engine::retry::RetryBudget;
use crate::engine::throttle::Throttle;
use crate::event::{Bus, EventKind, FORMAT_VERSION, Mode, PoolInfo, PoolMemberInfo, ProviderInfo};
use crate::provider::{self, ApiKey, Protocol, Provider};
use crate::secret::Secrets;
use crate::sim::{self, Simulator};

/// A chain's targets and settings, as the config declares them.
#[derive(Debug, Clone)]
pub struct Chain {
    pub name: String,
    pub entries: Vec<TargetEntry>,
    pub mid_stream: MidStreamPolicy,
    pub hedge: Option<crate::engine::failover::HedgeTrigger>,
}

/// The providers a command will use, in failover order, and the engine parts they share.
pub struct Setup {
    pub mode: Mode,
    pub providers: Vec<Arc<dyn Provider>>,
    pub infos: Vec<ProviderInfo>,
    pub shared: Shared,
    /// The in-process simulator, in demo mode. Dropping it stops it.
    pub sim: Option<Simulator>,
    /// The scenario to play on the simulator once the session is announced (`--scenario`, or the
    /// demo incident the console plays).
    pub scenario: Option<crate::sim::Scenario>,
    config: Config,
}

impl Setup {
    /// The `session_started` event that opens a session of `mode` on this setup.
    pub fn session_started(&self, mode: Mode) -> EventKind {
        EventKind::SessionStarted {
            format_version: FORMAT_VERSION,
            mode,
            providers: self.infos.clone(),
            breaker_threshold: Some(self.config.breaker.consecutive_failures),
            breaker_counts: Policy::with_overrides(&self.config.policy).breaker_counts(),
            settings: Some(settings(&self.config)),
            pools: self.pools(),
        }
    }

    /// The config's pools as this setup has them: each with its members that are among its
    /// providers (a real provider without a key is not), the pools left without any left out.
    pub fn pools(&self) -> Vec<PoolInfo> {
        self.config
            .pools
            .iter()
            .map(|pool| PoolInfo {
                name: pool.name().to_string(),
                strategy: pool.strategy,
                members: pool
                    .members
                    .iter()
                    .map(|m| m.get_ref())
                    .filter(|m| self.provider(&m.provider).is_some())
                    .map(|m| PoolMemberInfo {
                        provider: m.provider.clone(),
                        weight: m.weight,
                    })
                    .collect(),
            })
            .filter(|pool| !pool.members.is_empty())
            .collect()
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }

    pub fn pricing(&self) -> &Pricing {
        &self.shared.pricing
    }

    /// The engine for a chain: the named one from the config, else the config's `default` chain,
    /// else every provider in order.
    pub fn engine(&self, chain: Option<&str>) -> Result<FailoverEngine> {
        let c = self.chain(chain)?;
        self.engine_for(&c.name, &c.entries, c.mid_stream, c.hedge)
    }

    /// A chain as declared: the named one from the config, else the config's `default` chain,
    /// else every provider in order.
    pub fn chain(&self, chain: Option<&str>) -> Result<Chain> {
        let chains = &self.config.chains;
        let declared = match chain {
            Some(name) if name != "default" => Some(
                chains
                    .iter()
                    .find(|c| c.name.get_ref() == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            chains.iter().map(|c| c.name.get_ref().as_str()).collect();
                        eyre!(
                            "no chain is named `{name}` (declared: {})",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        )
                    })?,
            ),
            _ => chains.iter().find(|c| c.name.get_ref() == "default"),
        };
        Ok(match declared {
            Some(c) => Chain {
                name: c.name.get_ref().clone(),
                entries: c.targets.iter().map(|t| t.get_ref().clone()).collect(),
                mid_stream: c.mid_stream,
                hedge: c.hedge.0,
            },
            None => Chain {
                name: "default".to_string(),
                entries: self.every_provider(),
                mid_stream: MidStreamPolicy::default(),
                hedge: None,
            },
        })
    }

    /// Every provider in order, the members of a pool as their pool where the first of them
    /// stands: the chain when the config names none.
    fn every_provider(&self) -> Vec<TargetEntry> {
        let mut entries: Vec<TargetEntry> = Vec::new();
        for p in &self.providers {
            let name = match self
                .config
                .pools
                .iter()
                .find(|pool| has_member(pool, p.name()))
            {
                Some(pool) => pool.name(),
                None => p.name(),
            };
            if !entries.iter().any(|e| e.provider() == name) {
                entries.push(TargetEntry::Name(name.to_string()));
            }
        }
        entries
    }

    /// The config this setup was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An engine over the given targets.
    pub fn engine_for(
        &self,
        name: &str,
        entries: &[TargetEntry],
        mid_stream: MidStreamPolicy,
        hedge: Option<crate::engine::failover::HedgeTrigger>,
    ) -> Result<FailoverEngine> {
        let mut targets = Vec::new();
        for entry in entries {
            match (entry, self.config.pool(entry.provider())) {
                (TargetEntry::Name(_), Some(pool)) => targets.extend(self.members(name, pool)?),
                _ => targets.push(self.target(name, entry.provider(), entry.model())?),
            }
        }
        let settings = EngineSettings {
            policy: Policy::with_overrides(&self.config.policy),
            retry: self.config.retry.to_config(),
            mid_stream,
            when_all_open: self.config.engine.when_all_open,
            retry_silent_timeouts: self.config.engine.retry_silent_timeouts,
            hedge,
        };
        Ok(FailoverEngine::new(
            name,
            targets,
            settings,
            self.shared.clone(),
        ))
    }
}

impl Setup {
    /// The target of `provider` (asking for `model`, else its own) in chain `chain`.
    fn target(&self, chain: &str, name: &str, model: Option<&str>) -> Result<Target> {
        let provider = self.provider(name).ok_or_else(|| {
            eyre!(
                "chain `{chain}`: no provider `{name}` in {} mode (there are: {})",
                self.mode.as_str(),
                self.infos
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let mut target = Target::new(Arc::clone(provider));
        target.model = model.map(str::to_string);
        let protocol = self
            .infos
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.protocol.as_str());
        let configured = self.config.providers.iter().find(|p| p.name() == name);
        target.accepts_prefill = configured
            .and_then(|p| p.accepts_prefill)
            .unwrap_or(protocol == Some(Protocol::Anthropic.as_str()));
        target.context_window = configured.and_then(|p| p.context_window);
        if configured.is_some_and(|p| p.breaker == BreakerScope::Model) {
            let model = target
                .model
                .clone()
                .unwrap_or_else(|| provider.default_model().to_string());
            target.breaker_key = BreakerKey::model(provider.name(), &model);
        }
        Ok(target)
    }

    /// The targets of `pool`'s members that this setup has (a real provider without a key is
    /// left out), standing together in chain `chain`, sharing one [`Pool`].
    fn members(&self, chain: &str, pool: &PoolEntry) -> Result<Vec<Target>> {
        let shared = Pool::seeded_by_name(pool.name(), pool.strategy);
        let mut targets = Vec::new();
        for member in pool.members.iter().map(|m| m.get_ref()) {
            if self.provider(&member.provider).is_none() {
                continue;
            }
            let mut target = self.target(chain, &member.provider, None)?;
            target.pool = Some(Arc::clone(&shared));
            target.weight = member.weight;
            targets.push(target);
        }
        if targets.is_empty() {
            let members: Vec<&str> = pool
                .members
                .iter()
                .map(|m| m.get_ref().provider.as_str())
                .collect();
            bail!(
                "chain `{chain}`: pool `{}` has no member in {} mode (its members: {})",
                pool.name(),
                self.mode.as_str(),
                members.join(", ")
            );
        }
        Ok(targets)
    }
}

/// Whether `provider` is one of `pool`'s members.
fn has_member(pool: &PoolEntry, provider: &str) -> bool {
    pool.members
        .iter()
        .any(|m| m.get_ref().provider == provider)
}

/// The settings that govern every provider, as `session_started.settings` carries them: what an
/// operator reading one provider's detail needs to know to explain what its breaker did.
fn settings(config: &Config) -> std::collections::BTreeMap<String, String> {
    let b = &config.breaker;
    let r = &config.retry;
    let t = &config.timeouts;
    let mut s: Vec<(String, String)> = vec![
        (
            "breaker.consecutive_failures".into(),
            b.consecutive_failures.to_string(),
        ),
        ("breaker.failure_rate".into(), b.failure_rate.to_string()),
        ("breaker.window".into(), duration(b.window.0)),
        ("breaker.min_calls".into(), b.min_calls.to_string()),
        ("breaker.recovery".into(), duration(b.recovery.0)),
        (
            "breaker.recovery_growth".into(),
            b.recovery_growth.to_string(),
        ),
        ("breaker.recovery_max".into(), duration(b.recovery_max.0)),
        (
            "breaker.half_open_probes".into(),
            b.half_open_probes.to_string(),
        ),
        (
            "breaker.open_on_retry_after".into(),
            b.open_on_retry_after.0.map_or("off".into(), duration),
        ),
        (
            "breaker.slow_call".into(),
            b.slow_call.0.map_or("off".into(), duration),
        ),
        (
            "breaker.slow_call_rate".into(),
            b.slow_call_rate.to_string(),
        ),
        (
            "breaker.probe_interval".into(),
            b.probe_interval.0.map_or("off".into(), duration),
        ),
        (
            "breaker.probe_interval_max".into(),
            duration(b.probe_interval_max.0),
        ),
        ("retry.max_retries".into(), r.max_retries.to_string()),
        ("retry.max_attempts".into(), r.max_attempts.to_string()),
        ("retry.min_delay".into(), duration(r.min_delay.0)),
        ("retry.max_delay".into(), duration(r.max_delay.0)),
        ("retry.factor".into(), r.factor.to_string()),
        ("retry.jitter".into(), r.jitter.to_string()),
        (
            "retry.retry_after_cap".into(),
            duration(r.retry_after_cap.0),
        ),
        ("timeouts.connect".into(), duration(t.connect.0)),
        ("timeouts.headers".into(), duration(t.headers.0)),
        ("timeouts.first_event".into(), duration(t.first_event.0)),
        ("timeouts.idle".into(), duration(t.idle.0)),
        ("timeouts.total".into(), duration(t.total.0)),
        (
            "rate_limits.steer_below".into(),
            config
                .rate_limits
                .steer_below
                .map_or("off".into(), |f| f.to_string()),
        ),
    ];
    for p in &config.providers {
        if p.breaker == BreakerScope::Model {
            s.push((
                format!("providers.{}.breaker", p.name.get_ref()),
                "model".into(),
            ));
        }
    }
    s.into_iter().collect()
}

/// A duration as the config writes it: `500ms`, `30s`.
fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms > 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// What the session's engines share, with the recovery probes started (unless they are off).
fn shared(config: &Config, bus: Bus) -> Result<Shared> {
    let breakers = Breakers::new(config.breaker.to_config(), bus.clone());
    let budget = RetryBudget::new(&config.retry.to_config().budget);
    let mut shared = Shared::new(
        bus.clone(),
        breakers,
        budget,
        Pricing::with_overrides(&config.pricing),
    );
    shared.throttle = Throttle::new(config.rate_limits.to_config(), bus);
    if let Some(probes) = config.breaker.probes() {
        shared.start_probing(probes);
    }
    if let Some(cluster) = config.cluster.to_config(None) {
        crate::cluster::start(cluster, &shared).map_err(|e| eyre!("{e}"))?;
    }
    Ok(shared)
}

/// Read `--config` (or the defaults).
pub fn load_config(common: &CommonArgs) -> Result<Config> {
    let mut config = match &common.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(url) = &common.redis {
        crate::cluster::address(url).map_err(|e| eyre!("--redis: {e}"))?;
        config.cluster.redis = Some(toml::Spanned::new(0..0, url.clone()));
    }
    Ok(config)
}

/// Build the providers: simulated when `--demo` is given, real otherwise. `env` reads environment
/// variables (a parameter so tests need not touch the process environment).
pub async fn build(
    common: &CommonArgs,
    config: &Config,
    bus: Bus,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Setup> {
    build_guarding(common, config, bus, env, None).await
}

/// [`build`], with one more secret for the providers to keep out of what they pass on: the
/// gateway's token.
pub async fn build_guarding(
    common: &CommonArgs,
    config: &Config,
    bus: Bus,
    env: &dyn Fn(&str) -> Option<String>,
    token: Option<&str>,
) -> Result<Setup> {
    if common.demo {
        return demo(common, config, bus, token).await;
    }
    if !common.faults.is_empty() || common.scenario.is_some() {
        bail!("--fault and --scenario act on the simulated providers: add --demo");
    }
    let mut resolved = Vec::new();
    let mut missing = Vec::new();
    for entry in &config.providers {
        match entry.missing_key(env) {
            Some(var) => missing.push(format!("{} (set {var})", entry.name())),
            None => resolved.push(entry.resolve(config.timeouts(), env)),
        }
    }
    let (providers, infos) = build_providers(resolved, token)?;
    if providers.is_empty() {
        bail!(
            "no provider has an API key: {}. Set the keys, or try the simulated providers with --demo",
            missing.join(", ")
        );
    }
    for m in &missing {
        tracing::warn!("provider skipped, no API key: {m}");
    }
    Ok(Setup {
        mode: Mode::Live,
        providers,
        infos,
        shared: shared(config, bus)?,
        sim: None,
        scenario: None,
        config: config.clone(),
    })
}

/// Provider clients and what the events say of them, in the same order.
type Built = (Vec<Arc<dyn Provider>>, Vec<ProviderInfo>);

/// The clients of `configs`, each guarding every secret of the others too, sharing HTTP clients.
fn build_providers(configs: Vec<provider::ProviderConfig>, token: Option<&str>) -> Result<Built> {
    let secrets = secrets_of(&configs, token);
    let mut http: Vec<(provider::Timeouts, reqwest::Client)> = Vec::new();
    let mut providers = Vec::new();
    let mut infos = Vec::new();
    for mut cfg in configs {
        cfg.secrets = secrets.clone();
        let mut provider_info = info(&cfg.name, cfg.protocol, &cfg.model);
        provider_info.base_url =
            (!cfg.base_url.is_empty()).then(|| crate::secret::url_for_display(&cfg.base_url));
        infos.push(provider_info);
        let client = match http.iter().find(|(t, _)| *t == cfg.timeouts) {
            Some((_, client)) => client.clone(),
            None => {
                let client = provider::http::client(&cfg.timeouts)?;
                http.push((cfg.timeouts, client.clone()));
                client
            }
        };
        providers.push(provider::build_with(cfg, client));
    }
    Ok((providers, infos))
}

/// Every provider's key and the credentials in its base URL, and the gateway's token.
fn secrets_of(configs: &[provider::ProviderConfig], token: Option<&str>) -> Secrets {
    let mut all: Vec<String> = token.map(str::to_string).into_iter().collect();
    for cfg in configs {
        all.push(cfg.api_key.expose().to_string());
        all.extend(crate::secret::url_secrets(&cfg.base_url));
        all.extend(cfg.aws.iter().flat_map(provider::aws::AwsAuth::secrets));
    }
    Secrets::new(all)
}

async fn demo(
    common: &CommonArgs,
    config: &Config,
    bus: Bus,
    token: Option<&str>,
) -> Result<Setup> {
    let mut sim_config = config.sim_config()?;
    sim_config.apply_fault_assignments(&common.faults)?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut scenario_to_play = None;
    let simulator = Simulator::start(sim_config.clone(), listen)
        .await
        .wrap_err("cannot start the simulated providers")?;
    if let Some(path) = &common.scenario {
        let scenario = sim::Scenario::load(path)?;
        let known: Vec<&str> = sim_config
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        scenario.check_providers(&known)?;
        scenario_to_play = Some(scenario);
    }
    let mut configs = Vec::new();
    for spec in &sim_config.providers {
        // The provider's own port, so that `connect_refused` really refuses.
        let base_url = simulator
            .direct_base_url(&spec.name)
            .or_else(|| simulator.base_url(&spec.name))
            .ok_or_else(|| eyre!("simulated provider `{}` has no address", spec.name))?;
        let mut cfg = provider::ProviderConfig::new(&spec.name, spec.protocol, base_url);
        cfg.api_key = ApiKey::new("sim-key");
        if spec.protocol == provider::Protocol::Bedrock {
            // Signed with dummy credentials, as a real client signs (the simulator checks the
            // signature's form, not the secret).
            cfg.api_key = ApiKey::default();
            cfg.aws = Some(provider::aws::AwsAuth {
                region: provider::aws::DEFAULT_REGION.to_string(),
                credentials: Some(provider::aws::AwsCredentials::new(
                    "AKIASIMULATED0000000",
                    "sim-secret-access-key",
                    None,
                    "the simulator's dummy credentials",
                )),
            });
        }
        cfg.model = spec.model.clone();
        cfg.timeouts = config.timeouts();
        configs.push(cfg);
    }
    let (providers, mut infos) = build_providers(configs, token)?;
    for info in &mut infos {
        info.fault = simulator
            .fault(&info.name)
            .filter(|f| !f.is_none())
            .map(|f| f.to_string());
    }
    Ok(Setup {
        mode: Mode::Demo,
        providers,
        infos,
        shared: shared(config, bus)?,
        sim: Some(simulator),
        scenario: scenario_to_play,
        config: config.clone(),
    })
}

fn info(name: &str, protocol: provider::Protocol, model: &str) -> ProviderInfo {
    ProviderInfo {
        name: name.to_string(),
        protocol,
        model: model.to_string(),
        fault: None,
        base_url: None,
    }
}
