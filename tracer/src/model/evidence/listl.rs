//! `iptables -L` read back into rules, best effort. Each rule line (`target prot opt [in out]
//! source destination options...`) becomes the `-A` line that prints it, for the matches the
//! listing spells unambiguously (ports, conntrack state, multiport, ipsets, address types,
//! marks, ICMP types, REJECT's answer, MARK's change). What it cannot spell back is kept as a
//! placeholder at its place (so positions stay right) and named as a gap: a host name
//! (`-L` without `-n` prints names, which would be resolved on the analysing machine, never
//! the node), a port name outside a few well-known ones, a match this does not read. Without
//! `-v` the listing hides every rule's interfaces: its first unconditional ACCEPT is taken
//! for what it nearly always is, `-i lo`, and every verdict it gives is only likely.

use super::iptables::{Restore, checked, save_command};
#[cfg(test)]
use super::scratch::Line;
use crate::model::nft::{Family, bounded};

/// Port names `-L` prints without `-n` (Debian's /etc/services), for the cluster's ports and
/// a few common ones; any other name is not guessed.
const PORT_NAMES: [(&str, u16); 9] = [
    ("ssh", 22),
    ("domain", 53),
    ("http", 80),
    ("www", 80),
    ("bgp", 179),
    ("https", 443),
    ("sge-qmaster", 6444),
    ("http-alt", 8080),
    ("webcache", 8080),
];

/// A port as `-L` prints it (`179`, `bgp`, `!22`), as a number (with its `!`).
fn port(p: &str) -> Option<String> {
    let (neg, p) = p.strip_prefix('!').map_or(("", p), |r| ("! ", r));
    let num = |q: &str| {
        q.parse::<u16>()
            .ok()
            .or_else(|| PORT_NAMES.iter().find(|(n, _)| *n == q).map(|(_, v)| *v))
    };
    if let Some((a, b)) = p.split_once(':') {
        return Some(format!("{neg}{}:{}", num(a)?, num(b)?));
    }
    Some(format!("{neg}{}", num(p)?))
}

/// An address column (`anywhere`, `0.0.0.0/0`, `10.0.0.0/8`, `!1.2.3.4`): the option, or
/// `Err` for a host name.
fn address(flag: &str, a: &str) -> Result<String, String> {
    let (neg, a) = a.strip_prefix('!').map_or(("", a), |r| ("! ", r));
    if matches!(a, "anywhere" | "0.0.0.0/0" | "::/0") {
        return Ok(String::new());
    }
    let addr = a.split('/').next().unwrap_or(a);
    if addr.parse::<std::net::IpAddr>().is_ok() {
        Ok(format!(" {neg}{flag} {a}"))
    } else {
        Err(format!(
            "{a} is a host name (iptables -L without -n): not resolved away from the node"
        ))
    }
}

