//! `tracer demo`: the tool finding a real misconfiguration with nothing but this machine. It
//! builds a broken lab scenario, drives the cluster's traffic through it, watches the affected
//! node with the tracer, says in plain words what it saw, and removes the lab, also when
//! interrupted.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead, BufReader},
    process::{Command, ExitCode, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Args;

use tracer::{
    probes::preflight,
    schema::{DiagnoseLine, Direction, DropLine, Finding, Severity, WatchLine},
};

use crate::{
    self as lab, checks,
    net::node_ns,
    scenarios::{self, DEMO_DEFAULT, Scenario},
    state::teardown,
};

const PREFIX: &str = "demo";

/// Prints a line; a closed stdout must not stop the demo before it removes its lab.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Removes the demo's lab when dropped: at the end, on an error, on a panic, and when
/// interrupted (also with `--keep`: an interrupted demo leaves nothing behind).
struct Lab {
    /// `--keep`: the node to suggest exploring, the scenario's affected one.
    keep: Option<&'static str>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(node) = self.keep.filter(|_| !interrupted()) {
            say!(
                "\nThe lab stays up: explore it with `tracer lab exec --prefix {PREFIX} {node} -- ...`, remove it with `tracer lab down --prefix {PREFIX}`."
            );
            return;
        }
        match teardown(PREFIX) {
            Ok(None) => {}
            Ok(Some(r)) => say!(
                "\nLab removed ({} processes stopped, {} namespaces deleted).",
                r.processes,
                r.namespaces
            ),
            Err(e) => eprintln!(
                "tracer: removing the demo lab: {e:#}; run `tracer lab down --prefix {PREFIX}`"
            ),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Scenarios: `tracer lab scenarios`. The demo needs root (it builds network namespaces and loads eBPF programs); it changes nothing outside the namespaces it creates."
)]
pub struct DemoArgs {
    /// The scenario to run (a broken one shows the most).
    #[arg(long, short, default_value = DEMO_DEFAULT)]
    scenario: String,
    /// Seconds to watch the traffic.
    #[arg(long, default_value_t = 8)]
    seconds: u32,
    /// Leave the lab up afterwards (remove it with `tracer lab down --prefix demo`).
    #[arg(long)]
    keep: bool,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    preflight::privileges()?;
    preflight::bpf_syscall()?;
    preflight::btf().context("the demo shows drops, which needs BTF")?;
    let s = scenarios::find(&args.scenario).map_err(anyhow::Error::msg)?;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    if lab::exists(PREFIX) {
        say!("Removing the lab a previous demo left behind.");
        teardown(PREFIX)?;
    }
    let _lab = Lab {
        keep: args.keep.then_some(s.affected_node),
    };
    demo(s, args)
}

fn demo(s: &Scenario, args: &DemoArgs) -> Result<ExitCode> {
    say!("tracer demo: {}\n", s.summary);
    say!(
        "1. Building a {} cluster network in namespaces: controller-1, worker-1, worker-2, a pod behind each worker,",
        s.profile
    );
    say!(
        "   real firewalld on every node as the distribution's guide sets it up, and the provider's overlay."
    );
    lab::up(PREFIX, s, &|step| say!("   - {step}"))?;
    if interrupted() {
        return Ok(ExitCode::FAILURE);
    }
    say!("\n2. Trying each flow the cluster needs once:");
    let outcomes = checks::run_all(PREFIX, s);
    say_outcomes(&outcomes);
    let failing: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.name.as_str())
        .collect();
    say!(
        "\n3. Sending the cluster's traffic for {}s and watching {} with tracer (its eBPF programs count every packet",
        args.seconds,
        s.affected_node
    );
    say!("   per class and see every packet the kernel drops, with the reason):\n");
    let lines = watch(s, args)?;
    if interrupted() {
        return Ok(ExitCode::FAILURE);
    }
    say!("\n4. What tracer found on {}:\n", s.affected_node);
    explain_findings(s, &lines, &failing);
    if interrupted() || failing.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    say!("\n5. Why, and the fix (`tracer diagnose` on every node):\n");
    let mut fixes: Vec<(String, Vec<String>)> = Vec::new();
    for node in s.nodes() {
        let findings = diagnose(node)?;
        let errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        for f in &errors {
            say!("   {}: {}", node, f.title);
            if let Some(zone) = &f.zone {
                let binding = f
                    .binding
                    .as_ref()
                    .map(|b| format!(" (chosen by {b})"))
                    .unwrap_or_default();
                say!("     zone: {zone}{binding}");
            }
            if let Some(element) = &f.element {
                say!("     cause: {element}");
            }
            if let Some(rule) = &f.rule {
                say!(
                    "     rule: {} {} {} #{}: {}",
                    rule.family,
                    rule.table,
                    rule.chain,
                    rule.handle,
                    rule.text
                );
            }
            for cmd in &f.fix {
                say!("     fix:  {cmd}");
            }
        }
        let commands = lab::findings_fixes(errors.iter().copied());
        if !commands.is_empty() {
            fixes.push((node.to_string(), commands));
        }
    }
    if fixes.is_empty() || interrupted() {
        return Ok(ExitCode::SUCCESS);
    }
    say!("\n6. Applying those fixes in the lab, then trying every flow again:\n");
    for (node, commands) in &fixes {
        for cmd in commands {
            let said = |line: &str| say!("   {line}");
            if let Err(e) = lab::apply_fix(PREFIX, node, cmd, &said) {
                say!("     failed: {e:#}");
            }
        }
    }
    say!("");
    say_outcomes(&checks::run_all(PREFIX, s));
    Ok(ExitCode::SUCCESS)
}

