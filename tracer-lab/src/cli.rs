//! The `tracer-lab` binary's command line, reached as `tracer lab ...` and `tracer demo ...`:
//! build, inspect, drive and remove lab cluster networks, and run the demo. It is the one place
//! errors become a message and an exit status.

use std::{fmt::Write as _, os::unix::process::CommandExt, process::ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use tracer::output::print;

use crate::{
    self as lab, checks,
    scenarios::{self, SCENARIOS, UNSUPPORTED},
    state::{State, teardown},
};

const DEFAULT_PREFIX: &str = "lab";

/// Build and drive a cluster network in namespaces, with real firewalld, VXLAN and BGP.
///
/// The lab is tracer's test bed: it is not needed on a node, and nothing it builds leaves the
/// network namespaces it creates.
#[derive(Debug, Parser)]
#[command(
    name = "tracer lab",
    bin_name = "tracer lab",
    version,
    max_term_width = 100
)]
struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

/// Watch tracer find a misconfiguration in a lab it builds, then remove the lab.
#[derive(Debug, Parser)]
#[command(
    name = "tracer demo",
    bin_name = "tracer demo",
    version,
    max_term_width = 100
)]
struct DemoCli {
    #[command(flatten)]
    args: crate::demo::DemoArgs,
}

/// `tracer-lab demo ARGS` runs the demo (`tracer demo ARGS`); anything else is a lab command
/// (`tracer lab ARGS`).
pub fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = if argv.get(1).is_some_and(|a| a == "demo") {
        argv.remove(1);
        crate::demo::run(&DemoCli::parse_from(argv).args)
    } else {
        run(LabArgs::parse_from(argv))
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tracer: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Build a lab: namespaces for a controller, two workers and their pods, a switch, real
    /// firewalld on every node, the scenario's overlay (VXLAN or BGP).
    #[command(
        after_help = "Example:\n  sudo tracer lab up --scenario calico-vxlan-blocked\n  sudo tracer lab check\n  sudo tracer lab exec worker-2 -- tracer watch\n  sudo tracer lab down"
    )]
    Up {
        /// Scenario to build (see `tracer lab scenarios`).
        #[arg(long, short)]
        scenario: String,
        /// Name of this lab; its namespaces are called PREFIX-controller-1 and so on.
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
    /// Remove a lab: its daemons, namespaces (with their firewall rules) and files. Works after
    /// a crash of `lab up` too.
    Down {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// Remove every lab.
        #[arg(long, conflicts_with = "prefix")]
        all: bool,
    },
    /// Show the labs that exist, their nodes and daemons.
    Status {
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Run a command in a node (controller-1, worker-1, worker-2, pod-worker-1, pod-worker-2,
    /// switch): its network namespace, with firewall-cmd reaching the node's firewalld and
    /// tracer reading the node's configuration.
    Exec {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        node: String,
        /// The command, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Send the cluster's traffic mix for a while: workers to the API server and konnectivity,
    /// the controller to kubelets, pod to pod over the overlay, services.
    Traffic {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Monitor the lab as a cluster: a tracer on every node serving metrics on the node's
    /// address, and a real Prometheus in the switch's namespace scraping them with tracer's
    /// shipped rules. `lab down` stops them.
    #[command(
        after_help = "Example:\n  sudo tracer lab up --scenario underlay-loss\n  sudo tracer lab monitor\n  sudo tracer lab traffic --seconds 120\n  sudo tracer --netns lab-switch cluster --prometheus http://127.0.0.1:9090"
    )]
    Monitor {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
    /// Try every flow of the lab once and say which work; exit status 1 when a flow does
    /// something other than the scenario intends.
    Check {
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
    },
    /// List the scenarios.
    Scenarios,
    /// Serve the cluster's TCP ports inside a node (started by `lab up`).
    #[command(hide = true)]
    Serve {
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
    },
}

fn run(args: LabArgs) -> Result<ExitCode> {
    match args.command {
        LabCommand::Scenarios => {
            print(&scenarios_text())?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Serve { ports } => lab::serve::serve(&ports).map(|()| ExitCode::SUCCESS),
        LabCommand::Up { scenario, prefix } => up(&scenario, &prefix),
        LabCommand::Down { prefix, all } => down(prefix, all),
        LabCommand::Status { prefix } => status(prefix.as_deref()),
        LabCommand::Exec {
            prefix,
            node,
            command,
        } => exec(&prefix, &node, &command),
        LabCommand::Traffic { prefix, seconds } => {
            let s = lab_scenario(&prefix)?;
            eprintln!("Sending {}'s traffic mix for {seconds}s...", s.name);
            let (ok, failed) = checks::traffic(&prefix, s, seconds);
            print(&format!("{ok} flows answered, {failed} failed\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Check { prefix } => check(&prefix),
        LabCommand::Monitor { prefix } => {
            lab::require_root()?;
            let url = lab::monitor::start(&prefix)?;
            let switch = lab::net::switch_ns(&prefix);
            eprintln!(
                "Lab {prefix:?} is monitored: a tracer on every node, Prometheus at {url} in namespace {switch}. Next: `tracer lab traffic --prefix {prefix} --seconds 120`, then `tracer --netns {switch} cluster --prometheus {url}`."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `lab scenarios`: one line a scenario, then the profiles the lab cannot build.
fn scenarios_text() -> String {
    let mut text = String::new();
    for s in SCENARIOS {
        let kind = if s.fault.is_some() {
            "broken "
        } else {
            "healthy"
        };
        let _ = writeln!(
            text,
            "{:<22} {kind} {:<16} {}",
            s.name, s.profile, s.summary
        );
    }
    for (p, why) in UNSUPPORTED {
        let _ = writeln!(text, "{p:<22} -       {p:<16} not available: {why}");
    }
    text
}

fn up(scenario: &str, prefix: &str) -> Result<ExitCode> {
    lab::require_root()?;
    let s = scenarios::find(scenario).map_err(anyhow::Error::msg)?;
    eprintln!("Building lab {prefix:?}: {}", s.summary);
    lab::up(prefix, s, &|step| eprintln!("  {step}"))?;
    let outcomes = checks::run_all(prefix, s);
    print(&outcomes_text(&outcomes, false))?;
    eprintln!(
        "Lab {prefix:?} is up. Next: `tracer lab exec --prefix {prefix} {} -- tracer watch`, `tracer lab traffic --prefix {prefix}`, `tracer lab down --prefix {prefix}`.",
        s.affected_node
    );
    Ok(ExitCode::SUCCESS)
}

fn down(prefix: String, all: bool) -> Result<ExitCode> {
    lab::require_root()?;
    let prefixes: Vec<String> = if all {
        State::all().into_iter().map(|s| s.prefix).collect()
    } else {
        vec![prefix]
    };
    if prefixes.is_empty() {
        eprintln!("No lab to remove.");
    }
    for p in prefixes {
        match teardown(&p)? {
            Some(r) => eprintln!(
                "Lab {p:?} removed: {} processes stopped, {} namespaces deleted.",
                r.processes, r.namespaces
            ),
            None => eprintln!("No lab named {p:?} (see `tracer lab status`): nothing to remove."),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Replaces this process with `command` in the node's namespace; returns only on failure.
fn exec(prefix: &str, node: &str, command: &[String]) -> Result<ExitCode> {
    let shell = lab::node_shell(prefix, node)?;
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &shell.netns]).args(command);
    for (k, v) in shell.env {
        cmd.env(k, v);
    }
    let err = cmd.exec();
    Err(err).context("running ip netns exec")
}

fn check(prefix: &str) -> Result<ExitCode> {
    let s = lab_scenario(prefix)?;
    let outcomes = checks::run_all(prefix, s);
    let repaired = s.fault.is_some() && outcomes.iter().all(|o| o.ok);
    let mut text = outcomes_text(&outcomes, repaired);
    let surprises = outcomes.iter().filter(|o| o.ok != o.expected_ok).count();
    if repaired {
        let _ = writeln!(
            text,
            "Every flow works: the fault of scenario {} is repaired.",
            s.name
        );
    } else if surprises == 0 {
        let _ = writeln!(text, "Every flow behaves as scenario {} intends.", s.name);
    } else {
        let _ = writeln!(
            text,
            "{surprises} flows do not behave as scenario {} intends.",
            s.name
        );
    }
    print(&text)?;
    Ok(if surprises == 0 || repaired {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn lab_scenario(prefix: &str) -> Result<&'static scenarios::Scenario> {
    let st = State::load(prefix)?
        .with_context(|| format!("no lab named {prefix:?}; build one with `tracer lab up`"))?;
    if !st.ready {
        bail!(
            "lab {prefix:?} is not ready (its `lab up` did not finish); remove it with `tracer lab down --prefix {prefix}`"
        );
    }
    scenarios::find(&st.scenario).map_err(anyhow::Error::msg)
}

/// One line per flow; `repaired`: every flow works, those the fault broke included.
fn outcomes_text(outcomes: &[checks::Outcome], repaired: bool) -> String {
    let mut text = String::new();
    for o in outcomes {
        let mark = if o.ok { "ok  " } else { "FAIL" };
        let note = match (o.ok, o.expected_ok) {
            (false, false) => " (the scenario's fault)",
            (true, false) if repaired => " (repaired)",
            (true, false) => " (UNEXPECTED: the fault should break this)",
            (false, true) => " (UNEXPECTED)",
            (true, true) => "",
        };
        let detail = if o.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", o.detail)
        };
        let _ = writeln!(text, "{mark} {}{detail}{note}", o.name);
    }
    text
}

fn status(prefix: Option<&str>) -> Result<ExitCode> {
    let labs: Vec<State> = match prefix {
        Some(p) => State::load(p)?.into_iter().collect(),
        None => State::all(),
    };
    let mut text = String::new();
    if labs.is_empty() {
        text.push_str("No lab. Build one with `tracer lab up --scenario NAME` (see `tracer lab scenarios`).\n");
    }
    for st in labs {
        let ready = if st.ready {
            "ready"
        } else {
            "NOT READY (lab up did not finish; run lab down)"
        };
        let _ = writeln!(
            text,
            "lab {:?}: scenario {}, {ready}",
            st.prefix, st.scenario
        );
        let _ = writeln!(text, "  namespaces: {}", st.namespaces.join(" "));
        for (node, what, alive) in lab::daemons_alive(&st) {
            let _ = writeln!(
                text,
                "  {node:<14} {what:<12} {}",
                if alive { "running" } else { "GONE" }
            );
        }
    }
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}
