//! The wire protocols breakerbox speaks, one module each: what the protocol calls things, written
//! once and read by every side that speaks it — the client (`provider::anthropic`, `openai`,
//! `responses`), the gateway's server side (`gateway::wire`, `gateway::responses`) and the
//! simulator (`sim::anthropic`, `openai`, `responses`).
//!
//! Those sides stay in their layers (each has its own machinery: the HTTP transport and SSE
//! parser, the gateway's encoders, the simulator's faults), and all depend on this module, never
//! the other way round. The plain vocabulary those facts are written in (`ErrorClass`,
//! `StopReason`, `Usage`, `Protocol`) lives here too, in `vocab`, so that this module imports
//! nothing of the crate's; `provider` re-exports it under its old paths.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod chat;
pub mod gemini;
pub mod responses;
mod vocab;

pub use vocab::{ErrorClass, LimitDimension, Protocol, StopReason, Usage};

/// An OpenAI path below a base URL that ends in `/v1`, as OpenAI's base URLs do (and its
/// clients' `OPENAI_BASE_URL`).
pub fn below_v1(path: &str) -> &str {
    path.strip_prefix("/v1").unwrap_or(path)
}
