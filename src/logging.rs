//! Diagnostics with `tracing`: to a file when `--log-file` is given, otherwise to stderr. Never to
//! stdout (that is the reply) and never over a console screen.

use color_eyre::eyre::{Result, WrapErr};
use std::sync::Mutex;
use tracing_subscriber::EnvFilter;

use crate::cli::LogArgs;

/// Keeps the log file open for the life of the program.
pub struct LogGuard;

pub fn init(args: &LogArgs) -> Result<LogGuard> {
    let filter =
        EnvFilter::try_from_env("BREAKERBOX_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &args.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .wrap_err_with(|| format!("cannot open the log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(LogGuard)
}
