//! The operator console: one screen showing every provider's breaker, latency, errors and cost and the
//! reply as it streams, driven by the same events as everything else.
//!
//! `dashboard/` folds events into state (one file per concern: providers, requests, log); `ui.rs` is local UI state; `panels/` draws both (a pure
//! function); `keys.rs` maps keys to actions; `app.rs` runs the loop and sends the operator's
//! commands through its `Control` (the session's controller, or `attach`'s remote one);
//! `replay.rs` plays a recording. The commands that start a console are in `cmd/`.

pub mod app;
pub mod clipboard;
pub mod dashboard;
pub mod keys;
pub mod layout;
pub mod panels;
pub mod replay;
pub mod theme;
pub mod ui;
