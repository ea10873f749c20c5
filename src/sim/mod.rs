//! The simulated providers: an axum server speaking the real wire protocols, breaking on purpose.
//!
//! Each provider lives under `/{name}` on the shared port (Anthropic: `POST /{name}/v1/messages`,
//! OpenAI: `POST /{name}/v1/chat/completions`, OpenAI's Responses API: `POST /{name}/v1/responses`,
//! Azure OpenAI: `POST /{name}/openai/deployments/{deployment}/chat/completions?api-version=…` and
//! `POST /{name}/openai/v1/chat/completions`)
//! and also on a port of its own (the "direct" port), which `connect_refused` really closes. The
//! control endpoint is `/_sim/…` on the shared port.
//!
//! Files: `fault.rs` (fault kinds and their syntax), `budget.rs` (a rate limit that runs out, and
//! its headers), `scenario.rs` (faults over time),
//! `server.rs` (listeners, connections, routes), `serve.rs` (one request), `reply.rs` (what is
//! said), `wire.rs` + `anthropic.rs` + `openai.rs` + `responses.rs` (how it is said), `stream.rs`
//! (playing a stream out over time), `state.rs` (counters and the request log), `control.rs`
//! (`/_sim`). The `breakerbox sim` command is `cmd/sim.rs`.

mod anthropic;
mod azure;
mod bedrock;
mod budget;
mod control;
pub mod fault;
mod gemini;
mod openai;
mod reply;
mod responses;
mod rng;
pub mod scenario;
mod serve;
mod server;
mod state;
mod stream;
mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::provider::Protocol;
pub use fault::{Fault, FaultKind};
pub use scenario::{Scenario, ScenarioError, ScenarioStep};
use state::{ProviderState, RequestLog, SimState};
pub use state::{ProviderStatus, RequestRecord};

/// One simulated provider.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProviderSpec {
    pub name: String,
    pub protocol: Protocol,
    /// The model named in replies when the request names none.
    pub model: String,
    /// Time from the request to the first event.
    pub first_event_latency: Duration,
    /// Time between tokens.
    pub token_delay: Duration,
    /// Fraction (0..=1) by which each delay may vary, drawn from the seeded generator.
    pub jitter: f64,
    /// Answer with a tool call when the request offers tools.
    pub use_tools: bool,
    /// The fault in force at start.
    pub fault: Fault,
}

impl SimProviderSpec {
    pub fn new(name: impl Into<String>, protocol: Protocol) -> Self {
        let model = match protocol {
            // The default providers' models (config/providers.rs).
            Protocol::Anthropic => "claude-sonnet-5-5",
            // Azure names the deployment's real model in its chunks.
            Protocol::Openai | Protocol::OpenaiResponses | Protocol::Azure => "gpt-6.2-sol",
            Protocol::Gemini => gemini::MODEL,
            Protocol::Bedrock => crate::protocol::bedrock::DEFAULT_MODEL,
        };
        SimProviderSpec {
            name: name.into(),
            protocol,
            model: model.to_string(),
            first_event_latency: Duration::from_millis(300),
            token_delay: Duration::from_millis(15),
            jitter: 0.2,
            use_tools: true,
            fault: Fault::none(),
        }
    }
}

/// The whole simulator's setup.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub providers: Vec<SimProviderSpec>,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            providers: vec![
                SimProviderSpec::new("anthropic", Protocol::Anthropic),
                SimProviderSpec::new("openai", Protocol::Openai),
            ],
            seed: 0,
        }
    }
}

impl SimConfig {
    /// Apply `--fault NAME=KIND[:PARAMS]` assignments, in order.
    pub fn apply_fault_assignments(&mut self, assignments: &[String]) -> Result<(), SimError> {
        for assignment in assignments {
            let (name, fault) = fault::parse_assignment(assignment)
                .map_err(|e| SimError::Invalid(format!("--fault {assignment}: {e}")))?;
            let Some(i) = self.providers.iter().position(|p| p.name == name) else {
                let names: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
                return Err(SimError::Invalid(format!(
                    "--fault {assignment}: no simulated provider is named `{name}` (there are: {})",
                    names.join(", ")
                )));
            };
            self.providers[i].fault = fault;
        }
        Ok(())
    }
}

/// Errors starting or controlling the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no simulated provider is named `{0}`")]
    UnknownProvider(String),
    #[error("{0}")]
    Invalid(String),
}

