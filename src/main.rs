use clap::Parser;
use color_eyre::eyre::Result;

use breakerbox::cli::{Cli, Command};

fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    let _log_guard = breakerbox::logging::init(&cli.log)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let code = runtime.block_on(async {
        match cli.command {
            Some(Command::Ask(args)) => breakerbox::ask::run(&cli.common, &args).await,
            Some(Command::Sim(args)) => breakerbox::sim::run(&cli.common, &args).await.map(|()| 0),
            None => breakerbox::ask::no_console_yet(),
        }
    })?;
    std::process::exit(code);
}
