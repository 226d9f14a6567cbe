//! Tests of the nftables model: real firewalld listings parsed and rendered back, the
//! evaluator on them, a 10,000-rule ruleset, and malformed input. Fixtures are real
//! `nft -j list ruleset` output with the matching text. The strongest evidence, the evaluator
//! against the real kernel on the same rulesets and packets, is the `kernel` integration test
//! (`tests/kernel/`).

mod firewalld;
mod listings;
mod malformed;
mod props;
mod scale;
mod semantics;

use std::net::IpAddr;

use super::{CtState, Hook, Outcome, Packet, Ruleset, Verdict, evaluate};

/// firewalld 1.3.3 on a k0s/Calico worker whose k0s-worker service lacks 4789/udp.
const CALICO_WORKER: (&str, &str) = (
    include_str!("../../fixtures/calico-vxlan-blocked-worker-2.json"),
    include_str!("../../fixtures/calico-vxlan-blocked-worker-2.nft"),
);
/// The same cluster's controller.
const CALICO_CONTROLLER: (&str, &str) = (
    include_str!("../../fixtures/calico-vxlan-blocked-controller-1.json"),
    include_str!("../../fixtures/calico-vxlan-blocked-controller-1.nft"),
);
/// firewalld 1.3.3 on a k3s node with eth1 (and the pod/service CIDRs) in the trusted zone.
const K3S_SEGREGATED: (&str, &str) = (
    include_str!("../../fixtures/k3s-segregated-worker-2.json"),
    include_str!("../../fixtures/k3s-segregated-worker-2.nft"),
);
/// Many statement and expression forms, listed by nft 1.0.6 (`-s` for the text).
const FORMS: (&str, &str) = (
    include_str!("../../fixtures/forms.json"),
    include_str!("../../fixtures/forms.nft"),
);
/// kube-proxy-like rules added with iptables-nft 1.8.9 (xt compat statements).
const IPTABLES_NFT: (&str, &str) = (
    include_str!("../../fixtures/iptables-nft.json"),
    include_str!("../../fixtures/iptables-nft.nft"),
);
/// The listing of `traversal.nft`, a hand-written ruleset exercising chain traversal, as nft
/// 1.0.6 printed it; the `kernel` test replays its worked-out cases.
const TRAVERSAL_JSON: &str = include_str!("../../fixtures/traversal.json");

fn load(json: &str, name: &str) -> Ruleset {
    Ruleset::from_json(json, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A new packet to the node on `iif`.
pub(crate) fn to_node(iif: &str, saddr: &str, daddr: &str, l4proto: u8, dport: u16) -> Packet {
    Packet::new_connection(
        Hook::Input,
        iif,
        ip(saddr),
        ip(daddr),
        l4proto,
        40000,
        dport,
    )
}

/// A new packet routed from `iif` to `oif`.
fn routed(iif: &str, oif: &str, saddr: &str, daddr: &str, l4proto: u8, dport: u16) -> Packet {
    Packet {
        oif: Some(oif.to_string()),
        ..Packet::new_connection(
            Hook::Forward,
            iif,
            ip(saddr),
            ip(daddr),
            l4proto,
            40000,
            dport,
        )
    }
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// Asserts the verdict and the deciding rule's chain and handle (0 for a policy).
#[track_caller]
fn assert_decided(out: &Outcome, verdict: &Verdict, chain: &str, handle: u64) {
    let at = out
        .deciding
        .as_ref()
        .unwrap_or_else(|| panic!("no deciding rule in {out:#?}"));
    assert_eq!(
        (&out.verdict, at.chain.as_str(), at.handle),
        (verdict, chain, handle),
        "decided by {at}\n{out:#?}"
    );
}

/// The chains of the trail, in order.
fn trail_chains(out: &Outcome) -> Vec<(String, u64)> {
    out.trail
        .iter()
        .map(|r| (r.chain.clone(), r.handle))
        .collect()
}

/// A listing of one inet table whose input chain has the rules `exprs` (JSON arrays).
pub(super) fn listing(exprs: &[&str]) -> String {
    let mut items = vec![
        r#"{"table": {"family": "inet", "name": "t", "handle": 1}}"#.to_string(),
        r#"{"chain": {"family": "inet", "table": "t", "name": "in", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}"#.to_string(),
    ];
    for (i, e) in exprs.iter().enumerate() {
        items.push(format!(
            r#"{{"rule": {{"family": "inet", "table": "t", "chain": "in", "handle": {}, "expr": {e}}}}}"#,
            i + 2
        ));
    }
    format!("{{\"nftables\": [\n{}\n]}}", items.join(",\n"))
}
