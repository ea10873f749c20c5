//! Gateway mode (`breakerbox serve`): agents point their OpenAI or Anthropic base URL here and the
//! engine fails over for them, while the console (or `attach`, from elsewhere) watches. The command
//! itself (banner, console or headless log, shutdown) is `cmd/serve.rs`; this is the server, which
//! knows nothing of the console: it publishes events and takes the session's `Command`s.
//!
//! - [`wire`]: the two inbound protocols into breakerbox's [`Request`](crate::provider::Request),
//!   and [`StreamEvent`](crate::provider::StreamEvent)s and errors back out in the caller's.
//! - [`responses`]: the OpenAI Responses API (`/v1/responses`) into and out of the same types.
//! - [`routes`]: the model name a client sends → a chain and how it streams.
//! - [`per_request`]: a request's own choice of chain and failover, and the reply's headers saying
//!   who answered.
//! - [`server`]: the HTTP server: `/v1/*`, `/events`, `/control`, `/metrics`, `/healthz`.
//! - [`events`]: `/events`, with the history a late watcher needs.
//! - [`auth`]: the token rules.
//! - [`azure`]: Azure OpenAI's paths (`/openai/deployments/{deployment}/…`, `/openai/v1/…`).

pub mod auth;
pub mod azure;
pub mod bedrock;
pub mod events;
pub mod gemini;
pub mod passthrough;
pub mod per_request;
pub mod reject;
pub mod responses;
pub mod routes;
pub mod server;
pub mod wire;

use color_eyre::eyre::{Result, WrapErr};
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::cli::CommonArgs;
use crate::config::Config;
use crate::event::{Bus, Mode};
use crate::session::{Controller, Session};
use crate::sim::Simulator;
use routes::Routes;
use server::{GatewayParts, Running};

/// Serve `routes` on `listener` and announce the session (`session_started`, mode `serve`).
/// `control` is the session's control plane when the caller has one (its console's).
pub fn launch(
    session: &mut Session,
    routes: Routes,
    control: Option<Arc<Controller>>,
    token: Option<String>,
    listener: TcpListener,
) -> Result<Running> {
    let running = server::start(
        GatewayParts {
            routes,
            bus: session.bus.clone(),
            token,
            providers: session.provider_names(),
            mode: session.setup.mode,
            sim: session.sim.clone(),
            limits: session.config.gateway,
            control,
        },
        listener,
    )
    .wrap_err("cannot start the gateway")?;
    session.announce(Mode::Serve)?;
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
    let mut session = Session::with_config(common, config.clone(), env, token.as_deref()).await?;
    let routes = Routes::build(&session.setup)?;
    let listener = bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let running = launch(&mut session, routes, None, token, listener)?;
    Ok((running, session.sim.clone(), session.bus.clone()))
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

/// Listen on `listen`, saying what to do when the address is taken.
pub async fn bind(listen: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (is another gateway running? choose another address with --listen)"
        } else {
            ""
        };
        color_eyre::eyre::eyre!("cannot listen on {listen}: {e}{hint}")
    })
}
