//! The integration tests, in one binary (one link step instead of one per file): each module is
//! what used to be a test file of its own, and `support` holds what several of them share.
//!
//! Run one module's tests with `cargo test --test it MODULE::` (e.g. `cargo test --test it
//! gateway_wire::`), or any substring of the test names with `cargo test --test it WORDS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod ask;
mod attach;
mod azure;
mod bedrock;
mod breaker_props;
mod cli;
mod config;
mod console_detail;
mod console_events;
mod console_frames;
mod console_keys;
mod console_nav;
mod console_pty;
mod docs_links;
mod engine;
mod event_order;
mod faults;
mod gateway;
mod gateway_limits;
mod gateway_passthrough;
mod gateway_per_request;
mod gateway_responses;
mod gateway_routes;
mod gateway_wire;
mod gemini;
mod metrics;
mod observability_assets;
mod openapi;
mod otlp_live;
mod pools;
mod provider_clients;
mod provider_sse;
mod rate_limits;
mod record;
mod replay;
mod report;
mod schema;
mod screenshot;
mod secrets;
mod sim_control;
mod sim_faults;
mod sim_wire;
