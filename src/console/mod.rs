//! The operator console: one screen showing every provider's breaker, latency, errors and cost and the
//! reply as it streams, driven by the same events as everything else.
//!
//! `dashboard.rs` folds events into state; `ui.rs` is local UI state; `panels/` draws both (a pure
//! function); `keys.rs` maps keys to actions; `app.rs` runs the loop and talks to the engine.

pub mod app;
pub mod control;
pub mod dashboard;
pub mod keys;
pub mod layout;
pub mod panels;
pub mod theme;
pub mod ui;

use color_eyre::eyre::{Result, WrapErr, bail};
use ratatui::crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::crossterm::execute;
use std::io::IsTerminal;
use std::sync::Arc;

use crate::cli::CommonArgs;
use crate::event::{Bus, EventKind, FORMAT_VERSION};
use crate::setup;
use crate::sim::Scenario;
use app::App;
use control::Controller;
use keys::Bindings;
use ui::{LoadView, Ui};

/// Background load at start in demo mode, requests per second.
const DEMO_LOAD: f64 = 1.0;

/// `breakerbox` with no command: the console.
pub async fn run(common: &CommonArgs, no_color: bool) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; for scripts use `breakerbox ask` (see --help)");
    }
    let config = setup::load_config(common)?;
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    // No config and no keys: the simulated providers, so a newcomer sees failover at once.
    let demo = common.demo
        || (common.config.is_none()
            && env("ANTHROPIC_API_KEY").is_none()
            && env("OPENAI_API_KEY").is_none());
    let common = CommonArgs {
        demo,
        ..common.clone()
    };
    let keys = Bindings::with_overrides(&config.keys).map_err(|e| color_eyre::eyre::eyre!(e))?;

    let bus = Bus::new(1 << 16);
    let events = bus.subscribe();
    let mut setup = setup::build(&common, &config, bus.clone(), &env).await?;
    let engine = setup.engine(None)?;
    let sim = setup.sim.take().map(Arc::new);
    if let Some(sim) = &sim
        && common.scenario.is_none()
    {
        let incident = Scenario::parse(
            crate::sim::scenario::INCIDENT,
            "assets/scenarios/incident.toml",
        )?;
        sim.run_scenario(incident)?;
    }
    bus.publish(EventKind::SessionStarted {
        format_version: FORMAT_VERSION,
        mode: setup.mode,
        providers: setup.infos.clone(),
        breaker_threshold: Some(config.breaker.consecutive_failures),
    });

    let mut controller = Controller::new(engine, sim.clone());
    // Background load is on in the demo; against real providers it costs money, so it starts off.
    controller.start_load(LoadView {
        on: demo,
        per_sec: DEMO_LOAD,
    });
    let ui = Ui {
        color: !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        faults_available: sim.is_some(),
        load: controller.load(),
        ..Ui::default()
    };
    let mut app = App::new(ui, keys, controller);

    let mut terminal = ratatui::try_init().wrap_err("cannot take over the terminal")?;
    restore_on_panic();
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    let result = app.run(&mut terminal, events).await;
    restore();
    result.wrap_err("the console's terminal failed")?;
    Ok(0)
}

/// Give the terminal back: raw mode off, main screen, mouse and paste modes off.
fn restore() {
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    ratatui::restore();
}

/// ratatui's own hook restores raw mode and the screen; mouse capture must be released too, or
/// the shell after a panic receives mouse escape codes.
fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        previous(info);
    }));
}
