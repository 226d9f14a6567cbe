//! One case judged: the tracer's explanation of each probe against the kernel's trace, then
//! the printed fixes applied and proven, with the tally of a run.

use std::fmt::Write as _;
use std::net::IpAddr;

use tracer::findings::Inputs;
use tracer::findings::explain::{Explanation, explain_packet};
use tracer::model::catalog::{Catalog, Role};
use tracer::model::firewalld::{read_permanent, read_runtime_at};
use tracer::model::iptables::IptablesState;
use tracer::model::nft::{Hook, Packet, Ruleset};
use tracer::model::node::NodeFacts;

use super::cases::{self, Case};
use super::kernel::{KernelVerdict, RuleKey};
use super::node::{Node, Sent};

/// What the tracer reads once per node.
pub struct Facts {
    facts: NodeFacts,
    catalog: Catalog,
}

impl Facts {
    pub fn read(node: &Node) -> Facts {
        Facts {
            facts: node
                .fw
                .netns
                .enter(NodeFacts::read)
                .unwrap_or_else(|e| panic!("node facts: {e}")),
            catalog: Catalog::builtin("generic").expect("generic profile"),
        }
    }
}

/// The tally of a run.
#[derive(Debug, Default)]
pub struct Stats {
    /// Configurations applied.
    pub configs: u64,
    /// Configurations firewalld refused (not judged).
    pub skipped: u64,
    /// Packets judged.
    pub probes: u64,
    pub refused: u64,
    pub forwarded: u64,
    pub verdict_agree: u64,
    pub rule_agree: u64,
    pub element_ok: u64,
    /// Refused packets decided by firewalld's own table, by the kind of element.
    pub by_kind: std::collections::BTreeMap<String, u64>,
    pub fixes_tried: u64,
    pub fixes_pass: u64,
    /// Other packets whose verdict a fix changed although it should not have.
    pub collateral: u64,
    /// Of those, by fixes whose first command is for a rule outside firewalld.
    pub collateral_outside: u64,
    /// Other packets a fix was allowed to change (same rule, same port) and did.
    pub siblings_opened: u64,
    pub failures: Vec<String>,
}

impl Stats {
    pub fn add(&mut self, o: Stats) {
        self.configs += o.configs;
        self.skipped += o.skipped;
        self.probes += o.probes;
        self.refused += o.refused;
        self.forwarded += o.forwarded;
        self.verdict_agree += o.verdict_agree;
        self.rule_agree += o.rule_agree;
        self.element_ok += o.element_ok;
        for (k, v) in o.by_kind {
            *self.by_kind.entry(k).or_default() += v;
        }
        self.fixes_tried += o.fixes_tried;
        self.fixes_pass += o.fixes_pass;
        self.collateral += o.collateral;
        self.collateral_outside += o.collateral_outside;
        self.siblings_opened += o.siblings_opened;
        self.failures.extend(o.failures);
    }

    pub fn summary(&self) -> String {
        format!(
            "{} configurations ({} refused by firewalld, not judged), {} packets ({} refused, {} forwarded): verdict agrees {}/{}, deciding rule agrees {}/{}, element consistent {}/{}; fixes proven {}/{}, collateral verdict changes {} ({} by fixes of rules outside firewalld; siblings opened {})",
            self.configs,
            self.skipped,
            self.probes,
            self.refused,
            self.forwarded,
            self.verdict_agree,
            self.probes,
            self.rule_agree,
            self.probes,
            self.element_ok,
            self.probes,
            self.fixes_pass,
            self.fixes_tried,
            self.collateral,
            self.collateral_outside,
            self.siblings_opened
        )
    }

    pub fn report(&self) -> String {
        let mut s = self.summary() + "\nrefused packets by deciding element:\n";
        for (k, v) in &self.by_kind {
            let _ = writeln!(s, "  {k}: {v}");
        }
        for f in &self.failures {
            let _ = writeln!(s, "{f}");
        }
        s
    }
}

fn packet(s: &Sent) -> Packet {
    let p = &s.probe;
    let hook = if p.forward {
        Hook::Forward
    } else {
        Hook::Input
    };
    let (sport, dport) = if p.proto == 1 {
        (0, 0)
    } else {
        (s.sport, p.dport)
    };
    Packet {
        oif: p.oif().map(str::to_string),
        icmp_type: (p.proto == 1).then_some(8),
        ..Packet::new_connection(
            hook,
            p.iif(),
            IpAddr::V4(p.saddr),
            IpAddr::V4(p.daddr),
            p.proto,
            sport,
            dport,
        )
    }
}

