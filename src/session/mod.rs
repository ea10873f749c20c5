//! A session: what every command starts from (config, bus, providers, simulator, engines) and the
//! control plane that acts on it.
//!
//! - [`command`]: the operator's [`Command`](command::Command)s, one type for the console's keys,
//!   `/control` and `attach`.
//! - [`control`]: the [`Controller`](control::Controller) that carries them out, and the background
//!   load.

pub mod command;
pub mod control;

pub use command::{Command, LoadChange};
pub use control::{Controller, LoadView, Prompter};