/// A running simulator. Dropping it stops it; [`Simulator::shutdown`] also waits for its tasks.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Simulator {
    /// Listen on `listen` (port 0 picks one) and give each provider its own port: the next ports
    /// after `listen`'s, in order, or free ones when `listen`'s port is 0.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> Result<Simulator, SimError> {
        validate(&config)?;
        let bind_error = |source| SimError::Bind {
            addr: listen,
            source,
        };
        let shared = TcpListener::bind(listen).await.map_err(bind_error)?;
        let addr = shared.local_addr().map_err(bind_error)?;
        let url_host = SocketAddr::new(url_ip(addr.ip()), addr.port());
        let log = Arc::new(RequestLog::default());
        let mut providers = Vec::new();
        let mut direct_listeners = Vec::new();
        for (i, spec) in config.providers.into_iter().enumerate() {
            let port = match listen.port() {
                0 => 0,
                p => u16::try_from(usize::from(p) + 1 + i).map_err(|_| {
                    SimError::Invalid(format!(
                        "no port left after {p} for provider `{}`'s own port: listen on a lower port",
                        spec.name
                    ))
                })?,
            };
            let own = SocketAddr::new(listen.ip(), port);
            let listener = TcpListener::bind(own).await.map_err(|e| {
                SimError::Invalid(format!(
                    "cannot listen on {own}, provider `{}`'s own port (the listening port + {}): \
                     {e}. Listen on another port, or on port 0 to take free ones",
                    spec.name,
                    i + 1
                ))
            })?;
            let direct = listener.local_addr().map_err(bind_error)?;
            let direct_host = SocketAddr::new(url_ip(direct.ip()), direct.port());
            let (base_url, direct_base_url) = match spec.protocol {
                Protocol::Anthropic => (
                    format!("http://{url_host}/{}", spec.name),
                    format!("http://{direct_host}"),
                ),
                Protocol::Openai | Protocol::OpenaiResponses => (
                    format!("http://{url_host}/{}/v1", spec.name),
                    format!("http://{direct_host}/v1"),
                ),
                // The google-genai client's `http_options.base_url`: it adds `/v1beta/models/…`;
                // boto3's `endpoint_url`: the model's path goes below it; what
                // `openai.AzureOpenAI` takes as its `azure_endpoint`.
                Protocol::Gemini | Protocol::Bedrock | Protocol::Azure => (
                    format!("http://{url_host}/{}", spec.name),
                    format!("http://{direct_host}"),
                ),
            };
            providers.push(Arc::new(ProviderState::new(
                spec,
                config.seed,
                base_url,
                direct_base_url,
                Arc::clone(&log),
            )));
            direct_listeners.push((listener, direct));
        }
        let state = Arc::new(SimState { providers, log });
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(server::serve_shared(
            shared,
            server::shared_router(Arc::clone(&state)),
            stop.clone(),
            tasks.clone(),
        ));
        for (provider, (listener, direct)) in state.providers.iter().zip(direct_listeners) {
            tasks.spawn(server::serve_direct(
                Arc::clone(provider),
                listener,
                direct,
                stop.clone(),
                tasks.clone(),
            ));
        }
        Ok(Simulator {
            addr,
            state,
            stop,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an official client would use for this provider on the shared port.
    pub fn base_url(&self, name: &str) -> Option<String> {
        let provider = self.state.provider(name).ok()?;
        Some(provider.base_url.clone())
    }

    /// The base URL on the provider's own port, where `connect_refused` truly refuses.
    pub fn direct_base_url(&self, name: &str) -> Option<String> {
        let provider = self.state.provider(name).ok()?;
        Some(provider.direct_base_url.clone())
    }

    pub fn set_fault(&self, name: &str, fault: Fault) -> Result<(), SimError> {
        self.state.provider(name)?.set_fault(fault);
        Ok(())
    }

    /// The fault in force on a provider.
    pub fn fault(&self, name: &str) -> Option<Fault> {
        Some(self.state.provider(name).ok()?.fault())
    }

    /// Every provider with its fault, URLs and counters (what `GET /_sim/providers` shows).
    pub fn providers(&self) -> Vec<ProviderStatus> {
        self.state.providers.iter().map(|p| p.status()).collect()
    }

    /// The last `limit` finished requests, oldest first.
    pub fn recent_requests(&self, limit: usize) -> Vec<RequestRecord> {
        self.state.log.recent(limit)
    }

    /// Play a scenario in the background until it ends or the simulator stops; `on_step` hears of
    /// each step as it is applied.
    pub fn run_scenario(
        &self,
        scenario: Scenario,
        on_step: impl Fn(&Scenario, &ScenarioStep) + Send + Sync + 'static,
    ) -> Result<(), SimError> {
        let names: Vec<&str> = self
            .state
            .providers
            .iter()
            .map(|p| p.spec.name.as_str())
            .collect();
        scenario
            .check_providers(&names)
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        let state = Arc::clone(&self.state);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            let apply = |step: &ScenarioStep| {
                if let Ok(provider) = state.provider(&step.provider) {
                    tracing::info!(scenario = %scenario.name, provider = %step.provider, fault = %step.fault, "scenario step");
                    provider.set_fault(step.fault.clone());
                    on_step(&scenario, step);
                }
            };
            tokio::select! {
                () = stop.cancelled() => {}
                () = scenario.run(apply) => {}
            }
        });
        Ok(())
    }

    /// Stop listening, let open responses finish briefly, and wait for every task.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// URLs name loopback when listening on every address.
fn url_ip(ip: IpAddr) -> IpAddr {
    if ip.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        ip
    }
}

fn validate(config: &SimConfig) -> Result<(), SimError> {
    let mut seen = std::collections::HashSet::new();
    for p in &config.providers {
        let valid = !p.name.is_empty()
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid || p.name == "_sim" {
            return Err(SimError::Invalid(format!(
                "`{}` cannot name a simulated provider: use letters, digits, `-` and `_` (and not `_sim`, the control path)",
                p.name
            )));
        }
        if !seen.insert(&p.name) {
            return Err(SimError::Invalid(format!(
                "two simulated providers are named `{}`: give each its own name",
                p.name
            )));
        }
        if !(0.0..=1.0).contains(&p.jitter) {
            return Err(SimError::Invalid(format!(
                "simulated provider `{}`: jitter {} is out of range: use a fraction from 0 to 1",
                p.name, p.jitter
            )));
        }
    }
    Ok(())
}