/// The tracer's explanation of every probe, read the way the node binary reads a node.
fn explain_all(node: &Node, facts: &Facts, ruleset: &Ruleset, sent: &[&Sent]) -> Vec<Explanation> {
    let permanent = read_permanent(node.dir());
    let runtime = read_runtime_at(&node.bus()).unwrap_or_else(|e| panic!("runtime: {e}"));
    let iptables = IptablesState::default();
    let roles = [Role::Worker];
    let inp = Inputs {
        catalog: &facts.catalog,
        roles: &roles,
        facts: std::borrow::Cow::Borrowed(&facts.facts),
        cluster: None,
        permanent: Some(&permanent),
        runtime: runtime.as_ref(),
        runtime_known: true,
        ruleset: Some(ruleset),
        iptables: &iptables,
        iptables_cmd: None,
        guesses: None,
    };
    sent.iter()
        .map(|s| explain_packet(&inp, &packet(s)))
        .collect()
}

fn same_rule(k: Option<&RuleKey>, e: &Explanation) -> bool {
    match (k, &e.rule) {
        (Some(k), Some(r)) => {
            k.family == r.family
                && k.table == r.table
                && k.chain == r.chain
                && k.handle == r.handle
                && k.legacy == r.backend.is_some()
        }
        (None, None) => true,
        _ => false,
    }
}

/// The owner a firewalld chain names: `zone NAME` or `policy NAME`.
fn owner_of_chain(chain: &str) -> Option<String> {
    let rest = chain
        .strip_prefix("filter_IN_")
        .or_else(|| chain.strip_prefix("filter_FWD_"))?;
    let strip = |s: &str| {
        ["_pre", "_log", "_deny", "_allow", "_post"]
            .iter()
            .find_map(|x| s.strip_suffix(x))
            .unwrap_or(s)
            .to_string()
    };
    Some(match rest.strip_prefix("policy_") {
        Some(p) => format!("policy {}", strip(p)),
        None => format!("zone {}", strip(rest)),
    })
}

/// Whether the tracer's element is consistent with the rule the kernel says decided; the kind
/// of element, for the tally.
fn element_check(k: &RuleKey, e: &Explanation) -> Result<String, String> {
    let el = e.element.clone().unwrap_or_default();
    if el.is_empty() || el.starts_with("unknown") {
        return Err(format!("element {el:?}"));
    }
    if k.family == "inet" && k.table == "firewalld" {
        let owner = owner_of_chain(&k.chain)
            .ok_or_else(|| format!("chain {} names no zone or policy", k.chain))?;
        if !el.contains(&owner) {
            return Err(format!(
                "the kernel's rule is {owner}'s, the element {el:?}"
            ));
        }
        let stage = ["_pre", "_deny", "_allow", "_post"]
            .iter()
            .any(|s| k.chain.ends_with(s));
        if let Some((_, rich)) = el.split_once("rich rule '") {
            let rich = rich.split("' of ").next().unwrap_or_default();
            for part in rich.split_whitespace() {
                let v = |key: &str| {
                    part.strip_prefix(key)
                        .map(|v| v.trim_matches('"').to_string())
                };
                if let Some(a) = v("address=")
                    && !k.text.contains(&a)
                {
                    return Err(format!(
                        "the rich rule names {a}, the kernel's rule is {}",
                        k.text
                    ));
                }
            }
            return Ok("rich rule".into());
        }
        if !stage {
            let ok = ["lacks", "target", "ICMP", "forward", "accepts no such"]
                .iter()
                .any(|w| el.contains(w));
            return if ok {
                Ok("target".into())
            } else {
                Err(format!("a zone chain's own rule, element {el:?}"))
            };
        }
        let kind = el.split_whitespace().next().unwrap_or_default().to_string();
        return Ok(kind);
    }
    if k.chain.ends_with("_direct") {
        return if el.contains("direct rule") {
            Ok("direct rule".into())
        } else {
            Err(format!("direct chain, element {el:?}"))
        };
    }
    if k.legacy {
        return if el.contains(&format!("iptables chain {}", k.chain))
            && el.contains("iptables-legacy")
        {
            Ok("iptables-legacy rule".into())
        } else {
            Err(format!(
                "a legacy rule of {} {}, element {el:?}",
                k.table, k.chain
            ))
        };
    }
    if el.contains(&format!("iptables chain {}", k.chain))
        || el.contains(&format!("chain {}", k.chain))
    {
        Ok("iptables rule".into())
    } else {
        Err(format!("a rule of {} {}, element {el:?}", k.table, k.chain))
    }
}

fn failure(case: &Case, what: &str) -> String {
    format!(
        "FAIL seed {}: {what}\n  replay: cargo xtask fwdiff --seed {}",
        case.seed, case.seed
    )
}