/// The `-m`/`-j` options for a rule's option words; `Err` names the first it cannot read.
fn options(words: &[&str], proto: &str, target: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut target_opts = String::new();
    let mut i = 0;
    let word = |i: usize| words.get(i).copied().unwrap_or("");
    while i < words.len() {
        let w = word(i);
        match w {
            "/*" => {
                let end = words[i..]
                    .iter()
                    .position(|x| *x == "*/")
                    .map_or(words.len(), |e| i + e);
                let text = words[i + 1..end].join(" ").replace('"', "");
                out.push_str(&format!(" -m comment --comment \"{text}\""));
                i = end + 1;
                continue;
            }
            "ctstate" => out.push_str(&format!(" -m conntrack --ctstate {}", word(i + 1))),
            "state" => out.push_str(&format!(" -m state --state {}", word(i + 1))),
            "multiport" => {
                let flag = match word(i + 1) {
                    "dports" => "--dports",
                    "sports" => "--sports",
                    "ports" => "--ports",
                    other => return Err(format!("multiport {other}")),
                };
                let ports: Option<Vec<String>> = word(i + 2).split(',').map(port).collect();
                let ports = ports.ok_or_else(|| format!("multiport ports {}", word(i + 2)))?;
                out.push_str(&format!(" -m multiport {flag} {}", ports.join(",")));
                i += 3;
                continue;
            }
            "!" if word(i + 1) == "match-set" => {
                out.push_str(&format!(
                    " -m set ! --match-set {} {}",
                    word(i + 2),
                    word(i + 3)
                ));
                i += 4;
                continue;
            }
            "match-set" => {
                out.push_str(&format!(
                    " -m set --match-set {} {}",
                    word(i + 1),
                    word(i + 2)
                ));
                i += 3;
                continue;
            }
            "ADDRTYPE" if word(i + 1) == "match" => {
                i += 2;
                out.push_str(" -m addrtype");
                while let Some(kind) = word(i)
                    .strip_suffix("-type")
                    .filter(|k| matches!(*k, "src" | "dst"))
                {
                    out.push_str(&format!(" --{kind}-type {}", word(i + 1)));
                    i += 2;
                }
                continue;
            }
            "mark" if word(i + 1) == "match" => {
                if word(i + 2) == "!" {
                    out.push_str(&format!(" -m mark ! --mark {}", word(i + 3)));
                    i += 4;
                } else {
                    out.push_str(&format!(" -m mark --mark {}", word(i + 2)));
                    i += 3;
                }
                continue;
            }
            "tcp" | "udp" | "sctp" if word(i) == proto => {
                // `tcp dpt:179 spt:1000`
                i += 1;
                out.push_str(&format!(" -m {proto}"));
                while let Some((k, v)) = word(i)
                    .split_once(':')
                    .filter(|(k, _)| matches!(*k, "dpt" | "spt" | "dpts" | "spts"))
                {
                    let flag = if k.starts_with('d') {
                        "--dport"
                    } else {
                        "--sport"
                    };
                    let p = port(v).ok_or_else(|| {
                        format!("port {v} is a name this does not know (iptables -L without -n)")
                    })?;
                    out.push_str(&format!(" {flag} {p}"));
                    i += 1;
                }
                continue;
            }
            "icmptype" => out.push_str(&format!(" -m icmp --icmp-type {}", word(i + 1))),
            "icmp" if proto == "icmp" => {
                out.push_str(&format!(" -m icmp --icmp-type {}", word(i + 1)))
            }
            "reject-with" if target == "REJECT" => {
                target_opts.push_str(&format!(" --reject-with {}", word(i + 1)));
            }
            "MARK" if target == "MARK" => {
                let flag = match word(i + 1) {
                    "or" => "--or-mark",
                    "and" => "--and-mark",
                    "xor" => "--xor-mark",
                    "set" => "--set-mark",
                    "xset" => "--set-xmark",
                    other => return Err(format!("MARK {other}")),
                };
                target_opts.push_str(&format!(" {flag} {}", word(i + 2)));
                i += 3;
                continue;
            }
            _ => return Err(format!("`{}` is not read", bounded(words[i..].join(" ")))),
        }
        i += 2;
    }
    if target.is_empty() {
        return Ok(out + &target_opts);
    }
    Ok(format!("{out} -j {target}{target_opts}"))
}

