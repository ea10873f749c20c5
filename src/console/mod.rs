//! The operator console: one screen showing every provider's breaker, latency, errors and cost and the
//! reply as it streams, driven by the same events as everything else.
//!
//! `dashboard.rs` folds events into state; `ui.rs` is local UI state; `panels/` draws both (a pure
//! function); `keys.rs` maps keys to actions; `app.rs` runs the loop and talks to the engine.

pub mod dashboard;
pub mod keys;
pub mod panels;
pub mod ui;
