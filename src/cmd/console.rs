//! `breakerbox` with no command: the console on a local session. With no config and no keys it
//! runs on the simulated providers (and their incident scenario), so a newcomer sees failover at
//! once.

use color_eyre::eyre::{Result, bail};
use std::io::IsTerminal;

use crate::cli::{Cli, CommonArgs};
use crate::console::app::{self, App};
use crate::console::ui::Ui;
use crate::session::recording::{Recording, When};
use crate::session::{LoadView, Prompter, Session, env};
use crate::sim::Scenario;

/// Background load at start in demo mode, requests per second.
const DEMO_LOAD: f64 = 1.0;

/// `breakerbox` with no command: the console.
pub async fn run(cli: &Cli) -> Result<i32> {
    session(cli, None).await
}

/// The console with `start` given a prompt sender once the session is up (re-driving a
/// recording's prompts); background load stays off.
pub async fn run_with(cli: &Cli, start: impl FnOnce(Prompter) + Send + 'static) -> Result<i32> {
    session(cli, Some(Box::new(start))).await
}

type Start = Box<dyn FnOnce(Prompter) + Send>;

async fn session(cli: &Cli, start: Option<Start>) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; for scripts use `breakerbox ask` (see --help)");
    }
    // No config and no keys: the simulated providers.
    let demo = cli.common.demo
        || (cli.common.config.is_none()
            && env("ANTHROPIC_API_KEY").is_none()
            && env("OPENAI_API_KEY").is_none());
    let common = CommonArgs {
        demo,
        ..cli.common.clone()
    };
    let mut session = Session::start(&common, &env, None).await?;
    let keys = super::keys(&session.config)?;
    let events = session.bus.subscribe();
    let engine = session.setup.engine(None)?;
    if session.sim.is_some() && session.setup.scenario.is_none() {
        let incident = Scenario::parse(
            crate::sim::scenario::INCIDENT,
            "assets/scenarios/incident.toml",
        )?;
        session.setup.scenario = Some(demo_incident(incident, &session.provider_names()));
    }
    let mode = session.setup.mode;
    let recording = Recording::start(
        &cli.record,
        When::ByDefault,
        mode,
        &session.setup,
        &session.config,
        &env,
    )?;
    session.announce(mode)?;

    let mut controller = session.controller(engine);
    // Background load is on in the demo; against real providers it costs money, so it starts off.
    controller.start_load(LoadView {
        on: demo && start.is_none(),
        per_sec: DEMO_LOAD,
    });
    if let Some(start) = start {
        start(controller.prompter());
    }
    let ui = Ui {
        color: super::colour(cli.no_color),
        ..Ui::default()
    };
    let mut app = App::new(ui, keys, controller);
    app.live.recording.clone_from(&recording.shown);

    let result = app::run_in_terminal(&mut app, events).await;
    recording.finish().await;
    result?;
    Ok(0)
}

/// The demo incident on this session's simulated providers: as written when they are the
/// default `anthropic` and `openai`, otherwise on the chain's first (the primary) and second.
fn demo_incident(incident: Scenario, providers: &[String]) -> Scenario {
    let has = |name: &str| providers.iter().any(|p| p == name);
    if has("anthropic") && has("openai") {
        return incident;
    }
    let mut cast = Vec::new();
    if let Some(primary) = providers.first() {
        cast.push(("anthropic", primary.as_str()));
    }
    if let Some(fallback) = providers.get(1) {
        cast.push(("openai", fallback.as_str()));
    }
    incident.recast(&cast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident() -> Scenario {
        Scenario::parse(crate::sim::scenario::INCIDENT, "incident.toml")
            .expect("the shipped incident parses")
    }

    fn providers(steps: &Scenario) -> Vec<&str> {
        let mut names: Vec<&str> = steps.steps.iter().map(|s| s.provider.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    #[test]
    fn the_demo_incident_plays_on_the_default_providers_as_written() {
        let names = [
            "anthropic".to_string(),
            "openai".to_string(),
            "local".to_string(),
        ];
        let played = demo_incident(incident(), &names);
        assert_eq!(played, incident());
    }

    #[test]
    fn the_demo_incident_plays_on_a_configs_own_primary_and_fallback() {
        let names = [
            "gemini".to_string(),
            "bedrock".to_string(),
            "azure".to_string(),
        ];
        let played = demo_incident(incident(), &names);
        assert_eq!(providers(&played), ["bedrock", "gemini"]);
        let both: Vec<&str> = names.iter().map(String::as_str).collect();
        played
            .check_providers(&both)
            .expect("every step names a simulated provider");
        assert!(
            played.description.contains("gemini rate-limited"),
            "{}",
            played.description
        );
        assert_eq!(played.steps.len(), incident().steps.len());
    }

    #[test]
    fn with_one_simulated_provider_only_the_primarys_steps_are_played() {
        let played = demo_incident(incident(), &["solo".to_string()]);
        assert_eq!(providers(&played), ["solo"]);
        assert!(played.steps.len() < incident().steps.len());
    }
}
