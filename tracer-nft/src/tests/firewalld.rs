//! The evaluator on real firewalld 1.3.3 listings. firewalld's layout: the inet table's base
//! chains `filter_INPUT` / `filter_FORWARD` (priority filter + 10) accept established traffic,
//! then jump to `filter_INPUT_ZONES` / `filter_FORWARD_ZONES`, which dispatch by source
//! address first, then by interface, then to the default zone, with `goto filter_IN_<zone>`.
//! The zone chain jumps through its policies and `_pre/_log/_deny/_allow/_post` chains (the
//! services' `accept` rules live in `_allow`) and ends with the zone target: the `reject with
//! icmpx admin-prohibited` of `filter_IN_public` (handle 72), or `accept` for trusted.

use super::*;

const NODE: &str = "192.168.10.22";
const PEER: &str = "192.168.10.21";

#[test]
fn vxlan_to_a_worker_without_4789_is_rejected_by_the_zone() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    let out = evaluate(&rs, &to_node("eth0", PEER, NODE, UDP, 4789));
    assert_decided(&out, &Verdict::Reject, "filter_IN_public", 72);
    assert_eq!(
        out.deciding.as_ref().unwrap().text,
        "reject with icmpx admin-prohibited"
    );
    assert_eq!(
        trail_chains(&out),
        [
            ("filter_INPUT".into(), 33),
            ("filter_INPUT_ZONES".into(), 131),
            ("filter_IN_public".into(), 65),
            ("filter_INPUT_POLICIES_pre".into(), 189),
            ("filter_IN_policy_allow-host-ipv6".into(), 162),
            ("filter_IN_policy_allow-host-ipv6".into(), 163),
            ("filter_IN_policy_allow-host-ipv6".into(), 164),
            ("filter_IN_policy_allow-host-ipv6".into(), 165),
            ("filter_IN_policy_allow-host-ipv6".into(), 166),
            ("filter_IN_public".into(), 66),
            ("filter_IN_public".into(), 67),
            ("filter_IN_public".into(), 68),
            ("filter_IN_public".into(), 69),
            ("filter_IN_public".into(), 70),
            ("filter_IN_public".into(), 71),
        ]
    );
}

#[test]
fn the_worker_services_are_accepted_in_the_allow_chain() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    for (port, handle) in [(10250, 75), (179, 74), (22, 76)] {
        let out = evaluate(&rs, &to_node("eth0", PEER, NODE, TCP, port));
        assert_decided(&out, &Verdict::Accept, "filter_IN_public_allow", handle);
        assert_eq!(
            out.deciding.unwrap().text,
            format!("tcp dport {port} accept")
        );
    }
    // The same ports over UDP are not services.
    let out = evaluate(&rs, &to_node("eth0", PEER, NODE, UDP, 10250));
    assert_decided(&out, &Verdict::Reject, "filter_IN_public", 72);
    // Controller ports are not open on the worker, and are on the controller.
    let out = evaluate(&rs, &to_node("eth0", PEER, NODE, TCP, 6443));
    assert_decided(&out, &Verdict::Reject, "filter_IN_public", 72);
    let controller = load(CALICO_CONTROLLER.0, "calico controller");
    let out = evaluate(&controller, &to_node("eth0", PEER, NODE, TCP, 6443));
    assert_eq!(out.verdict, Verdict::Accept, "{out:#?}");
    assert_eq!(out.deciding.unwrap().chain, "filter_IN_public_allow");
}

#[test]
fn established_traffic_is_accepted_before_the_zones() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    for state in [CtState::Established, CtState::Related] {
        let pkt = Packet {
            ct_state: state,
            ..to_node("eth0", PEER, NODE, UDP, 4789)
        };
        let out = evaluate(&rs, &pkt);
        assert_decided(&out, &Verdict::Accept, "filter_INPUT", 26);
        assert!(out.trail.is_empty(), "{out:#?}");
    }
    let invalid = Packet {
        ct_state: CtState::Invalid,
        ..to_node("eth0", PEER, NODE, TCP, 22)
    };
    assert_decided(&evaluate(&rs, &invalid), &Verdict::Drop, "filter_INPUT", 29);
    let lo = to_node("lo", "127.0.0.1", "127.0.0.1", TCP, 4789);
    assert_decided(&evaluate(&rs, &lo), &Verdict::Accept, "filter_INPUT", 28);
}

#[test]
fn pod_sources_are_dispatched_by_the_source_rule() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    let out = evaluate(
        &rs,
        &to_node("vxlan.calico", "10.244.1.2", NODE, TCP, 10250),
    );
    assert_decided(&out, &Verdict::Accept, "filter_IN_public_allow", 75);
    let dispatch = &out.trail[1];
    assert_eq!(
        (
            dispatch.chain.as_str(),
            dispatch.handle,
            dispatch.text.as_str()
        ),
        (
            "filter_INPUT_ZONES",
            137,
            "ip saddr 10.244.0.0/16 goto filter_IN_public"
        )
    );
    let out = evaluate(&rs, &to_node("vxlan.calico", "10.244.1.2", NODE, UDP, 4789));
    assert_decided(&out, &Verdict::Reject, "filter_IN_public", 72);
    // An interface in no zone falls to the default zone's rule.
    let out = evaluate(&rs, &to_node("cali123", "172.16.5.5", NODE, UDP, 4789));
    assert_eq!(out.trail[1].handle, 151, "{out:#?}");
}

