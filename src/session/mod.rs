//! A session: what every command starts from, and the control plane that acts on it.
//!
//! [`Session::start`] loads the config, makes the bus and builds the providers (the simulated ones in
//! demo mode); the caller subscribes what must see the whole session (the console, a recording),
//! then [`Session::announce`] publishes the one `session_started`.
//!
//! - [`setup`]: the providers, their shared engine parts, and engines for chains.
//! - [`command`]: the operator's [`Command`]s, one type for the console's keys, `/control` and
//!   `attach`.
//! - [`control`]: the [`Controller`] that carries them out, and the background load.
//! - [`recording`]: when a session is recorded, and what the operator is told.

pub mod command;
pub mod control;
pub mod recording;
pub mod setup;

pub use command::{Command, LoadChange};
pub use control::{Controller, LoadView, Prompter};
pub use setup::Setup;

use color_eyre::eyre::Result;
use std::sync::Arc;

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::engine::failover::FailoverEngine;
use crate::event::{Bus, EventKind, Mode};
use crate::sim::Simulator;

/// Events a consumer may fall behind by before it is told it lagged: enough that a slow terminal
/// or printer rides out a burst of requests.
pub const BUS_CAPACITY: usize = 1 << 16;

/// The environment as commands read it: unset and empty are the same.
pub fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// A command's config, bus and providers.
pub struct Session {
    pub config: Config,
    pub bus: Bus,
    pub setup: Setup,
    /// The in-process simulator, in demo mode. Dropping the last handle stops it.
    pub sim: Option<Arc<Simulator>>,
}

impl Session {
    /// Load the config, make the bus and build the providers; `token` (the gateway's) is one more
    /// secret for them to keep out of what they pass on. Nothing is published yet.
    pub async fn start(
        common: &CommonArgs,
        env: &dyn Fn(&str) -> Option<String>,
        token: Option<&str>,
    ) -> Result<Session> {
        let config = setup::load_config(common)?;
        Session::with_config(common, config, env, token).await
    }

    /// [`Session::start`] on a config already loaded.
    pub async fn with_config(
        common: &CommonArgs,
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
        token: Option<&str>,
    ) -> Result<Session> {
        let bus = Bus::new(BUS_CAPACITY);
        let mut setup = setup::build_guarding(common, &config, bus.clone(), env, token).await?;
        let sim = setup.sim.take().map(Arc::new);
        Ok(Session {
            config,
            bus,
            setup,
            sim,
        })
    }

    /// Publish the session's `session_started`, as a session of `mode`, and start its scenario:
    /// each step is published as a `fault_changed` after it.
    pub fn announce(&mut self, mode: Mode) -> Result<()> {
        self.bus.publish(self.setup.session_started(mode));
        // The fleet joins now, so that whatever folds the session (the console, `/metrics`) has
        // subscribed and sees how its link goes.
        if let Some(cluster) = self.config.cluster.to_config(None) {
            crate::cluster::start(cluster, &self.setup.shared)
                .map_err(|e| color_eyre::eyre::eyre!("{e}"))?;
        }
        if let (Some(sim), Some(scenario)) = (&self.sim, self.setup.scenario.take()) {
            let bus = self.bus.clone();
            sim.run_scenario(scenario, move |scenario, step| {
                bus.publish(EventKind::FaultChanged {
                    provider: step.provider.clone(),
                    fault: step.fault.to_string(),
                    reason: format!(
                        "scenario {}, step at {}:{:02}",
                        scenario.name,
                        step.at.as_secs() / 60,
                        step.at.as_secs() % 60
                    ),
                });
            })?;
        }
        Ok(())
    }

    /// The names of the session's providers, in failover order.
    pub fn provider_names(&self) -> Vec<String> {
        self.setup.infos.iter().map(|i| i.name.clone()).collect()
    }

    /// The control plane on `engine` (prompts and load go through it; breakers are every
    /// provider's).
    pub fn controller(&self, engine: FailoverEngine) -> Controller {
        Controller::new(engine, self.provider_names(), self.sim.clone())
    }
}
