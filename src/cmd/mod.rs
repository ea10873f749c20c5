//! The commands, one entry point each, all `run(cli, args) -> Result<exit code>`: `main` parses the
//! command line and calls one. Each builds a [`Session`](crate::session::Session) (or opens a
//! recording, or attaches to a gateway) and hands it to the parts that do the work.
//!
//! - [`console`]: `breakerbox` with no command: the console on a local session.
//! - [`ask`]: `breakerbox ask`: one prompt (or many), printed as it streams.
//! - [`serve`]: `breakerbox serve`: the gateway, with the console or headless.
//! - [`attach`]: `breakerbox attach URL`: the console on a remote gateway.
//! - [`replay`]: `breakerbox replay FILE`: a recording, as a console, a report, an export or
//!   re-driven.
//! - [`sim`]: `breakerbox sim`: the simulated providers as a standalone server.

pub mod ask;
pub mod attach;
pub mod console;
pub mod docs;
pub mod replay;
pub mod serve;
pub mod sim;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use std::future::Future;

use crate::cli::TokenArgs;
use crate::config::Config;
use crate::console::keys::Bindings;

/// The console draws in colour unless `--no-color` or `NO_COLOR` says not to.
pub fn colour(no_color: bool) -> bool {
    !no_color && !no_color_env(std::env::var_os("NO_COLOR").as_deref())
}

/// Whether a value of `NO_COLOR` asks for no colour: any value but an empty one (no-color.org).
pub fn no_color_env(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// The console's keys: the defaults with the config's `[keys]` overrides (checked at load).
pub fn keys(config: &Config) -> Result<Bindings> {
    Bindings::with_overrides(&config.keys).map_err(|e| eyre!(e))
}

/// The gateway's token from `--token`, `BREAKERBOX_TOKEN` or `--token-file` (its first line,
/// trimmed). An empty token is refused rather than silently meaning "no token".
pub fn read_token(args: &TokenArgs) -> Result<Option<String>> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.trim().to_string(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .wrap_err_with(|| format!("cannot read the token file {}", path.display()))?;
            let first = text.lines().next().unwrap_or("").trim().to_string();
            if first.is_empty() {
                bail!(
                    "{}: the token file is empty; put the token on its first line",
                    path.display()
                );
            }
            first
        }
        (None, None) => return Ok(None),
    };
    if token.is_empty() {
        bail!("the token is empty; give a non-empty --token or BREAKERBOX_TOKEN");
    }
    Ok(Some(token))
}

/// Ctrl-C or SIGTERM. The handlers are installed at once (not on first poll), so a signal sent
/// right after the banner still stops the simulator gracefully.
pub fn stop_signal() -> Result<impl Future<Output = std::io::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    Ok(tokio::signal::ctrl_c())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_a_non_empty_no_color_turns_colour_off() {
        use std::ffi::OsStr;
        assert!(!no_color_env(None));
        assert!(!no_color_env(Some(OsStr::new(""))), "empty counts as unset");
        assert!(no_color_env(Some(OsStr::new("1"))));
        assert!(no_color_env(Some(OsStr::new("false"))), "any value counts");
    }

    #[test]
    fn the_token_comes_from_a_flag_or_a_file() {
        let file = std::env::temp_dir().join(format!("bb-token-{}", std::process::id()));
        std::fs::write(&file, "  abc123 \nignored\n").unwrap();
        let from_file = TokenArgs {
            token: None,
            token_file: Some(file.clone()),
        };
        assert_eq!(read_token(&from_file).unwrap().as_deref(), Some("abc123"));
        std::fs::write(&file, "\n").unwrap();
        assert!(
            read_token(&from_file)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let none = TokenArgs::default();
        assert_eq!(read_token(&none).unwrap(), None);
        let blank = TokenArgs {
            token: Some("  ".into()),
            token_file: None,
        };
        assert!(read_token(&blank).is_err());
        let _ = std::fs::remove_file(&file);
    }
}
