//! What iptables-legacy (x_tables) did with a probe, which `nft monitor trace` never shows:
//! read from the packet counters of the legacy filter table's rules and policies
//! (`iptables-legacy-save -c`) before and after the probe is sent on its own. The harness's
//! legacy rules match addresses, protocol and destination port only, so every packet of the
//! probe's connection meets the same first rule, and the packets that answer it (the other
//! way, to a port of the probe's source range) match none of them: the first rule of the
//! probe's chain whose count grew decided, else the chain's policy.

use std::collections::HashMap;

use super::kernel::RuleKey;

/// The kernel's priority of the legacy filter table's chains (`NF_IP_PRI_FILTER`).
pub const PRIORITY: i32 = 0;

/// One chain's counters: its policy and packets, and each rule's packets and saved text.
#[derive(Clone, Debug, Default)]
struct Chain {
    policy: String,
    packets: u64,
    rules: Vec<(u64, String)>,
}

/// The legacy filter table's counters, by chain.
#[derive(Clone, Debug, Default)]
pub struct Counters(HashMap<String, Chain>);

/// `[packets:bytes]`'s packets.
fn packets(counter: &str) -> Option<u64> {
    counter
        .trim()
        .strip_prefix('[')?
        .split(':')
        .next()?
        .parse()
        .ok()
}

impl Counters {
    /// Reads `iptables-legacy-save -c -t filter`.
    pub fn parse(save: &str) -> Counters {
        let mut chains: HashMap<String, Chain> = HashMap::new();
        for line in save.lines() {
            if let Some(decl) = line.strip_prefix(':') {
                // `:INPUT ACCEPT [12:345]`
                let mut w = decl.split_whitespace();
                let (Some(name), Some(policy)) = (w.next(), w.next()) else {
                    continue;
                };
                let chain = chains.entry(name.to_string()).or_default();
                chain.policy = policy.to_lowercase();
                chain.packets = w.next().and_then(packets).unwrap_or(0);
            } else if let Some((counter, rule)) = line.split_once("] ") {
                // `[3:180] -A INPUT -p tcp -m tcp --dport 22 -j DROP`
                let Some(name) = rule
                    .strip_prefix("-A ")
                    .and_then(|r| r.split_whitespace().next())
                else {
                    continue;
                };
                let n = packets(&format!("{counter}]")).unwrap_or(0);
                chains
                    .entry(name.to_string())
                    .or_default()
                    .rules
                    .push((n, rule.to_string()));
            }
        }
        Counters(chains)
    }
}

/// What the legacy chain did with a probe: refused it by a rule (`true` for a reject), or
/// accepted it by a rule or, handle 0, by its policy.
#[derive(Clone, Debug)]
pub enum LegacyEnd {
    Refused(RuleKey, bool),
    Accepted(RuleKey),
}

/// What `chain` of the legacy filter table did with the one probe sent between `before` and
/// `after`; `None` when the chain saw nothing of it (it does not exist).
pub fn end(chain: &str, before: &Counters, after: &Counters) -> Option<LegacyEnd> {
    let (b, a) = (before.0.get(chain), after.0.get(chain)?);
    let key = |handle: u64, text: String| RuleKey {
        family: "ip".into(),
        table: "filter".into(),
        chain: chain.to_string(),
        handle,
        text,
        legacy: true,
    };
    for (i, (n, text)) in a.rules.iter().enumerate() {
        let was = b.and_then(|b| b.rules.get(i)).map_or(0, |r| r.0);
        if *n <= was {
            continue;
        }
        let k = key(i as u64 + 1, text.clone());
        if text.ends_with("-j ACCEPT") {
            return Some(LegacyEnd::Accepted(k));
        }
        if text.contains("-j DROP") {
            return Some(LegacyEnd::Refused(k, false));
        }
        if text.contains("-j REJECT") {
            return Some(LegacyEnd::Refused(k, true));
        }
    }
    let seen = a.packets > b.map_or(0, |b| b.packets);
    let k = key(0, format!("policy {}", a.policy));
    Some(match a.policy.as_str() {
        "drop" if seen => LegacyEnd::Refused(k, false),
        _ => LegacyEnd::Accepted(k),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "*filter\n:INPUT ACCEPT [4:240]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[0:0] -A INPUT -s 10.1.0.3/32 -p tcp -m tcp --dport 22 -j ACCEPT\n[2:120] -A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n";

    #[test]
    fn the_first_rule_whose_count_grew_decides() {
        let before = Counters::parse(BEFORE);
        let after = Counters::parse(&BEFORE.replace("[2:120] -A", "[3:180] -A"));
        let Some(LegacyEnd::Refused(k, true)) = end("INPUT", &before, &after) else {
            panic!("not a reject");
        };
        assert_eq!((k.handle, k.legacy), (2, true));
        assert!(k.text.starts_with("-A INPUT -p tcp"));
        let policy = Counters::parse(&BEFORE.replace("[4:240]", "[5:300]"));
        let Some(LegacyEnd::Accepted(k)) = end("INPUT", &before, &policy) else {
            panic!("not accepted");
        };
        assert_eq!(k.handle, 0);
        assert!(end("OUTPUT_X", &before, &after).is_none());
    }
}
