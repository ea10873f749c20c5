//! The simulated providers: an axum server speaking the real wire protocols, breaking on purpose.
//! (Being written: this file fixes the public interface.)

pub mod fault;

use std::net::SocketAddr;
use std::time::Duration;

use crate::provider::Protocol;
pub use fault::{Fault, FaultKind};

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
            Protocol::Anthropic => "claude-sonnet-4-5",
            Protocol::Openai => "gpt-5",
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

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
}

impl Simulator {
    pub async fn start(_config: SimConfig, listen: SocketAddr) -> Result<Simulator, SimError> {
        Ok(Simulator { addr: listen })
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The base URL an official client would use for this provider on the shared port.
    pub fn base_url(&self, _name: &str) -> Option<String> {
        None
    }
    /// The base URL on the provider's own port, where `connect_refused` truly refuses.
    pub fn direct_base_url(&self, _name: &str) -> Option<String> {
        None
    }
    pub fn set_fault(&self, name: &str, _fault: Fault) -> Result<(), SimError> {
        Err(SimError::UnknownProvider(name.to_string()))
    }
    pub async fn shutdown(self) {}
}

pub async fn run(
    _common: &crate::cli::CommonArgs,
    _args: &crate::cli::SimArgs,
) -> color_eyre::Result<()> {
    Ok(())
}
