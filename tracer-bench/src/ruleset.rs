//! Section 5b: the firewall model on a big ruleset. A firewalld-like inet table of exactly
//! 10,000 rules (input chain, a zone dispatch chain, 40 zones with firewalld's
//! pre/log/deny/allow/post chains, ports and rich rules) is loaded by the real `nft -f` in a
//! scratch namespace and listed back with `nft -j list ruleset`, so the model parses what the
//! kernel really reports. Then every flow of the `generic` catalog (one packet per component
//! port, arriving on the last zone's interface: the longest dispatch) is evaluated.

use std::{fmt::Write, net::IpAddr, time::Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use tracer::model::{
    catalog::Catalog,
    nft::{Hook, Packet, Ruleset, Verdict, evaluate},
};

use crate::{netns, report::median};

const RULES: usize = 10_000;
const ZONES: usize = 40;
/// Rules of a zone's own chain (the jumps, ICMP accept, final reject) and its deny chain.
const ZONE_RULES: usize = 9;
const DENY_RULES: usize = 2;
const INPUT_RULES: usize = 6;
/// Ranges up to this many ports get a packet per port; wider ones one at each end.
const EXPAND_UP_TO: u32 = 16;

#[derive(Debug, Serialize)]
pub struct Results {
    pub rules: usize,
    pub json_bytes: usize,
    pub parse_ms: f64,
    pub flows: usize,
    /// Evaluating every flow once, median of `rounds`.
    pub evaluate_all_ms: f64,
    pub per_flow_us: f64,
    pub rounds: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub dropped: usize,
    pub unknown: usize,
}

pub fn run_section(rounds: usize) -> Result<Results> {
    eprintln!("[ruleset] {RULES} rules: nft -f in a scratch namespace, nft -j list ruleset");
    let text = firewalld_like();
    let json = {
        let ns = netns::create("nft")?;
        ns.nft(&text)?;
        ns.exec(&["nft", "-j", "list", "ruleset"])?
    };
    let mut parse_ms = Vec::new();
    let mut ruleset = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let rs = Ruleset::from_json(&json, "nft -j list ruleset")?;
        parse_ms.push(started.elapsed().as_secs_f64() * 1e3);
        ruleset = Some(rs);
    }
    let ruleset = ruleset.expect("at least one round");
    if ruleset.rule_count() != RULES {
        bail!(
            "the generated ruleset has {} rules, not {RULES}",
            ruleset.rule_count()
        );
    }
    let flows = flows(&format!("eth{}", ZONES - 1))?;
    let mut eval_ms = Vec::new();
    let mut verdicts = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        verdicts = flows
            .iter()
            .map(|p| evaluate(&ruleset, p).verdict)
            .collect();
        eval_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let count = |f: fn(&Verdict) -> bool| verdicts.iter().filter(|v| f(v)).count();
    let evaluate_all_ms = median(&eval_ms);
    let results = Results {
        rules: ruleset.rule_count(),
        json_bytes: json.len(),
        parse_ms: median(&parse_ms),
        flows: flows.len(),
        evaluate_all_ms,
        per_flow_us: evaluate_all_ms * 1e3 / flows.len().max(1) as f64,
        rounds,
        accepted: count(|v| *v == Verdict::Accept),
        rejected: count(|v| *v == Verdict::Reject),
        dropped: count(|v| *v == Verdict::Drop),
        unknown: count(|v| matches!(v, Verdict::Unknown(_))),
    };
    eprintln!(
        "[ruleset] parsed {} KiB in {:.1} ms; {} flows evaluated in {:.2} ms ({} accepted, {} rejected, {} unknown)",
        results.json_bytes / 1024,
        results.parse_ms,
        results.flows,
        results.evaluate_all_ms,
        results.accepted,
        results.rejected,
        results.unknown
    );
    Ok(results)
}