/// One line per flow the lab tried: `ok` or `FAIL`, and its name.
fn say_outcomes(outcomes: &[checks::Outcome]) {
    for o in outcomes {
        say!("   {} {}", if o.ok { "ok  " } else { "FAIL" }, o.name);
    }
}

/// `tracer diagnose --output json` inside a lab node: its findings.
fn diagnose(node: &str) -> Result<Vec<Finding>> {
    let shell = lab::node_shell(PREFIX, node)?;
    let out = Command::new(crate::exe::tracer()?)
        .args(["--netns", &shell.netns, "diagnose", "--output", "json"])
        .envs(shell.env)
        .output()
        .context("running tracer diagnose")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(DiagnoseLine::Finding(f)) => Some(f),
            _ => None,
        })
        .collect())
}

/// Runs `tracer watch` in the affected node while the traffic runs; shows a line a second.
fn watch(s: &Scenario, args: &DemoArgs) -> Result<Vec<WatchLine>> {
    let exe = crate::exe::tracer()?;
    let shell = lab::node_shell(PREFIX, s.affected_node)?;
    let mut cmd = Command::new(&exe);
    cmd.args([
        "--netns",
        &node_ns(PREFIX, s.affected_node),
        "watch",
        "--output",
        "json",
        "--interval",
        "1",
    ])
    .args(["--duration", &args.seconds.to_string()])
    .envs(shell.env)
    .stdout(Stdio::piped());
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("starting tracer watch")?;
    let traffic_secs = f64::from(args.seconds) + 1.0;
    let name = s.name;
    // The traffic starts once the tracer says it is attached (its `start` line; `--duration`
    // counts from there), however long loading its programs takes on a busy machine.
    let mut traffic = None;
    let mut lines = Vec::new();
    // Cumulative ingress packets per class, and drops per flow, for the live line.
    let mut inbound: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    let stdout = child.stdout.take().expect("piped");
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last_shown = std::time::Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if interrupted() {
            let _ = child.kill();
            break;
        }
        let Ok(v) = serde_json::from_str::<WatchLine>(&line) else {
            continue;
        };
        if traffic.is_none() && matches!(v, WatchLine::Start(_)) {
            traffic = Some(std::thread::spawn(move || {
                checks::traffic(
                    PREFIX,
                    scenarios::find(name).expect("a known scenario"),
                    traffic_secs,
                )
            }));
        }
        match &v {
            WatchLine::Counters(c) if c.direction == Direction::Ingress && c.class != "other" => {
                inbound.insert(c.class.clone(), c.packets);
            }
            WatchLine::Drop(d) => {
                dropped.insert(flow_key(d), d.count);
            }
            _ => {}
        }
        if matches!(v, WatchLine::Counters(_) | WatchLine::Drop(_))
            && last_shown.elapsed() >= Duration::from_millis(900)
        {
            last_shown = std::time::Instant::now();
            let classes: Vec<String> = inbound.iter().map(|(c, n)| format!("{c} {n}")).collect();
            let drops: u64 = dropped.values().sum();
            let text = format!("   packets in: {} | dropped: {drops}", classes.join(", "));
            if tty {
                use std::io::Write as _;
                let mut stdout = std::io::stdout();
                let _ = write!(stdout, "\r{text:<110}");
                let _ = stdout.flush();
            } else {
                say!("{text}");
            }
        }
        lines.push(v);
    }
    say!("");
    let status = child.wait()?;
    if let Some(traffic) = traffic {
        let _ = traffic.join();
    }
    if !status.success() && !interrupted() {
        anyhow::bail!("tracer watch failed ({status})");
    }
    Ok(lines)
}

