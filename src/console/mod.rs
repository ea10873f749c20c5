//! The operator console: one screen showing every provider's breaker, latency, errors and cost and the
//! reply as it streams, driven by the same events as everything else.
//!
//! `dashboard.rs` folds events into state; `ui.rs` is local UI state; `panels/` draws both (a pure
//! function); `keys.rs` maps keys to actions; `app.rs` runs the loop and talks to the engine.

pub mod app;
pub mod dashboard;
pub mod keys;
pub mod layout;
pub mod panels;
pub mod replay;
pub mod theme;
pub mod ui;

use color_eyre::eyre::{Result, bail};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::cli::{CommonArgs, RecordArgs};
use crate::event::Bus;
use crate::record::writer::{
    Recorder, RecorderHandle, default_sessions_dir, session_file_name, session_header,
};
use crate::session::{Controller, Prompter};
use crate::setup;
use crate::sim::Scenario;
use app::App;
use keys::Bindings;
use ui::{LoadView, Ui};

/// Background load at start in demo mode, requests per second.
const DEMO_LOAD: f64 = 1.0;

/// `breakerbox` with no command: the console.
pub async fn run(common: &CommonArgs, no_color: bool, record: &RecordArgs) -> Result<i32> {
    session(common, no_color, record, None).await
}

/// The console with `start` given a prompt sender once the session is up (re-driving a
/// recording's prompts); background load stays off.
pub async fn run_with(
    cli: &crate::cli::Cli,
    start: impl FnOnce(Prompter) + Send + 'static,
) -> Result<i32> {
    session(
        &cli.common,
        cli.no_color,
        &cli.record,
        Some(Box::new(start)),
    )
    .await
}

type Start = Box<dyn FnOnce(Prompter) + Send>;

async fn session(
    common: &CommonArgs,
    no_color: bool,
    record: &RecordArgs,
    start: Option<Start>,
) -> Result<i32> {
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
    // Started before the first event is published, so the recording holds the whole session.
    let (recorder, recording) = start_recording(record, setup.mode, &setup, &config, &bus, &env);
    bus.publish(setup.session_started(setup.mode));

    let names = setup.infos.iter().map(|i| i.name.clone()).collect();
    let mut controller = Controller::new(engine, names, sim.clone());
    // Background load is on in the demo; against real providers it costs money, so it starts off.
    controller.start_load(LoadView {
        on: demo && start.is_none(),
        per_sec: DEMO_LOAD,
    });
    if let Some(start) = start {
        start(controller.prompter());
    }
    let ui = Ui {
        color: !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        faults_available: sim.is_some(),
        load: controller.load(),
        ..Ui::default()
    };
    let mut app = App::new(ui, keys, controller);
    app.live.recording = recording;

    let result = app::run_in_terminal(&mut app, events).await;
    finish_recording(recorder).await;
    result?;
    Ok(0)
}

/// Flush and close a session's recording, and say where it is (a failure was already reported).
pub(crate) async fn finish_recording(recorder: Option<RecorderHandle>) {
    if let Some(recorder) = recorder {
        let path = recorder.path().display().to_string();
        let summary = recorder.finish().await;
        if summary.error.is_none() {
            // After a hangup the terminal is gone: saying where the recording is cannot fail loudly.
            let _ = writeln!(std::io::stderr(), "breakerbox: session recorded to {path}");
        }
    }
}

/// Start recording as the flags ask: `--record FILE`, nothing with `--no-record`, else a new file in
/// the sessions directory. Returns the recorder and what the header shows (`Dashboard.recording`). A recording that cannot
/// start never stops the console: the header says why instead.
pub(crate) fn start_recording(
    record: &RecordArgs,
    mode: crate::event::Mode,
    setup: &setup::Setup,
    config: &crate::config::Config,
    bus: &Bus,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<RecorderHandle>, Option<String>) {
    // The header shows "not recording" for `None`; a failure shows its reason instead.
    if record.no_record {
        return (None, None);
    }
    let path = match &record.record {
        Some(path) => path.clone(),
        None => {
            let dir = match default_sessions_dir(env) {
                Ok(dir) => dir,
                Err(why) => return (None, Some(format!("not recording: {why}"))),
            };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return (
                    None,
                    Some(format!(
                        "not recording: cannot create {}: {e}",
                        dir.display()
                    )),
                );
            }
            dir.join(session_file_name(chrono::Utc::now()))
        }
    };
    let header = session_header(mode, &setup.infos, config, env, record.redact_content);
    match Recorder::start(&path, &header, bus, record.redact_content) {
        Ok(recorder) => (Some(recorder), Some(path.display().to_string())),
        Err(e) => (None, Some(format!("not recording: {e}"))),
    }
}