/// `iptables -L` (with or without `-v`, `-n`, `--line-numbers`).
pub fn from_l(file: &str, family: Family, text: &str, verbose: bool) -> Restore {
    let mut chains: Vec<(String, Option<String>, usize)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(rest) = l.strip_prefix("Chain ") {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            let policy = rest
                .split_once("(policy ")
                .and_then(|(_, p)| p.split([' ', ')']).next())
                .map(str::to_string);
            chains.push((name, policy, i + 1));
        }
    }
    let builtin = |c: &str| chains.iter().any(|(n, p, _)| n == c && p.is_some());
    let table = match (
        builtin("FORWARD"),
        builtin("PREROUTING"),
        builtin("POSTROUTING"),
    ) {
        (true, true, _) => "mangle",
        (true, false, _) => "filter",
        (false, _, true) => "nat",
        (false, true, false) => "raw",
        _ => "filter",
    };
    let mut lines = vec![(format!("*{table}"), 0)];
    for (name, policy, at) in &chains {
        lines.push((
            format!(":{name} {} [0:0]", policy.as_deref().unwrap_or("-")),
            *at,
        ));
    }
    let mut gaps: Vec<(String, String, usize)> = Vec::new();
    let mut chain = String::new();
    let mut numbered = false;
    let mut lo_taken = false;
    for (i, l) in text.lines().enumerate() {
        let at = i + 1;
        let words: Vec<&str> = l.split_whitespace().collect();
        if let Some(rest) = l.strip_prefix("Chain ") {
            chain = rest.split_whitespace().next().unwrap_or("").to_string();
            continue;
        }
        if words.contains(&"target") && words.contains(&"prot") {
            numbered = words.first() == Some(&"num");
            continue;
        }
        if words.is_empty() || chain.is_empty() {
            continue;
        }
        let skip = usize::from(numbered) + if verbose { 2 } else { 0 };
        // `opt` is `--` (or a fragment flag): what precedes it is target and protocol.
        let Some(opt) = words
            .iter()
            .skip(skip)
            .position(|w| matches!(*w, "--" | "-f" | "!f"))
            .map(|p| p + skip)
        else {
            gaps.push((
                chain.clone(),
                format!("not a rule line: {}", bounded(l.trim().to_string())),
                at,
            ));
            continue;
        };
        let (target, proto) = match opt - skip {
            2 => (words[skip], words[skip + 1]),
            1 => ("", words[skip]),
            _ => {
                gaps.push((chain.clone(), "not a rule line".into(), at));
                continue;
            }
        };
        let proto = match proto {
            "all" | "0" => "",
            "6" => "tcp",
            "17" => "udp",
            "1" => "icmp",
            "58" => "ipv6-icmp",
            "132" => "sctp",
            p => p,
        };
        let cols = if verbose { 4 } else { 2 };
        if words.len() < opt + 1 + cols || words[opt] != "--" {
            gaps.push((chain.clone(), "a fragment match or a cut line".into(), at));
            continue;
        }
        let mut spec = String::new();
        if verbose {
            for (flag, v) in [("-i", words[opt + 1]), ("-o", words[opt + 2])] {
                if v != "*" {
                    let (neg, v) = v.strip_prefix('!').map_or(("", v), |r| ("! ", r));
                    spec.push_str(&format!(" {neg}{flag} {v}"));
                }
            }
        }
        if !proto.is_empty() {
            spec.push_str(&format!(" -p {proto}"));
        }
        let (src, dst) = (words[opt + cols - 1], words[opt + cols]);
        let rest = &words[opt + cols + 1..];
        let read = address("-s", src)
            .and_then(|s| address("-d", dst).map(|d| s + &d))
            .and_then(|a| options(rest, proto, target).map(|o| a + &o));
        match read {
            Ok(_)
                if !verbose
                    && !lo_taken
                    && target == "ACCEPT"
                    && proto.is_empty()
                    && rest.is_empty()
                    && src == "anywhere"
                    && dst == "anywhere"
                    && chain == "INPUT" =>
            {
                lo_taken = true;
                gaps.push((chain.clone(), "`ACCEPT all -- anywhere anywhere` in iptables -L without -v: the listing hides its interface, and this is nearly always `-i lo` (loopback), so it is not taken to accept everything".into(), at));
            }
            Ok(m) => lines.push((format!("-A {chain}{spec}{m}"), at)),
            Err(why) => gaps.push((chain.clone(), why, at)),
        }
    }
    let last = text.lines().count();
    let mut placeholders = Vec::new();
    for (c, _, at) in &gaps {
        placeholders.push((
            format!("-A {c} -m comment --comment \"tracer: line {at} not read\""),
            *at,
        ));
    }
    lines.extend(placeholders);
    // Rules back in the order of the listing.
    lines[1 + chains.len()..].sort_by_key(|(_, at)| *at);
    lines.push(("COMMIT".into(), last));
    let mut out = checked(file, family, lines);
    for l in &mut out.lines {
        if l.at == Some(0) || (l.text == "COMMIT" && l.at == Some(last)) {
            l.at = None;
        }
    }
    let settle = save_command(family);
    for (c, why, at) in gaps {
        out.problems.push(format!("{file}:{at}: {why}; not used"));
        out.gap(family, table, &c, format!("{file}:{at}"), why, settle);
    }
    out.notes.push(format!("read as table {table}"));
    if !verbose {
        out.notes.push(
            "without -v the listing hides every rule's interfaces: its verdicts are only likely"
                .into(),
        );
        for (c, _, at) in &chains {
            out.gap(
                family,
                table,
                c,
                format!("{file}:{at}"),
                "iptables -L without -v hides the rules' interfaces".into(),
                settle,
            );
        }
    }
    out
}

