//! `iptables -L` read back into rules, best effort. Each rule line (`target prot opt [in out]
//! source destination options...`) becomes the `-A` line that prints it, for the matches the
//! listing spells unambiguously (ports, conntrack state, multiport, ipsets, address types,
//! marks, ICMP types, REJECT's answer, MARK's change). What it cannot spell back is kept as a
//! placeholder at its place (so positions stay right) and named as a gap: a host name
//! (`-L` without `-n` prints names, which would be resolved on the analysing machine, never
//! the node), a port name outside a few well-known ones, a match this does not read. Without
//! `-v` the listing hides every rule's interfaces: its first unconditional ACCEPT is taken
//! for what it nearly always is, `-i lo`, and every verdict it gives is only likely.

use super::iptables::{Restore, checked_own, save_command};
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

/// One option of a rule at `words[i..]`: how many words it takes, what it adds to the
/// matches and what to the target; `Err` names what cannot be read.
fn step(
    words: &[&str],
    i: usize,
    proto: &str,
    target: &str,
) -> Result<(usize, String, String), String> {
    let word = |n: usize| words.get(i + n).copied().unwrap_or("");
    let matched = |n: usize, text: String| Ok((n, text, String::new()));
    let targeted = |n: usize, text: String| Ok((n, String::new(), text));
    match word(0) {
        "/*" => {
            let end = words[i..]
                .iter()
                .position(|x| *x == "*/")
                .unwrap_or(words.len() - i);
            let text = words[i + 1..i + end].join(" ").replace('"', "");
            matched(end + 1, format!(" -m comment --comment \"{text}\""))
        }
        "ctstate" => matched(2, format!(" -m conntrack --ctstate {}", word(1))),
        "state" => matched(2, format!(" -m state --state {}", word(1))),
        "multiport" => {
            let flag = match word(1) {
                "dports" => "--dports",
                "sports" => "--sports",
                "ports" => "--ports",
                other => return Err(format!("multiport {other}")),
            };
            let ports: Option<Vec<String>> = word(2).split(',').map(port).collect();
            let ports = ports.ok_or_else(|| format!("multiport ports {}", word(2)))?;
            matched(3, format!(" -m multiport {flag} {}", ports.join(",")))
        }
        "!" if word(1) == "match-set" => {
            matched(4, format!(" -m set ! --match-set {} {}", word(2), word(3)))
        }
        "match-set" => matched(3, format!(" -m set --match-set {} {}", word(1), word(2))),
        "ADDRTYPE" if word(1) == "match" => {
            let mut n = 2;
            let mut text = " -m addrtype".to_string();
            while let Some(kind) = word(n)
                .strip_suffix("-type")
                .filter(|k| matches!(*k, "src" | "dst"))
            {
                text = format!("{text} --{kind}-type {}", word(n + 1));
                n += 2;
            }
            matched(n, text)
        }
        "mark" if word(1) == "match" && word(2) == "!" => {
            matched(4, format!(" -m mark ! --mark {}", word(3)))
        }
        "mark" if word(1) == "match" => matched(3, format!(" -m mark --mark {}", word(2))),
        // `tcp dpt:179 spt:1000`
        w @ ("tcp" | "udp" | "sctp") if w == proto => {
            let mut n = 1;
            let mut text = format!(" -m {proto}");
            while let Some((k, v)) = word(n)
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
                text = format!("{text} {flag} {p}");
                n += 1;
            }
            matched(n, text)
        }
        "icmptype" => matched(2, format!(" -m icmp --icmp-type {}", word(1))),
        "icmp" if proto == "icmp" => matched(2, format!(" -m icmp --icmp-type {}", word(1))),
        "reject-with" if target == "REJECT" => targeted(2, format!(" --reject-with {}", word(1))),
        "MARK" if target == "MARK" => {
            let flag = match word(1) {
                "or" => "--or-mark",
                "and" => "--and-mark",
                "xor" => "--xor-mark",
                "set" => "--set-mark",
                "xset" => "--set-xmark",
                other => return Err(format!("MARK {other}")),
            };
            targeted(3, format!(" {flag} {}", word(2)))
        }
        _ => Err(format!("`{}` is not read", bounded(words[i..].join(" ")))),
    }
}

/// The `-m`/`-j` options for a rule's option words; `Err` names the first it cannot read.
fn options(words: &[&str], proto: &str, target: &str) -> Result<String, String> {
    let (mut matches, mut target_opts) = (String::new(), String::new());
    let mut i = 0;
    while i < words.len() {
        let (n, m, t) = step(words, i, proto, target)?;
        matches.push_str(&m);
        target_opts.push_str(&t);
        i += n;
    }
    if target.is_empty() {
        return Ok(matches + &target_opts);
    }
    Ok(format!("{matches} -j {target}{target_opts}"))
}