#[test]
fn icmp_is_accepted_by_the_zone_and_ipv6_by_the_policy() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    let ping = Packet {
        icmp_type: Some(8),
        ..to_node("eth0", PEER, NODE, 1, 0)
    };
    assert_decided(
        &evaluate(&rs, &ping),
        &Verdict::Accept,
        "filter_IN_public",
        150,
    );
    let ns = Packet {
        icmp_type: Some(135),
        ..to_node("eth0", "fe80::1", "fe80::2", 58, 0)
    };
    let out = evaluate(&rs, &ns);
    assert_eq!(out.verdict, Verdict::Accept);
    assert_eq!(
        out.deciding.unwrap().chain,
        "filter_IN_policy_allow-host-ipv6_allow"
    );
    let dhcp6 = Packet {
        sport: 547,
        ..to_node("eth0", "fe80::1", "fe80::2", UDP, 546)
    };
    assert_decided(
        &evaluate(&rs, &dhcp6),
        &Verdict::Accept,
        "filter_IN_public_allow",
        73,
    );
}

/// Calico VXLAN between pods: 10.244.1.0 (the remote node's tunnel address) on vxlan.calico
/// to a pod behind cali-pods. The source is in the zone's source list, so firewalld goes to
/// filter_FWD_public, whose allow chain accepts traffic to the pod CIDR
/// (`ip daddr 10.244.0.0/16 accept`).
#[test]
fn pod_to_pod_forwarding_is_accepted_by_the_pod_cidr_rule() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    let pkt = routed(
        "vxlan.calico",
        "cali-pods",
        "10.244.1.0",
        "10.244.2.2",
        TCP,
        8080,
    );
    let out = evaluate(&rs, &pkt);
    assert_decided(&out, &Verdict::Accept, "filter_FWD_public_allow", 142);
    assert_eq!(
        out.deciding.as_ref().unwrap().text,
        "ip daddr 10.244.0.0/16 accept"
    );
    assert_eq!(
        trail_chains(&out)[..3],
        [
            ("filter_FORWARD".into(), 42),
            ("filter_FORWARD_ZONES".into(), 139),
            ("filter_FWD_public".into(), 97),
        ]
    );
    // Out to the LAN is accepted; between two other networks the zone rejects.
    let out = evaluate(
        &rs,
        &routed("cali-pods", "eth0", "10.244.2.2", "8.8.8.8", UDP, 53),
    );
    assert_decided(&out, &Verdict::Accept, "filter_FWD_public_allow", 136);
    let out = evaluate(&rs, &routed("eth0", "eth1", PEER, "172.16.0.2", UDP, 53));
    assert_decided(&out, &Verdict::Reject, "filter_FWD_public", 104);
    // On the controller the pod CIDR is not in the zone: forwarded pod traffic is rejected.
    let controller = load(CALICO_CONTROLLER.0, "calico controller");
    let out = evaluate(&controller, &pkt);
    assert_eq!(out.verdict, Verdict::Reject);
    assert_eq!(out.deciding.unwrap().chain, "filter_FWD_public");
}

#[test]
fn the_k3s_trusted_interface_is_accepted_by_the_zone_target() {
    let rs = load(K3S_SEGREGATED.0, "k3s segregated");
    let out = evaluate(
        &rs,
        &to_node("eth1", "192.168.30.21", "192.168.30.22", UDP, 8472),
    );
    assert_decided(&out, &Verdict::Accept, "filter_IN_trusted", 156);
    assert_eq!(out.deciding.unwrap().text, "accept");
    assert_eq!(out.trail[1].text, "iifname \"eth1\" goto filter_IN_trusted");

    let out = evaluate(
        &rs,
        &to_node("eth0", "192.168.20.21", "192.168.20.22", UDP, 8472),
    );
    assert_decided(&out, &Verdict::Reject, "filter_IN_public", 72);
    assert_eq!(out.trail[1].text, "iifname \"eth0\" goto filter_IN_public");

    let pods = to_node("eth0", "10.42.1.5", "192.168.20.22", UDP, 8472);
    assert_decided(
        &evaluate(&rs, &pods),
        &Verdict::Accept,
        "filter_IN_trusted",
        156,
    );
    let allowed = to_node("eth0", "192.168.20.21", "192.168.20.22", UDP, 8125);
    let out = evaluate(&rs, &allowed);
    assert_eq!(out.verdict, Verdict::Accept);
    assert_eq!(out.deciding.unwrap().text, "udp dport 8125 accept");
}

#[test]
fn nat_chains_and_other_hooks_are_not_run_as_filters() {
    let rs = load(CALICO_WORKER.0, "calico worker");
    // Output: only filter_OUTPUT (accepts by policy); the kube-proxy DNAT chain is nat.
    let out = evaluate(
        &rs,
        &Packet {
            hook: Hook::Output,
            iif: None,
            oif: Some("eth0".into()),
            ..to_node("eth0", NODE, "10.96.0.1", TCP, 443)
        },
    );
    assert_decided(&out, &Verdict::Accept, "filter_OUTPUT", 0);
    assert_eq!(out.deciding.unwrap().text, "policy accept");
    // Prerouting runs mangle_PREROUTING and filter_PREROUTING, not nat_PREROUTING.
    let out = evaluate(
        &rs,
        &Packet {
            hook: Hook::Prerouting,
            ..to_node("eth0", PEER, NODE, UDP, 4789)
        },
    );
    assert_eq!(out.verdict, Verdict::Accept);
    assert!(out.trail.iter().all(|r| r.chain.starts_with("mangle_")));
    // The IPv6 reverse-path check needs routes: unknown, and says so.
    let out = evaluate(
        &rs,
        &Packet {
            hook: Hook::Prerouting,
            ..to_node("eth0", "fd00::1", "fd00::2", UDP, 4789)
        },
    );
    assert_decided(
        &out,
        &Verdict::Unknown(
            "`fib saddr . mark . iif oif` is a routing lookup, which needs the node's routing \
             table"
                .into(),
        ),
        "filter_PREROUTING",
        52,
    );
}