/// Only for tests: the rule lines of a conversion.
#[cfg(test)]
fn rules(r: &Restore) -> Vec<&str> {
    r.lines
        .iter()
        .map(|l: &Line| l.text.as_str())
        .filter(|t| t.starts_with("-A"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERBOSE: &str = "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 ACCEPT     0    --  lo     *       0.0.0.0/0            0.0.0.0/0
    0     0 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED
    0     0 ACCEPT     17   --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 4789,8472 match-set vx src ADDRTYPE match dst-type LOCAL
    0     0 ACCEPT     6    --  *      *       192.168.10.0/24      0.0.0.0/0            tcp dpt:179 /* bgp peers */
    0     0 REJECT     0    --  *      *       0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-prohibited

Chain FORWARD (policy DROP 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 KUBE-FW    0    --  *      kube-bridge  0.0.0.0/0            0.0.0.0/0

Chain KUBE-FW (1 references)
 pkts bytes target     prot opt in     out     source               destination
    0     0 MARK       0    --  *      *       127.0.0.1            0.0.0.0/0            mark match 0x4000/0x4000 MARK or 0x8000
    0     0 DROP       6    --  *      *       0.0.0.0/0            0.0.0.0/0            tcp flags:0x12/0x02
";

    #[test]
    fn verbose_listings_spell_back() {
        let r = from_l("l.txt", Family::Ip, VERBOSE, true);
        assert_eq!(
            rules(&r),
            [
                "-A INPUT -i lo -j ACCEPT",
                "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A INPUT -p udp -m multiport --dports 4789,8472 -m set --match-set vx src -m addrtype --dst-type LOCAL -j ACCEPT",
                "-A INPUT -p tcp -s 192.168.10.0/24 -m tcp --dport 179 -m comment --comment \"bgp peers\" -j ACCEPT",
                "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
                "-A FORWARD -o kube-bridge -j KUBE-FW",
                "-A KUBE-FW -s 127.0.0.1 -m mark --mark 0x4000/0x4000 -j MARK --or-mark 0x8000",
                "-A KUBE-FW -m comment --comment \"tracer: line 16 not read\"",
            ]
        );
        assert_eq!(r.gaps.len(), 1, "{:?}", r.gaps);
        assert!(
            r.problems[0].starts_with("l.txt:16:") && r.problems[0].contains("flags"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn names_and_hidden_interfaces_are_called_out() {
        let text = "Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     all  --  anywhere             anywhere
ACCEPT     tcp  --  node1.example.com    anywhere             tcp dpt:ssh
ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:bgp
";
        let r = from_l("l.txt", Family::Ip, text, false);
        assert_eq!(
            rules(&r),
            [
                "-A INPUT -m comment --comment \"tracer: line 3 not read\"",
                "-A INPUT -m comment --comment \"tracer: line 4 not read\"",
                "-A INPUT -p tcp -m tcp --dport 179 -j ACCEPT",
            ]
        );
        assert!(
            r.problems.iter().any(|p| p.contains("-i lo")),
            "{:?}",
            r.problems
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("node1.example.com is a host name")),
            "{:?}",
            r.problems
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("hides every rule's interfaces"))
        );
    }
}
