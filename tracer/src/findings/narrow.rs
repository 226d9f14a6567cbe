//! The accepting rule a fix inserts before a refusing rule outside firewalld, narrowed to what
//! that rule refused: its own matches (addresses, interfaces, states, sets), without its verdict,
//! plus the flow's port (or, for pod traffic, its source CIDR). Inserted at the refusing rule's
//! place, such a rule can only change the verdict of packets the refusing rule refused for that
//! port, and never lets through a packet that a later rule of the chain refuses for another
//! reason. Works on the rule as the operator sees it: the `iptables-save` line for iptables'
//! tables, the `nft` text for others.

/// What the flow needs opened: its destination port, or for pod traffic its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needed {
    /// `proto` is `tcp`, `udp` or `sctp`; `port` a number.
    Port { proto: String, port: String },
    /// A CIDR the flow comes from; `v6` for an IPv6 one.
    Source { cidr: String, v6: bool },
}

/// Splits a listing line into words, a quoted string (with its quotes and escapes) being one
/// word, so that words join back into the same text.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in line.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// iptables' options that name destination ports, each followed by its value.
const IPT_DPORT: [&str; 4] = [
    "--dport",
    "--destination-port",
    "--dports",
    "--destination-ports",
];

/// The match part of an iptables rule (`-A CHAIN ... -j DROP`) with the opening added, ready
/// to follow `-I CHAIN N` and end in `-j ACCEPT`; `None` when the line is not a rule of
/// `chain`.
pub fn iptables(saved: &str, chain: &str, open: &Needed) -> Option<String> {
    let rest = saved.trim().strip_prefix(&format!("-A {chain} "))?;
    let all = words(rest);
    let end = all
        .iter()
        .position(|w| matches!(w.as_str(), "-j" | "--jump" | "-g" | "--goto"))
        .unwrap_or(all.len());
    let mut out: Vec<String> = Vec::new();
    let mut it = all[..end].iter().peekable();
    while let Some(w) = it.next() {
        let port = matches!(open, Needed::Port { .. });
        let negated_dport = w == "!" && it.peek().is_some_and(|n| IPT_DPORT.contains(&n.as_str()));
        // The refusing rule's comment does not describe the accepting one.
        if w == "-m" && it.peek().is_some_and(|n| *n == "comment") {
            it.next();
            if it.peek().is_some_and(|n| *n == "--comment") {
                it.next();
                it.next();
            }
            continue;
        }
        if port && (negated_dport || IPT_DPORT.contains(&w.as_str())) {
            // The rule's own port condition holds for the flow's port: the flow's port alone
            // is narrower.
            if negated_dport {
                it.next();
            }
            it.next();
            continue;
        }
        out.push(w.clone());
    }
    // A port module left without options (`-m udp`) says nothing; drop it.
    let mut i = 0;
    while i + 1 < out.len() {
        let bare = out[i] == "-m"
            && matches!(out[i + 1].as_str(), "udp" | "tcp" | "sctp" | "multiport")
            && out.get(i + 2).is_none_or(|n| !n.starts_with("--"));
        if bare {
            out.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
    let has = |opts: &[&str]| out.iter().any(|w| opts.contains(&w.as_str()));
    match open {
        Needed::Port { proto, port } => {
            if !has(&["-p", "--protocol"]) {
                out.extend(["-p".into(), proto.clone()]);
            }
            out.extend(["-m".into(), proto.clone(), "--dport".into(), port.clone()]);
        }
        Needed::Source { cidr, .. } => {
            if !has(&["-s", "--source"]) {
                out.extend(["-s".into(), cidr.clone()]);
            }
        }
    }
    Some(out.join(" "))
}

/// Words that start a statement (rather than a match) in an nft rule's text.
const NFT_STATEMENTS: [&str; 11] = [
    "counter", "log", "drop", "reject", "accept", "queue", "jump", "goto", "return", "notrack",
    "continue",
];

/// The match part of an nft rule's text (`ip saddr 10.0.0.0/8 udp dport 53 counter drop`)
/// with the opening added, ready to end in `accept`.
pub fn nft(text: &str, open: &Needed) -> String {
    let all = words(text);
    let end = all
        .iter()
        .position(|w| NFT_STATEMENTS.contains(&w.as_str()))
        .unwrap_or(all.len());
    let mut out = all[..end].to_vec();
    let contains = |seq: &[&str]| out.windows(seq.len()).any(|w| w.iter().eq(seq.iter()));
    match open {
        Needed::Port { proto, port } => {
            // Conditions are a conjunction: the flow's port added to the rule's own port
            // condition narrows it to that port.
            if !contains(&[proto.as_str(), "dport", port.as_str()]) {
                out.extend([proto.clone(), "dport".into(), port.clone()]);
            }
        }
        Needed::Source { cidr, v6 } => {
            let ip = if *v6 { "ip6" } else { "ip" };
            if !contains(&[ip, "saddr"]) {
                out.extend([ip.into(), "saddr".into(), cidr.clone()]);
            }
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp53() -> Needed {
        Needed::Port {
            proto: "udp".into(),
            port: "53".into(),
        }
    }

    #[test]
    fn an_iptables_drop_keeps_its_addresses_and_gets_the_port() {
        let got = iptables("-A INPUT -s 10.1.2.0/24 -i eth1 -j DROP", "INPUT", &udp53());
        assert_eq!(
            got.as_deref(),
            Some("-s 10.1.2.0/24 -i eth1 -p udp -m udp --dport 53")
        );
    }

    #[test]
    fn an_iptables_port_range_gives_way_to_the_flows_port() {
        let line = "-A INPUT -s 10.1.2.0/24 -p udp -m udp ! --dport 80 -m comment --comment \"no dns -j x\" -j REJECT --reject-with icmp-port-unreachable";
        assert_eq!(
            iptables(line, "INPUT", &udp53()).as_deref(),
            Some("-s 10.1.2.0/24 -p udp -m udp --dport 53")
        );
        let multi = "-A INPUT -p udp -m multiport --dports 50:60,70 -j DROP";
        assert_eq!(
            iptables(multi, "INPUT", &udp53()).as_deref(),
            Some("-p udp -m udp --dport 53")
        );
        let sport = "-A INPUT -p udp -m udp --sport 5353 --dport 1:100 -j DROP";
        assert_eq!(
            iptables(sport, "INPUT", &udp53()).as_deref(),
            Some("-p udp -m udp --sport 5353 -m udp --dport 53")
        );
    }

    #[test]
    fn pod_traffic_keeps_a_rules_own_source() {
        let pods = Needed::Source {
            cidr: "10.244.0.0/16".into(),
            v6: false,
        };
        assert_eq!(
            iptables("-A FORWARD -s 10.244.1.0/24 -j DROP", "FORWARD", &pods).as_deref(),
            Some("-s 10.244.1.0/24")
        );
        assert_eq!(
            iptables("-A FORWARD -o cni0 -j DROP", "FORWARD", &pods).as_deref(),
            Some("-o cni0 -s 10.244.0.0/16")
        );
        assert_eq!(iptables("-A INPUT -j DROP", "FORWARD", &pods), None);
        assert_eq!(
            nft("oifname \"cni0\" counter drop", &pods),
            "oifname \"cni0\" ip saddr 10.244.0.0/16"
        );
    }

    #[test]
    fn an_nft_rule_loses_its_statements_and_gets_the_port() {
        assert_eq!(
            nft(
                "ip saddr 10.1.2.0/24 udp dport 1-100 counter log prefix \"x drop\" drop",
                &udp53()
            ),
            "ip saddr 10.1.2.0/24 udp dport 1-100 udp dport 53"
        );
        assert_eq!(
            nft(
                "iifname \"eth1\" udp dport 53 reject with icmp type port-unreachable",
                &udp53()
            ),
            "iifname \"eth1\" udp dport 53"
        );
    }
}
