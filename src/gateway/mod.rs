//! Gateway mode (`breakerbox serve`): agents point their OpenAI or Anthropic base URL here and the
//! engine fails over for them, while the console (or `attach`, from elsewhere) watches.
//!
//! - [`wire`]: the two inbound protocols into breakerbox's [`Request`](crate::provider::Request),
//!   and [`StreamEvent`](crate::provider::StreamEvent)s and errors back out in the caller's.
//! - [`responses`]: the OpenAI Responses API (`/v1/responses`) into and out of the same types.
//! - [`routes`]: the model name a client sends → a chain and how it streams.
//! - [`server`]: the HTTP server: `/v1/*`, `/events`, `/control`, `/metrics`, `/healthz`.
//! - [`events`]: `/events`, with the history a late watcher needs.
//! - [`auth`]: the token rules.

pub mod auth;
pub mod events;
pub mod passthrough;
pub mod reject;
pub mod responses;
pub mod routes;
pub mod server;
pub mod wire;

use color_eyre::eyre::{Result, WrapErr, bail};
use std::io::IsTerminal;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::cli::{Cli, CommonArgs, ServeArgs};
use crate::config::Config;
use crate::console::{self, app::App, keys::Bindings, ui::Ui};
use crate::event::{Bus, EventKind, Mode};
use crate::record::writer::{Recorder, session_header};
use crate::session::{Controller, LoadView};
use crate::setup;
use crate::sim::Simulator;
use routes::Routes;
use server::{GatewayParts, Running};

/// `breakerbox serve`.
pub async fn run(cli: &Cli, args: &ServeArgs) -> Result<i32> {
    let token = auth::read_token(&args.token)?;
    auth::check_bind(args.listen, token.as_deref())?;
    if !args.headless && !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; add --headless to serve without one");
    }
    let config = setup::load_config(&cli.common)?;
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    // Subscribed before the first event, so the console and the recording see the whole session.
    let bus = Bus::new(1 << 16);
    let console_events = bus.subscribe();
    let mut setup =
        setup::build_guarding(&cli.common, &config, bus.clone(), &env, token.as_deref()).await?;
    let routes = Routes::build(&setup)?;
    let listener = bind(args.listen).await?;
    let sim = setup.sim.take().map(Arc::new);
    let banner = banner(&listener, &routes, setup.mode)?;
    let serving = listener.local_addr()?.to_string();

    // A headless gateway records only when asked; the console records by default, as always.
    let (recorder, recording) = if args.headless {
        match &cli.record.record {
            Some(path) => {
                let header = session_header(
                    Mode::Serve,
                    &setup.infos,
                    &config,
                    &env,
                    cli.record.redact_content,
                );
                let recorder = Recorder::start(path, &header, &bus, cli.record.redact_content)?;
                (Some(recorder), Some(path.display().to_string()))
            }
            None => (None, None),
        }
    } else {
        console::start_recording(&cli.record, Mode::Serve, &setup, &config, &bus, &env)
    };
    let running = launch(
        &setup,
        &config,
        routes.clone(),
        sim.clone(),
        token,
        listener,
    )?;

    // Printed before the console takes the screen too, so it is there after the console exits.
    eprint!("{banner}");
    let result = if args.headless {
        if let Some(path) = &recording {
            eprintln!("  recording to {path}");
        }
        let log = tokio::spawn(log_requests(bus.subscribe()));
        wait_for_shutdown().await;
        log.abort();
        eprintln!("breakerbox: gateway stopping");
        Ok(())
    } else {
        let ui = Ui {
            serving: Some(serving),
            ..Ui::default()
        };
        let Some(engine) = routes.default_engine() else {
            bail!("the gateway has no routes");
        };
        watch(
            ui,
            cli.no_color,
            &config,
            Controller::new(
                engine,
                setup.infos.iter().map(|i| i.name.clone()).collect(),
                sim,
            ),
            recording,
            console_events,
        )
        .await
    };
    running.stop().await;
    console::finish_recording(recorder).await;
    result?;
    Ok(0)
}

async fn bind(listen: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another gateway running? choose another address with --listen)"
        } else {
            ""
        };
        color_eyre::eyre::eyre!("cannot listen on {listen}: {e}{hint}")
    })
}

