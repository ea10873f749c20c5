//! `breakerbox`: parse the command line and run one command (`cmd::<name>::run`); errors from bad
//! input are printed as one plain line, panics through color-eyre.

use clap::Parser;
use color_eyre::eyre::Result;
use std::io::IsTerminal;

use breakerbox::cli::{Cli, Command};
use breakerbox::cmd;

fn main() {
    // color-eyre reports panics (colour only on a terminal); errors from bad input are printed
    // plainly below: they are messages for the user, not bugs with backtraces.
    let colour = std::io::stderr().is_terminal() && cmd::colour(false);
    let theme = if colour {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let _ = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .install();

    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            let causes: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("breakerbox: error: {}", causes.join(": "));
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    // What documents the command line needs neither logging nor a runtime.
    match &cli.command {
        Some(Command::Completions(args)) => return cmd::docs::completions(args.shell),
        Some(Command::Man(args)) => return cmd::docs::man(args.dir.as_deref()),
        _ => {}
    }
    let _log_guard = breakerbox::logging::init(&cli.log)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match &cli.command {
            Some(Command::Ask(args)) => cmd::ask::run(&cli, args).await,
            Some(Command::Sim(args)) => cmd::sim::run(&cli, args).await,
            Some(Command::Replay(args)) => cmd::replay::run(&cli, args).await,
            Some(Command::Serve(args)) => cmd::serve::run(&cli, args).await,
            Some(Command::Attach(args)) => cmd::attach::run(&cli, args).await,
            Some(Command::Completions(_) | Command::Man(_)) => Ok(0),
            None => cmd::console::run(&cli).await,
        }
    })
}
