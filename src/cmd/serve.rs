//! `breakerbox serve`: the gateway in front of real agents, with the console on its traffic, or
//! headless with a log line per finished request, breaker change and operator action.

use color_eyre::eyre::{Result, bail, eyre};
use std::io::IsTerminal;
use std::sync::Arc;
use tokio::net::TcpListener;

use super::{read_token, stop_signal};
use crate::cli::{Cli, ServeArgs};
use crate::console::app::{self, App};
use crate::console::ui::Ui;
use crate::event::describe::describe;
use crate::event::{Event, EventKind, Mode, Received};
use crate::gateway::routes::Routes;
use crate::gateway::{auth, bind, launch};
use crate::session::recording::{Recording, When};
use crate::session::{LoadView, Session, env};
use crate::telemetry::{OtlpConfig, OtlpExporter};

/// How long spans still queued at shutdown may take to reach the collector.
const OTLP_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);

/// `breakerbox serve`.
pub async fn run(cli: &Cli, args: &ServeArgs) -> Result<i32> {
    let token = read_token(&args.token)?;
    auth::check_bind(args.listen, token.as_deref())?;
    if !args.headless && !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal; add --headless to serve without one");
    }
    let otlp = OtlpConfig::resolve(args.otlp_endpoint.as_deref(), &env).map_err(|e| eyre!(e))?;
    let mut session = Session::start(&cli.common, &env, token.as_deref()).await?;
    let keys = super::keys(&session.config)?;
    // Subscribed before the first event too: `session_started` says where the providers are.
    let exporter = match otlp {
        Some(config) => {
            let url = config.traces_url.to_string();
            Some((
                OtlpExporter::start(&session.bus, config).map_err(|e| eyre!(e))?,
                url,
            ))
        }
        None => None,
    };
    // Subscribed before the first event, so the console (or the headless log) sees the whole
    // session.
    let console_events = session.bus.subscribe();
    let routes = Routes::build(&session.setup)?;
    let listener = bind(args.listen).await?;
    let mut banner = banner(&listener, &routes, session.setup.mode)?;
    if let Some(redis) = &session.config.cluster.redis {
        let address = crate::cluster::address(redis.get_ref()).unwrap_or_default();
        banner.push_str(&format!(
            "  fleet: breakers shared through redis {address}\n"
        ));
    }
    let serving = listener.local_addr()?.to_string();
    // A headless gateway records only when asked; the console records by default, as always.
    let when = if args.headless {
        When::Asked
    } else {
        When::ByDefault
    };
    let recording = Recording::start(
        &cli.record,
        when,
        Mode::Serve,
        &session.setup,
        &session.config,
        &env,
    )?;
    let Some(engine) = routes.default_engine() else {
        bail!("the gateway has no routes");
    };
    // One control plane for the console's keys and `/control`. The agents are the traffic;
    // background load is there to add more (from the console), off at first.
    let mut controller = session.controller(engine);
    if !args.headless {
        controller.start_load(LoadView {
            on: false,
            per_sec: 1.0,
        });
    }
    let controller = Arc::new(controller);
    let running = launch(
        &mut session,
        routes,
        Some(Arc::clone(&controller)),
        token,
        listener,
    )?;
    if let Some((exporter, url)) = &exporter {
        running.gateway.report_otlp(exporter.stats());
        banner.push_str(&format!("  spans: OTLP/HTTP to {url}\n"));
    }

    // Printed before the console takes the screen too, so it is there after the console exits.
    eprint!("{banner}");
    let result = if args.headless {
        if let Some(path) = &recording.shown {
            eprintln!("  recording to {path}");
        }
        // The receiver subscribed before the first event: a fleet link that fails at once is
        // in the log too.
        let log = tokio::spawn(log_requests(console_events));
        let stopped = match stop_signal() {
            Ok(stop) => stop.await.map_err(Into::into),
            Err(e) => Err(e),
        };
        log.abort();
        eprintln!("breakerbox: gateway stopping");
        stopped
    } else {
        let ui = Ui {
            serving: Some(serving),
            color: super::colour(cli.no_color),
            ..Ui::default()
        };
        let mut app = App::new(ui, keys, controller);
        app.live.recording.clone_from(&recording.shown);
        app::run_in_terminal(&mut app, console_events).await
    };
    running.stop().await;
    if let Some((exporter, _)) = exporter {
        exporter.stop(OTLP_FLUSH).await;
    }
    recording.finish().await;
    result?;
    Ok(0)
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

/// A headless gateway's log on stderr: one line per finished request, breaker change and operator
/// action, worded as the console's event log words them.
async fn log_requests(mut rx: tokio::sync::broadcast::Receiver<Arc<Event>>) {
    while let Some(received) = crate::event::next(&mut rx).await {
        match received {
            Received::Lagged(n) => {
                eprintln!("breakerbox: {n} events not logged (the log fell behind)");
            }
            Received::Event(event) => {
                if matches!(
                    event.kind,
                    EventKind::RequestFinished { .. }
                        | EventKind::BreakerChanged { .. }
                        | EventKind::OperatorAction { .. }
                        | EventKind::ClusterChanged { .. }
                ) {
                    eprintln!(
                        "{} {}",
                        event.ts.format("%H:%M:%S%.3f"),
                        describe(&event.kind)
                    );
                }
            }
        }
    }
}
