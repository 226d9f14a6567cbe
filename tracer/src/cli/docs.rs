//! `tracer completions SHELL` and `tracer man [COMMAND]`: shell completions and man pages
//! generated from the clap definitions themselves, so they list exactly the commands, options
//! and values (the built-in profiles among them) this binary accepts.

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tracer completions bash > /etc/bash_completion.d/tracer
  tracer completions zsh > \"${fpath[1]}/_tracer\"
  tracer completions fish > ~/.config/fish/completions/tracer.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tracer man > /usr/local/share/man/man1/tracer.1
  tracer man watch | man -l -")]
pub struct ManArgs {
    /// The command whose page to write (`watch` writes tracer-watch(1)). Default: tracer(1).
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "tracer", &mut out);
    crate::output::print(&String::from_utf8_lossy(&out)).context("writing the completions")
}

pub fn man(args: &ManArgs) -> Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => {
            let Some(sub) = cmd.find_subcommand(name) else {
                let known: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
                bail!("no command {name:?} (there are: {})", known.join(", "));
            };
            // Its page is tracer-NAME(1), as git's and cargo's are.
            sub.clone().name(format!("tracer-{name}"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .context("rendering the man page")?;
    crate::output::print(&String::from_utf8_lossy(&out)).context("writing the man page")
}
