//! `breakerbox attach URL`: the console on a gateway running elsewhere (see `attach/`, the
//! gateway's HTTP/SSE client).

use color_eyre::eyre::{Result, bail};
use std::io::IsTerminal;

use crate::attach::{Options, attach};
use crate::cli::{AttachArgs, Cli};
use crate::console::app;
use crate::console::ui::Ui;
use crate::session::setup::load_config;

/// `breakerbox attach URL`: the console on a remote gateway, until the operator quits.
pub async fn run(cli: &Cli, args: &AttachArgs) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the console needs a terminal; `breakerbox attach` shows a gateway's console (for scripts, read its /events directly)"
        );
    }
    let token = super::read_token(&args.token)?;
    let config = load_config(&cli.common)?;
    let keys = super::keys(&config)?;
    let attachment = attach(&args.url, token, Options::default()).await?;
    let ui = Ui {
        color: super::colour(cli.no_color),
        ..Ui::default()
    };
    let (mut app, events, reader) = attachment.into_app(ui, keys);
    let result = app::run_in_terminal(&mut app, events).await;
    drop(reader);
    result?;
    Ok(0)
}