/// Serve `routes` on `listener` and announce the session.
fn launch(
    setup: &setup::Setup,
    config: &Config,
    routes: Routes,
    sim: Option<Arc<Simulator>>,
    token: Option<String>,
    listener: TcpListener,
) -> Result<Running> {
    let bus = setup.shared.bus.clone();
    let running = server::start(
        GatewayParts {
            routes,
            bus: bus.clone(),
            token,
            providers: setup.infos.iter().map(|i| i.name.clone()).collect(),
            mode: setup.mode,
            sim,
            limits: config.gateway,
        },
        listener,
    )
    .wrap_err("cannot start the gateway")?;
    bus.publish(setup.session_started(Mode::Serve));
    Ok(running)
}

/// A gateway on a free loopback port, for tests and benchmarks: the providers as `common` and
/// `env` say (with `common.demo`, the simulated ones). Returns the running gateway, the simulator
/// (in demo mode) and the bus.
pub async fn start(
    common: &CommonArgs,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    token: Option<String>,
) -> Result<(Running, Option<Arc<Simulator>>, Bus)> {
    let bus = Bus::new(1 << 16);
    let mut setup =
        setup::build_guarding(common, config, bus.clone(), env, token.as_deref()).await?;
    let routes = Routes::build(&setup)?;
    let listener = bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let sim = setup.sim.take().map(Arc::new);
    let running = launch(&setup, config, routes, sim.clone(), token, listener)?;
    Ok((running, sim, bus))
}

/// [`start`] over the simulated providers, with `faults` as `--fault` takes them.
pub async fn start_demo(
    config: &Config,
    faults: &[String],
    token: Option<String>,
) -> Result<(Running, Arc<Simulator>, Bus)> {
    let common = CommonArgs {
        demo: true,
        faults: faults.to_vec(),
        ..CommonArgs::default()
    };
    let (running, sim, bus) = start(&common, config, &|_| None, token).await?;
    let sim = sim.ok_or_else(|| color_eyre::eyre::eyre!("demo mode has a simulator"))?;
    Ok((running, sim, bus))
}

/// What a new user needs to point an agent here.
fn banner(listener: &TcpListener, routes: &Routes, mode: Mode) -> Result<String> {
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let providers = match mode {
        Mode::Demo => " (demo: simulated providers)",
        _ => "",
    };
    let mut out = format!(
        "breakerbox: gateway listening on {base}{providers}\n  \
         OpenAI clients:    OPENAI_BASE_URL={base}/v1\n  \
         Anthropic clients: ANTHROPIC_BASE_URL={base}\n  \
         watch: /events  /metrics  /healthz   control: /control\n"
    );
    for route in routes.iter() {
        out.push_str(&format!(
            "  route `{}` → {} ({}{})\n",
            route.model,
            route.targets().join(" → "),
            route.mode.as_str(),
            if route.passthrough {
                ", passthrough"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}

/// The console on the gateway's traffic.
async fn watch(
    ui: Ui,
    no_color: bool,
    config: &Config,
    mut controller: Controller,
    recording: Option<String>,
    events: tokio::sync::broadcast::Receiver<Arc<crate::event::Event>>,
) -> Result<()> {
    let keys = Bindings::with_overrides(&config.keys).map_err(|e| color_eyre::eyre::eyre!(e))?;
    // The agents are the traffic; background load is there to add more, off at first.
    controller.start_load(LoadView {
        on: false,
        per_sec: 1.0,
    });
    let ui = Ui {
        color: !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        faults_available: controller.simulated(),
        load: controller.load(),
        ..ui
    };
    let mut app = App::new(ui, keys, controller);
    app.live.recording = recording;
    console::app::run_in_terminal(&mut app, events).await
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A headless gateway's log on stderr: one line per finished request, breaker change and operator
/// action, worded as the console's event log words them.
async fn log_requests(mut rx: tokio::sync::broadcast::Receiver<Arc<crate::event::Event>>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                eprintln!("breakerbox: {n} events not logged (the log fell behind)");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if matches!(
            event.kind,
            EventKind::RequestFinished { .. }
                | EventKind::BreakerChanged { .. }
                | EventKind::OperatorAction { .. }
        ) {
            eprintln!(
                "{} {}",
                event.ts.format("%H:%M:%S%.3f"),
                crate::event::describe::describe(&event.kind)
            );
        }
    }
}