/// The chains of a listing: name, policy (built-in chains), line.
fn chains_of(text: &str) -> Vec<(String, Option<String>, usize)> {
    let mut chains = Vec::new();
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
    chains
}

/// The columns of a listing's rule lines.
#[derive(Clone, Copy)]
struct Columns {
    verbose: bool,
    numbered: bool,
}

/// The `-A` arguments (after the chain) of one rule line; `Err` says why it cannot be read.
/// `Ok(None)` for loopback's hidden ACCEPT.
fn rule(
    words: &[&str],
    cols: Columns,
    chain: &str,
    lo_taken: &mut bool,
) -> Result<Option<String>, String> {
    let skip = usize::from(cols.numbered) + if cols.verbose { 2 } else { 0 };
    // `opt` is `--` (or a fragment flag): what precedes it is target and protocol.
    let opt = words
        .iter()
        .skip(skip)
        .position(|w| matches!(*w, "--" | "-f" | "!f"))
        .map(|p| p + skip)
        .ok_or_else(|| format!("not a rule line: {}", bounded(words.join(" "))))?;
    let (target, proto) = match opt - skip {
        2 => (words[skip], words[skip + 1]),
        1 => ("", words[skip]),
        _ => return Err("not a rule line".into()),
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
    let n = if cols.verbose { 4 } else { 2 };
    if words.len() < opt + 1 + n || words[opt] != "--" {
        return Err("a fragment match or a cut line".into());
    }
    let mut spec = Vec::new();
    if cols.verbose {
        for (flag, v) in [("-i", words[opt + 1]), ("-o", words[opt + 2])] {
            if v != "*" {
                let (neg, v) = v.strip_prefix('!').map_or(("", v), |r| ("! ", r));
                spec.push(format!(" {neg}{flag} {v}"));
            }
        }
    }
    if !proto.is_empty() {
        spec.push(format!(" -p {proto}"));
    }
    let (src, dst) = (words[opt + n - 1], words[opt + n]);
    let rest = &words[opt + n + 1..];
    let read = address("-s", src)? + &address("-d", dst)? + &options(rest, proto, target)?;
    let bare = target == "ACCEPT" && proto.is_empty() && rest.is_empty();
    if !cols.verbose
        && !*lo_taken
        && bare
        && src == "anywhere"
        && dst == "anywhere"
        && chain == "INPUT"
    {
        *lo_taken = true;
        return Ok(None);
    }
    Ok(Some(spec.concat() + &read))
}

/// What loopback's rule becomes in a listing without `-v`.
const LO: &str = "`ACCEPT all -- anywhere anywhere` in iptables -L without -v: the listing hides its interface, and this is nearly always `-i lo` (loopback), so it is not taken to accept everything";

/// `iptables -L` (with or without `-v`, `-n`, `--line-numbers`).
pub fn from_l(file: &str, family: Family, text: &str, verbose: bool) -> Restore {
    let chains = chains_of(text);
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
    let mut cols = Columns {
        verbose,
        numbered: false,
    };
    let mut lo_taken = false;
    for (i, l) in text.lines().enumerate() {
        let at = i + 1;
        let words: Vec<&str> = l.split_whitespace().collect();
        if let Some(rest) = l.strip_prefix("Chain ") {
            chain = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if words.contains(&"target") && words.contains(&"prot") {
            cols.numbered = words.first() == Some(&"num");
        } else if !words.is_empty() && !chain.is_empty() {
            match rule(&words, cols, &chain, &mut lo_taken) {
                Ok(Some(r)) => lines.push((format!("-A {chain}{r}"), at)),
                Ok(None) => gaps.push((chain.clone(), LO.into(), at)),
                Err(why) => gaps.push((chain.clone(), why, at)),
            }
        }
    }
    let last = text.lines().count();
    // Placeholders keep the rules after them at their places.
    for (c, _, at) in &gaps {
        lines.push((
            format!("-A {c} -m comment --comment \"tracer: line {at} not read\""),
            *at,
        ));
    }
    lines[1 + chains.len()..].sort_by_key(|(_, at)| *at);
    lines.push(("COMMIT".into(), last));
    let mut out = checked_own(file, family, lines, last);
    let settle = save_command(family);
    for (c, why, at) in gaps {
        let why = bounded(why);
        out.problems
            .push(bounded(format!("{file}:{at}: {why}; not used")));
        out.gap(family, table, &c, format!("{file}:{at}"), why, settle);
    }
    out.notes.push(format!("read as table {table}"));
    if !verbose {
        out.notes.push(
            "without -v the listing hides every rule's interfaces: its verdicts are only likely"
                .into(),
        );
        for (c, _, at) in &chains {
            let why = "iptables -L without -v hides the rules' interfaces".to_string();
            out.gap(family, table, c, format!("{file}:{at}"), why, settle);
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