/// Judges one case on `node`; adds to `stats`.
pub fn run_case(node: &mut Node, facts: &Facts, seed: u64, stats: &mut Stats) {
    let case = cases::case(seed, node.net);
    if let Err(e) = node.apply(&case) {
        stats.skipped += 1;
        if std::env::var_os("FWDIFF_VERBOSE").is_some() {
            eprintln!("seed {seed}: firewalld refused the configuration: {e}");
        }
        return;
    }
    stats.configs += 1;
    let failures_before = stats.failures.len();
    if let Ok(dir) = std::env::var("FWDIFF_DUMP") {
        dump(node, &case, &format!("{dir}/{seed}"));
    }
    let ruleset = node.ruleset();
    let results = node.probe(&case.probes, &ruleset);
    let sent: Vec<&Sent> = results.iter().map(|(s, _)| s).collect();
    let expl = explain_all(node, facts, &ruleset, &sent);
    let mut fixable = Vec::new();
    for (i, ((s, k), e)) in results.iter().zip(&expl).enumerate() {
        let what = s.probe.describe();
        if let KernelVerdict::Pending(why) = k {
            stats.failures.push(failure(
                &case,
                &format!("{what}: no kernel verdict ({why})"),
            ));
            continue;
        }
        stats.probes += 1;
        stats.forwarded += u64::from(s.probe.forward);
        stats.refused += u64::from(k.refused());
        let tracer_verdict = e.verdict.split(':').next().unwrap_or_default();
        let mut bad = Vec::new();
        if tracer_verdict == k.word() {
            stats.verdict_agree += 1;
        } else {
            bad.push(format!(
                "verdict: kernel {} by {:?}, tracer {}",
                k.word(),
                k.rule().map(ToString::to_string),
                e.verdict
            ));
        }
        if same_rule(k.rule(), e) {
            stats.rule_agree += 1;
        } else {
            bad.push(format!(
                "deciding rule: kernel {}, tracer {}",
                k.rule().map_or("none".into(), ToString::to_string),
                e.rule.as_ref().map_or("none".into(), |r| format!(
                    "{} {} {} #{}: {}",
                    r.family, r.table, r.chain, r.handle, r.text
                ))
            ));
        }
        let kind = match k.rule() {
            Some(r) if r.handle != 0 => element_check(r, e),
            _ => Ok("policy".into()),
        };
        match kind {
            Ok(kind) => {
                stats.element_ok += 1;
                if k.refused() {
                    *stats.by_kind.entry(kind).or_default() += 1;
                }
            }
            Err(why) => bad.push(format!("element: {why}")),
        }
        if bad.is_empty() {
            if k.refused() {
                fixable.push(i);
            }
        } else {
            stats.failures.push(failure(
                &case,
                &format!("{what}: {}\n  tracer: {e:?}", bad.join("; ")),
            ));
        }
    }
    let _ = failures_before;
    // Fixes: up to two refused packets of different deciding rules.
    let mut tried_rules: Vec<RuleKey> = Vec::new();
    for i in fixable {
        let rule = results[i].1.rule().cloned();
        if tried_rules.len() >= 2 || rule.as_ref().is_some_and(|r| tried_rules.contains(r)) {
            continue;
        }
        tried_rules.extend(rule);
        prove_fix(node, &case, &results, i, &expl[i], stats);
        if let Err(e) = node.apply(&case) {
            stats.failures.push(failure(
                &case,
                &format!("restoring the case after a fix: {e}"),
            ));
            return;
        }
    }
}

/// Writes the case's files, iptables rules and nft listing to `dir`, for a look at a seed.
fn dump(node: &Node, case: &Case, dir: &str) {
    let _ = std::fs::create_dir_all(dir);
    let mut all = String::new();
    for (rel, text) in &case.files {
        let _ = writeln!(all, "==> {rel}\n{text}");
    }
    let _ = writeln!(all, "==> iptables-nft\n{}", case.iptables.join("\n"));
    for p in &case.probes {
        let _ = writeln!(all, "probe {}", p.describe());
    }
    let _ = std::fs::write(format!("{dir}/case.txt"), all);
    let nft = node
        .fw
        .netns
        .command(&["nft", "-a", "list", "ruleset"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let _ = std::fs::write(format!("{dir}/ruleset.nft"), nft);
}

/// What a fix opens beyond the rule that refused its packet, read from its commands: a port,
/// protocol or ICMP type opened for a whole zone (or policy) is opened for every packet that
/// zone's (or policy's) own chain refused, by its target; (chain, protocol, port range).
fn scope(case: &Case, fix: &[String]) -> Vec<(String, u8, (u16, u16))> {
    let mut out = Vec::new();
    for line in fix.iter().filter(|l| l.starts_with("firewall-cmd")) {
        let arg = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|v| v.trim_matches('\'').to_string())
        };
        let chains: Vec<String> = if let Some(z) = arg("--zone=") {
            vec![format!("filter_IN_{z}")]
        } else if let Some(p) = arg("--policy=") {
            vec![format!("filter_IN_policy_{p}")]
        } else if let Some(s) = arg("--service=") {
            case.files
                .iter()
                .filter(|(rel, text)| {
                    rel.starts_with("zones/") && text.contains(&format!("service name=\"{s}\""))
                })
                .map(|(rel, _)| {
                    format!(
                        "filter_IN_{}",
                        rel.trim_start_matches("zones/").trim_end_matches(".xml")
                    )
                })
                .collect()
        } else {
            continue;
        };
        let what = if let Some(p) = arg("--add-port=") {
            let (ports, proto) = p.split_once('/').unwrap_or_default();
            let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
            let proto = if proto == "tcp" { 6 } else { 17 };
            Some((proto, (lo.parse().unwrap_or(0), hi.parse().unwrap_or(0))))
        } else if line.contains("--add-icmp-block=echo-request")
            || line.contains("--remove-icmp-block=echo-request")
        {
            // An icmp-block is the zone's (or policy's) port for ICMP: removing it, or adding
            // it under icmp-block-inversion, opens echo-request to every packet of the zone.
            Some((1, (0, 0)))
        } else if line.contains("--add-rich-rule=") && !line.contains("source address=") {
            line.contains("icmp-type").then_some((1, (0, 0)))
        } else {
            None
        };
        if let Some((proto, range)) = what {
            out.extend(chains.into_iter().map(|c| (c, proto, range)));
        }
    }
    out
}

