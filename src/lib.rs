//! breakerbox: a multi-provider LLM failover engine with a live operator console.
//!
//! The architecture is one stream of [`event::Event`]s: the engine publishes, the console, the
//! recorder and the tests fold. See docs/architecture.md (the data flow and the layout) and the
//! README.

pub mod attach;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod console;
pub mod engine;
pub mod event;
pub mod gateway;
pub mod json;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod parse;
pub mod protocol;
pub mod provider;
pub mod record;
mod rng;
pub mod secret;
pub mod session;
pub mod sim;
mod sync;
pub mod telemetry;
pub mod text;
