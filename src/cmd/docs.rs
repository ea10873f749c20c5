//! `breakerbox completions SHELL` and `breakerbox man`: the command line documented from its own
//! definition (clap_complete, clap_mangen), so neither can drift from it.

use clap::CommandFactory;
use color_eyre::eyre::{Result, WrapErr};
use std::io::Write;
use std::path::Path;

use crate::cli::Cli;

/// Print `shell`'s completion script for every command, flag and value.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "breakerbox", &mut out);
    std::io::stdout()
        .write_all(&out)
        .wrap_err("writing the completion script")?;
    Ok(0)
}

/// Print breakerbox(1), or write it and a page per command into `dir`.
pub fn man(dir: Option<&Path>) -> Result<i32> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut out)
            .wrap_err("rendering the man page")?;
        std::io::stdout()
            .write_all(&out)
            .wrap_err("writing the man page")?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, page) in pages(command) {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut out)
            .wrap_err_with(|| format!("rendering {name}(1)"))?;
        std::fs::write(&path, out).wrap_err_with(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    println!("wrote {}", written.join(", "));
    Ok(0)
}

/// breakerbox and each of its commands, named as their pages are (`breakerbox-ask`).
fn pages(command: clap::Command) -> Vec<(String, clap::Command)> {
    let command = command.name("breakerbox");
    let mut pages = vec![("breakerbox".to_string(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("breakerbox-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    pages
}
