//! Base chains of equal priority from two backends. The kernel runs the hooks of one priority
//! newest first, and an nftables listing orders its own chains (by handle), but whether an
//! iptables-legacy chain was registered before or after an nftables chain of the same
//! priority is in no listing: iptables' filter chains hook at priority 0 in both backends, so
//! a node with iptables-nft and iptables-legacy rules (kube-proxy in one mode, Docker or a CNI
//! in the other) has such a pair. The kernel's hook list (`nft list hooks`) needs
//! `CONFIG_NETFILTER_NETLINK_HOOK`, which many kernels lack. So the evaluator runs the packet
//! in both orders, and where they decide differently it says the verdict is unknown, and why,
//! rather than choose.

use std::{cmp::Reverse, fmt::Write as _};

use crate::{
    Backend, Chain, Table,
    verdict::{Outcome, Verdict},
};

/// A base chain in evaluation order: table, chain, priority.
type Base<'a> = (&'a Table, &'a Chain, i32);

fn legacy(b: &Base) -> bool {
    b.0.backend == Backend::IptablesLegacy
}

/// Legacy chains and nftables chains sharing a priority, as text.
fn mixed(bases: &[Base]) -> Vec<String> {
    let mut out = Vec::new();
    for a in bases.iter().filter(|a| legacy(a)) {
        for b in bases.iter().filter(|b| !legacy(b) && b.2 == a.2) {
            out.push(format!(
                "{} chain {} of table {} and nftables chain {} of table {} {} (priority {})",
                a.0.backend.command(a.0.family),
                a.1.name,
                a.0.name,
                b.1.name,
                b.0.family,
                b.0.name,
                a.2
            ));
        }
    }
    out
}

/// The other order, legacy chains before the nftables chains of their priority, when some
/// priority has both.
pub(crate) fn legacy_first<'a>(bases: &[Base<'a>]) -> Option<Vec<Base<'a>>> {
    if mixed(bases).is_empty() {
        return None;
    }
    let mut other = bases.to_vec();
    other.sort_by_key(|b| (b.2, !legacy(b), Reverse(b.0.handle), Reverse(b.1.handle)));
    Some(other)
}

/// `first` (legacy chains after the nftables ones) when `other` (before them) decides the
/// same: the same verdict, and for a refusal the same rule. Otherwise the verdict is unknown.
pub(crate) fn settle(first: Outcome, other: &Outcome, bases: &[Base]) -> Outcome {
    let refuses = |o: &Outcome| matches!(o.verdict, Verdict::Drop | Verdict::Reject);
    if first.verdict == other.verdict && (!refuses(&first) || first.deciding == other.deciding) {
        return first;
    }
    // Where each order ends, without the rules' text (the listing has it): short enough to
    // be read whole.
    let show = |o: &Outcome| {
        let mut s = o.verdict.to_string();
        if let Some(r) = &o.deciding {
            let at = r.to_string();
            let _ = write!(s, " by {}", at.split(": ").next().unwrap_or(&at));
        }
        s
    };
    let why = format!(
        "{} run newest first, and no listing says which is older: nftables first, {}; legacy first, {} (`nft list hooks` shows the order where the kernel has CONFIG_NETFILTER_NETLINK_HOOK)",
        mixed(bases).join(", "),
        show(&first),
        show(other)
    );
    Outcome {
        verdict: Verdict::Unknown(crate::bounded(why)),
        ..first
    }
}

#[cfg(test)]
mod tests {
    use crate::{Backend, Ruleset, Verdict, evaluate, tests::to_node};

    /// `ip nftf in` (nftables, priority 0): 22 reject, 23 accept; `ip filter INPUT` (taken as
    /// iptables-legacy's, priority 0): 22, 23 and 24 drop.
    const BOTH: &str = r#"{"nftables": [{"table": {"family": "ip", "name": "nftf", "handle": 1}}, {"chain": {"family": "ip", "table": "nftf", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "ip", "table": "nftf", "chain": "in", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}, {"rule": {"family": "ip", "table": "nftf", "chain": "in", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}}, {"accept": null}]}}, {"table": {"family": "ip", "name": "filter", "handle": 2}}, {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"drop": null}]}}, {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}}, {"drop": null}]}}, {"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 24}}, {"drop": null}]}}]}"#;

    fn ruleset(legacy: bool) -> Ruleset {
        let mut rs = Ruleset::from_json(BOTH, "both.json").unwrap_or_else(|e| panic!("{e}"));
        if legacy {
            let t = rs.tables.iter_mut().find(|t| t.name == "filter");
            let t = t.unwrap_or_else(|| panic!("no filter table"));
            t.backend = Backend::IptablesLegacy;
            t.handle = 0;
        }
        rs
    }

    fn verdict(rs: &Ruleset, dport: u16) -> (Verdict, String) {
        let out = evaluate(rs, &to_node("eth0", "10.0.0.2", "10.0.0.1", 6, dport));
        (
            out.verdict,
            out.deciding.map(|r| r.text).unwrap_or_default(),
        )
    }

    #[test]
    fn an_order_no_listing_shows_decides_nothing_it_would_change() {
        let rs = ruleset(true);
        // Refused by a different rule in each order: unknown, naming both chains.
        let (v, _) = verdict(&rs, 22);
        let Verdict::Unknown(why) = v else {
            panic!("22: {v}");
        };
        assert!(
            why.contains("iptables-legacy chain INPUT of table filter"),
            "{why}"
        );
        assert!(
            why.contains("nftables chain in of table ip nftf (priority 0)"),
            "{why}"
        );
        assert!(why.contains("nft list hooks"), "{why}");
        // An accept ends only its own chain: the legacy drop wins in both orders.
        assert_eq!(verdict(&rs, 23).0, Verdict::Drop);
        assert_eq!(verdict(&rs, 24).0, Verdict::Drop);
        assert_eq!(verdict(&rs, 80).0, Verdict::Accept);
    }

    #[test]
    fn two_nftables_chains_keep_their_known_order() {
        // Both nftables: the newer table (higher handle) runs first, no ambiguity.
        let rs = ruleset(false);
        assert_eq!(
            verdict(&rs, 22),
            (Verdict::Drop, "tcp dport 22 drop".into())
        );
    }
}