/// What tells one dropped flow from another: its line without the count.
fn flow_key(d: &DropLine) -> String {
    serde_json::to_string(&DropLine {
        count: 0,
        ..d.clone()
    })
    .expect("a drop line serializes")
}

/// The last count of each dropped flow.
fn drop_flows(lines: &[WatchLine]) -> Vec<&DropLine> {
    let mut last: BTreeMap<String, &DropLine> = BTreeMap::new();
    for l in lines {
        if let WatchLine::Drop(d) = l {
            last.insert(flow_key(d), d);
        }
    }
    let mut flows: Vec<&DropLine> = last.into_values().collect();
    flows.sort_by_key(|f| std::cmp::Reverse(f.count));
    flows
}

fn explain_findings(s: &Scenario, lines: &[WatchLine], failing: &[&str]) {
    let Some(summary) = lines.iter().rev().find_map(|l| match l {
        WatchLine::Summary(s) => Some(s),
        _ => None,
    }) else {
        say!("   tracer printed no summary.");
        return;
    };
    // Drops that are network loss, not sockets tidying up their queues.
    let mut totals: Vec<_> = summary
        .drops
        .iter()
        .flatten()
        .filter(|d| !d.reason.is_housekeeping())
        .collect();
    totals.sort_by_key(|d| std::cmp::Reverse(d.count));
    if totals.is_empty() {
        say!("   No packet was dropped on {}.", s.affected_node);
    }
    let flows = drop_flows(lines);
    for t in totals.iter().take(3) {
        let (class, reason) = (&t.class, &t.reason);
        say!(
            "   - {} dropped {} {class} packets arriving on {}, reason {reason}:",
            s.affected_node,
            t.count,
            t.iface
        );
        if let Some(why) = reason.explain() {
            say!("     {why}.");
        }
        for f in flows
            .iter()
            .filter(|f| &f.class == class && &f.reason == reason)
            .take(3)
        {
            let mut line = format!("     {} x{}", f.flow, f.count);
            if let Some(inner) = &f.inner {
                let _ = write!(line, ", carrying {} ({})", inner.flow, inner.class);
            }
            if let Some(func) = &f.function {
                let _ = write!(line, ", dropped in {func}");
            }
            say!("{line}");
        }
    }
    // Classes that arrive but never answer: the other half of the conversation is missing.
    let counters = &summary.counters;
    let count = |class: &str, dir: Direction| -> u64 {
        counters
            .iter()
            .filter(|c| c.class == class && c.direction == dir)
            .map(|c| c.packets)
            .sum()
    };
    for c in counters
        .iter()
        .filter(|c| c.direction == Direction::Ingress)
    {
        let class = c.class.as_str();
        if class != "other" && class != "malformed" && count(class, Direction::Egress) == 0 {
            say!(
                "   - {class} traffic arrives ({} packets) but none leaves: nothing answers it.",
                count(class, Direction::Ingress)
            );
        }
    }
    if !failing.is_empty() {
        say!("\n   Flows that failed in step 2: {}.", failing.join("; "));
    }
    say!(
        "\n   The firewall of {} as firewalld reports it (`firewall-cmd --list-all`):",
        s.affected_node
    );
    if let Ok(text) = lab::firewall_cmd(PREFIX, s.affected_node, &["--list-all-zones"]) {
        for zone in text.split("\n\n").filter(|z| z.contains("(active)")) {
            for l in zone.lines().filter(|l| {
                let t = l.trim_start();
                t.contains("(active)")
                    || [
                        "interfaces:",
                        "sources:",
                        "services:",
                        "ports:",
                        "masquerade:",
                    ]
                    .iter()
                    .any(|k| t.starts_with(k))
            }) {
                say!("     {l}");
            }
        }
    }
}
