//! Where the providers come from: the built-in simulator (demo mode) or real endpoints from the config
//! and the environment. Shared by every command that sends requests.

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::engine::cost::Pricing;
use crate::event::{Mode, ProviderInfo};
use crate::provider::{self, ApiKey, Provider};
use crate::sim::{self, Simulator};

/// The providers a command will use, in failover order.
pub struct Setup {
    pub mode: Mode,
    pub providers: Vec<Arc<dyn Provider>>,
    pub infos: Vec<ProviderInfo>,
    pub pricing: Pricing,
    /// The in-process simulator, in demo mode. Dropping it stops it.
    pub sim: Option<Simulator>,
}

impl Setup {
    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.name() == name)
    }
}

/// Read `--config` (or the defaults).
pub fn load_config(common: &CommonArgs) -> Result<Config> {
    match &common.config {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

/// Build the providers: simulated when `--demo` is given, real otherwise. `env` reads environment
/// variables (a parameter so tests need not touch the process environment).
pub async fn build(
    common: &CommonArgs,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Setup> {
    let pricing = Pricing::with_overrides(&config.pricing);
    if common.demo {
        return demo(common, config, pricing).await;
    }
    if !common.faults.is_empty() || common.scenario.is_some() {
        bail!("--fault and --scenario act on the simulated providers: add --demo");
    }
    let mut providers = Vec::new();
    let mut infos = Vec::new();
    let mut missing = Vec::new();
    for entry in &config.providers {
        if let Some(var) = entry.missing_key(env) {
            missing.push(format!("{} (set {var})", entry.name()));
            continue;
        }
        let resolved = entry.resolve(config.timeouts(), env);
        infos.push(info(&resolved.name, resolved.protocol, &resolved.model));
        providers.push(provider::build(resolved)?);
    }
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
        pricing,
        sim: None,
    })
}

async fn demo(common: &CommonArgs, config: &Config, pricing: Pricing) -> Result<Setup> {
    let mut sim_config = config.sim_config()?;
    let names: Vec<String> = sim_config
        .providers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    for assignment in &common.faults {
        let (name, fault) = sim::fault::parse_assignment(assignment)
            .map_err(|e| eyre!("--fault {assignment}: {e}"))?;
        let spec = sim_config
            .providers
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                eyre!(
                    "--fault {assignment}: no simulated provider is named `{name}` (there are: {})",
                    names.join(", ")
                )
            })?;
        spec.fault = fault;
    }
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let simulator = Simulator::start(sim_config.clone(), listen)
        .await
        .wrap_err("cannot start the simulated providers")?;
    if let Some(path) = &common.scenario {
        bail!(
            "--scenario {}: scenarios are not wired into demo mode yet",
            path.display()
        );
    }
    let mut providers = Vec::new();
    let mut infos = Vec::new();
    for spec in &sim_config.providers {
        // The provider's own port, so that `connect_refused` really refuses.
        let base_url = simulator
            .direct_base_url(&spec.name)
            .or_else(|| simulator.base_url(&spec.name))
            .ok_or_else(|| eyre!("simulated provider `{}` has no address", spec.name))?;
        let mut cfg = provider::ProviderConfig::new(&spec.name, spec.protocol, base_url);
        cfg.api_key = ApiKey::new("sim-key");
        cfg.model = spec.model.clone();
        cfg.timeouts = config.timeouts();
        infos.push(info(&spec.name, spec.protocol, &spec.model));
        providers.push(provider::build(cfg)?);
    }
    Ok(Setup {
        mode: Mode::Demo,
        providers,
        infos,
        pricing,
        sim: Some(simulator),
    })
}

fn info(name: &str, protocol: provider::Protocol, model: &str) -> ProviderInfo {
    ProviderInfo {
        name: name.to_string(),
        protocol: protocol.to_string(),
        model: model.to_string(),
    }
}