/// Applies the fix printed for probe `i`, and checks every probe again.
fn prove_fix(
    node: &mut Node,
    case: &Case,
    before: &[(Sent, KernelVerdict)],
    i: usize,
    e: &Explanation,
    stats: &mut Stats,
) {
    let what = before[i].0.probe.describe();
    let lines: Vec<&String> = e
        .fix
        .iter()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    if lines.is_empty() {
        stats.failures.push(failure(
            case,
            &format!("{what}: refused, and no fix printed ({:?})", e.element),
        ));
        return;
    }
    stats.fixes_tried += 1;
    for l in &lines {
        if let Err(err) = node.run_fix(l) {
            stats.failures.push(failure(
                case,
                &format!("{what}: fix line {l:?} failed: {err}"),
            ));
            return;
        }
    }
    let opened = scope(case, &e.fix);
    let ruleset = node.ruleset();
    let probes: Vec<_> = before.iter().map(|(s, _)| s.probe.clone()).collect();
    let after = node.probe(&probes, &ruleset);
    let (p, pk) = (&before[i].0.probe, &before[i].1);
    if matches!(after[i].1, KernelVerdict::Accept(_)) {
        stats.fixes_pass += 1;
    } else {
        stats.failures.push(failure(
            case,
            &format!(
                "{what}: after the fix {:?} the kernel says {} by {:?}",
                e.fix,
                after[i].1.word(),
                after[i].1.rule().map(ToString::to_string)
            ),
        ));
    }
    for (j, ((q, qk), (_, ak))) in before.iter().zip(&after).enumerate() {
        if j == i || qk.word() == ak.word() || matches!(ak, KernelVerdict::Pending(_)) {
            continue;
        }
        // The fix changes what the deciding rule does for this port: packets that rule refused
        // for this port may pass now, or meet the next rule that refuses them; and what a
        // zone or policy opens for the port, it opens for all its packets its target or its icmp-block refused.
        let same_rule =
            qk.rule() == pk.rule() && q.probe.proto == p.proto && q.probe.dport == p.dport;
        let in_scope = qk.rule().is_some_and(|r| {
            opened.iter().any(|(chain, proto, (lo, hi))| {
                // The zone's or policy's chain, or one of its own stages (an icmp-block's
                // reject is in `_deny`).
                let own = r.chain == *chain
                    || r.chain
                        .strip_prefix(chain.as_str())
                        .is_some_and(|s| ["_pre", "_log", "_deny", "_allow", "_post"].contains(&s));
                r.table == "firewalld"
                    && own
                    && q.probe.proto == *proto
                    && (*proto == 1 || (*lo <= q.probe.dport && q.probe.dport <= *hi))
            })
        });
        let sibling = qk.refused() && (same_rule || in_scope);
        if sibling {
            stats.siblings_opened += 1;
        } else {
            stats.collateral += 1;
            let outside = e
                .fix
                .first()
                .is_some_and(|l| l.starts_with("iptables") || l.starts_with("nft "));
            if outside {
                stats.collateral_outside += 1;
            }
            stats.failures.push(failure(
                case,
                &format!(
                    "the fix for {what} ({:?}) changed {}: {} by {:?} before, {} by {:?} after",
                    e.fix,
                    q.probe.describe(),
                    qk.word(),
                    qk.rule().map(ToString::to_string),
                    ak.word(),
                    ak.rule().map(ToString::to_string)
                ),
            ));
        }
    }
}