/// One new packet per port of every component of the generic catalog, to the node on `iif`.
fn flows(iif: &str) -> Result<Vec<Packet>> {
    let catalog = Catalog::builtin("generic")?;
    let ip = |s: &str| -> IpAddr { s.parse().expect("address literal") };
    let packet = |l4proto: u8, dport: u16| {
        let (from, to) = (ip("192.168.10.21"), ip("192.168.10.11"));
        Packet::new_connection(Hook::Input, iif, from, to, l4proto, 40000, dport)
    };
    let mut out = Vec::new();
    for c in &catalog.components {
        for proto in &c.protocols {
            if !proto.has_ports() {
                out.push(packet(proto.number(), 0));
                continue;
            }
            for r in &c.ports {
                let ports: Vec<u16> = if r.width() <= EXPAND_UP_TO {
                    (r.lo..=r.hi).collect()
                } else {
                    vec![r.lo, r.hi]
                };
                out.extend(ports.into_iter().map(|p| packet(proto.number(), p)));
            }
        }
    }
    Ok(out)
}

/// The ruleset, in `nft -f` syntax: firewalld 1.3's input path with `ZONES` zones, filled
/// with allow rules up to exactly `RULES` rules. The last zone opens the cluster's ports.
fn firewalld_like() -> String {
    let dispatch = ZONES * 2 + 1;
    let fixed = INPUT_RULES + dispatch + ZONES * (ZONE_RULES + DENY_RULES);
    let allow_total = RULES - fixed;
    let mut t = String::from("table inet bnfw {\n");
    t.push_str(
        "chain filter_INPUT {\n type filter hook input priority filter + 10; policy accept;\n\
         ct state { established, related } accept\n ct status dnat accept\n iifname \"lo\" accept\n\
         ct state invalid drop\n jump filter_INPUT_ZONES\n reject with icmpx admin-prohibited\n}\n",
    );
    t.push_str("chain filter_INPUT_POLICIES_pre {\n}\nchain filter_INPUT_POLICIES_post {\n}\n");
    t.push_str("chain filter_INPUT_ZONES {\n");
    for z in 0..ZONES {
        let _ = writeln!(t, " ip saddr 10.{}.0.0/16 goto filter_IN_z{z}", 100 + z);
        let _ = writeln!(t, " iifname \"eth{z}\" goto filter_IN_z{z}");
    }
    t.push_str(" goto filter_IN_z0\n}\n");
    let cluster: [(&str, u16); 8] = [
        ("tcp", 6443),
        ("tcp", 10250),
        ("udp", 4789),
        ("tcp", 2379),
        ("tcp", 2380),
        ("tcp", 179),
        ("tcp", 8132),
        ("tcp", 9443),
    ];
    let mut port = 30_001u32;
    for z in 0..ZONES {
        let _ = write!(
            t,
            "chain filter_IN_z{z} {{\n jump filter_INPUT_POLICIES_pre\n jump filter_IN_z{z}_pre\n\
             jump filter_IN_z{z}_log\n jump filter_IN_z{z}_deny\n jump filter_IN_z{z}_allow\n\
             jump filter_IN_z{z}_post\n jump filter_INPUT_POLICIES_post\n\
             meta l4proto {{ icmp, ipv6-icmp }} accept\n reject with icmpx admin-prohibited\n}}\n"
        );
        for chain in ["pre", "log", "post"] {
            let _ = writeln!(t, "chain filter_IN_z{z}_{chain} {{\n}}");
        }
        let _ = write!(
            t,
            "chain filter_IN_z{z}_deny {{\n ip saddr 203.0.113.{z} drop\n ip6 saddr 2001:db8::{z:x} drop\n}}\n"
        );
        // Spread the allow rules evenly; the first zones take the remainder.
        let n = allow_total / ZONES + usize::from(z < allow_total % ZONES);
        let _ = writeln!(t, "chain filter_IN_z{z}_allow {{");
        for i in 0..n {
            if z == ZONES - 1 && i < cluster.len() {
                let (proto, p) = cluster[i];
                let _ = writeln!(t, " {proto} dport {p} accept");
                continue;
            }
            let p = 30_001 + (port - 30_001) % 35_000;
            port += 1;
            let _ = match i % 4 {
                0 | 1 => writeln!(t, " tcp dport {p} accept"),
                2 => writeln!(t, " udp dport {p} accept"),
                _ => writeln!(
                    t,
                    " ip saddr 10.{}.{}.0/24 tcp dport {p} ct state {{ new, untracked }} accept",
                    z,
                    i % 250
                ),
            };
        }
        t.push_str("}\n");
    }
    t.push_str("}\n");
    t
}
