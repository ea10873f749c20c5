//! `breakerbox replay`: the console on a recording, or a report, an export, a re-drive.
//! (Being written.)

use color_eyre::eyre::{Result, bail};

use crate::cli::{Cli, ReplayArgs};

pub async fn run(_cli: &Cli, args: &ReplayArgs) -> Result<i32> {
    bail!("replay of {} is not available yet", args.file.display())
}
