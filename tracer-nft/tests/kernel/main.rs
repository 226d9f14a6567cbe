//! Differential tests: the same ruleset loaded into a sandbox of network namespaces, the same
//! packets sent for real, and the kernel's verdict (did the probe pass every base chain, did an
//! error come back, or neither) compared with [`evaluate`]'s. The hand-written
//! `traversal.nft` cases are checked against the evaluator alone as well. They need root and
//! `nft`, `iptables-nft`, `ipset` and `python3`.

mod scratch;

use std::net::IpAddr;

use scratch::Scratch as Lab;
use tracer_nft::{CtState, Hook, Packet, Ruleset, Verdict, evaluate};

/// firewalld 1.3.3 on a k0s/Calico worker whose k0s-worker service lacks 4789/udp.
const CALICO_WORKER: &str = include_str!("../../fixtures/calico-vxlan-blocked-worker-2.nft");
/// firewalld 1.3.3 on a k3s node with eth1 (and the pod/service CIDRs) in the trusted zone.
const K3S_SEGREGATED: &str = include_str!("../../fixtures/k3s-segregated-worker-2.nft");
/// A hand-written ruleset exercising chain traversal.
const TRAVERSAL: &str = include_str!("../../fixtures/traversal.nft");
/// Its listing, as nft 1.0.6 printed it.
const TRAVERSAL_JSON: &str = include_str!("../../fixtures/traversal.json");

/// The sandbox's addresses: B is the node, A its client on eth0, C a server behind eth1.
const NODE: &str = "192.168.10.22";
const CLIENT: &str = "192.168.10.21";
const BLOCKED_CLIENT: &str = "192.168.10.110";
const SERVER: &str = "172.16.0.2";
const NODE6: &str = "fd00:10::22";
const CLIENT6: &str = "fd00:10::21";
const SERVER6: &str = "fd00:16::2";
const TCP: u8 = 6;
const UDP: u8 = 17;

fn load(json: &str, name: &str) -> Ruleset {
    Ruleset::from_json(json, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A new packet to the node on `iif`.
fn to_node(iif: &str, saddr: &str, daddr: &str, l4proto: u8, dport: u16) -> Packet {
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

/// A traversal case: the packet, the expected verdict, and the text of the deciding rule
/// (with its table, since every table here names its input chain `in`).
struct Case {
    pub packet: Packet,
    pub verdict: Verdict,
    pub table: &'static str,
    pub rule: &'static str,
}

fn case(packet: Packet, verdict: Verdict, table: &'static str, rule: &'static str) -> Case {
    Case {
        packet,
        verdict,
        table,
        rule,
    }
}

/// Every case of `traversal.nft`, as worked out by hand from nftables' documented semantics.
#[allow(
    clippy::too_many_lines,
    reason = "one table of cases in the order of the ruleset they exercise; split, it would not read as one"
)]
fn traversal_cases() -> Vec<Case> {
    use Verdict::{Accept, Drop, Reject};
    let udp = |port| to_node("eth0", CLIENT, NODE, UDP, port);
    let tcp = |port| to_node("eth0", CLIENT, NODE, TCP, port);
    let udp6 = |port| to_node("eth0", CLIENT6, NODE6, UDP, port);
    let fwd = |port| routed("eth0", "eth1", CLIENT, SERVER, UDP, port);
    let vmap = "udp dport vmap @dispatch";
    let policy = "policy drop";
    let not_listed = "udp dport != { 2000-4999, 6000-6999 } reject with icmp port-unreachable";
    vec![
        case(udp(1001), Accept, "main", vmap),
        case(udp(1002), Drop, "main", vmap),
        // jump sub sets the mark and returns; the rule after the vmap accepts on it.
        case(udp(1003), Accept, "main", "meta mark 0x00000010 accept"),
        case(udp(1004), Accept, "main", "udp dport 1004 accept"),
        // An interval element of the map; sub has nothing for 1005.
        case(udp(1005), Reject, "main", not_listed),
        case(udp(1006), Drop, "main", "udp dport 1006 drop"),
        // `continue` goes on with the next rule.
        case(udp(1007), Reject, "main", "udp dport 1007 reject"),
        // drop in an earlier base chain ends everything...
        case(udp(4000), Drop, "early", "udp dport 4000 drop"),
        // ...accept there does not: main's policy still drops.
        case(udp(4001), Drop, "main", policy),
        // A mark set in an earlier base chain is seen by a later one.
        case(
            udp(4002),
            Accept,
            "main",
            "meta mark & 0x00000002 == 0x00000002 accept",
        ),
        // Two chains of equal priority: the newer table's runs first, before the mark is set.
        case(udp(4500), Accept, "main", "udp dport 4500 accept"),
        // return from r, then the interface vmap jumps into the zone, which falls through.
        case(udp(2005), Drop, "main", policy),
        case(udp(2006), Drop, "main", "udp dport 2006 drop"),
        case(udp(2007), Accept, "main", "accept"),
        case(udp(3001), Accept, "main", "udp dport 3001 accept"),
        // Reached by goto from the chain the vmap jumped to.
        case(udp(3002), Accept, "main", "udp dport 3002 accept"),
        // return in a chain entered by goto goes back to the last jump's caller.
        case(udp(3003), Drop, "main", policy),
        case(
            udp(3004),
            Reject,
            "main",
            "udp dport 3004 reject with icmpx admin-prohibited",
        ),
        case(
            udp(5353),
            Accept,
            "main",
            "meta l4proto . th dport @svc accept",
        ),
        case(
            tcp(8443),
            Accept,
            "main",
            "meta l4proto . th dport @svc accept",
        ),
        case(udp(6000), Drop, "main", policy),
        case(udp(7777), Reject, "main", not_listed),
        case(
            tcp(22),
            Accept,
            "main",
            "tcp dport { 22, 80, 8000-8100 } accept",
        ),
        case(
            tcp(8050),
            Accept,
            "main",
            "tcp dport { 22, 80, 8000-8100 } accept",
        ),
        case(tcp(8080), Drop, "late", "tcp dport 8080 drop"),
        case(
            tcp(81),
            Reject,
            "main",
            "tcp dport 81 reject with tcp reset",
        ),
        case(tcp(9999), Drop, "main", policy),
        case(
            to_node("eth0", BLOCKED_CLIENT, NODE, UDP, 3001),
            Drop,
            "main",
            "ip saddr @blocked drop",
        ),
        case(
            Packet {
                icmp_type: Some(8),
                ..to_node("eth0", CLIENT, NODE, 1, 0)
            },
            Accept,
            "main",
            "icmp type echo-request limit rate 100/second accept",
        ),
        // IPv6: the ip6 table sees it, the ip tables do not.
        case(udp6(1001), Drop, "v6", "udp dport 1001 drop"),
        case(udp6(1002), Drop, "main", vmap),
        case(udp6(3001), Accept, "main", "udp dport 3001 accept"),
        case(udp6(4000), Drop, "main", policy),
        // `reject with icmp` is IPv4-only: IPv6 goes on to the zone and the policy.
        case(udp6(7777), Drop, "main", policy),
        case(
            to_node("eth0", CLIENT6, NODE6, TCP, 22),
            Accept,
            "main",
            "tcp dport { 22, 80, 8000-8100 } accept",
        ),
        // Forwarding.
        case(
            fwd(7001),
            Accept,
            "main",
            "iifname \"eth0\" oifname \"eth1\" udp dport 7001 accept",
        ),
        case(
            fwd(7002),
            Reject,
            "main",
            "oifname \"eth1\" udp dport 7002 reject",
        ),
        // goto from the base chain: the end of the target applies the base chain's policy.
        case(fwd(7003), Drop, "main", policy),
        case(fwd(7004), Drop, "main", policy),
        case(
            routed("eth1", "eth0", SERVER, CLIENT, UDP, 7001),
            Drop,
            "main",
            policy,
        ),
        case(
            routed("eth0", "eth1", CLIENT6, SERVER6, UDP, 7005),
            Accept,
            "main",
            "ip6 daddr fd00:16::/64 udp dport 7005 accept",
        ),
    ]
}

#[track_caller]
fn assert_case(rs: &Ruleset, c: &Case) {
    let out = evaluate(rs, &c.packet);
    let deciding = out.deciding.as_ref();
    assert_eq!(
        (
            &out.verdict,
            deciding.map(|r| r.table.as_str()),
            deciding.map(|r| r.text.as_str())
        ),
        (&c.verdict, Some(c.table), Some(c.rule)),
        "{:?} {}:{} -> {}:{}\n{out:#?}",
        c.packet.hook,
        c.packet.saddr,
        c.packet.sport,
        c.packet.daddr,
        c.packet.dport,
    );
}

#[test]
fn traversal_cases_decide_as_worked_out() {
    let rs = load(TRAVERSAL_JSON, "traversal.json");
    for c in traversal_cases() {
        assert_case(&rs, &c);
    }
}

/// Replays `cases` (packet, expected verdict) on the kernel and the evaluator; panics with a
/// table of every disagreement.
fn replay(lab: &Lab, rs: &Ruleset, cases: &[(Packet, Verdict)]) {
    let mut wrong = Vec::new();
    for (p, expected) in cases {
        let model = evaluate(rs, p);
        let kernel = lab.kernel_verdict(p);
        if model.verdict != kernel || &kernel != expected {
            wrong.push(format!(
                "{:?} {} {}:{} -> {}:{} proto {}: kernel {kernel}, model {} ({}), expected {expected}",
                p.hook,
                p.iif.as_deref().unwrap_or("-"),
                p.saddr,
                p.sport,
                p.daddr,
                p.dport,
                p.l4proto,
                model.verdict,
                model
                    .deciding
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases disagree:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn traversal_matches_the_kernel() {
    let lab = Lab::new("trav");
    let rs = lab.load(TRAVERSAL);
    // The stored listing is what this nft prints for the same text.
    let stored = load(TRAVERSAL_JSON, "traversal.json");
    let texts = |rs: &Ruleset| -> Vec<String> {
        rs.tables
            .iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
            .map(|r| r.text.clone())
            .collect()
    };
    assert_eq!(texts(&rs), texts(&stored));
    lab.observe();
    let cases: Vec<(Packet, Verdict)> = traversal_cases()
        .into_iter()
        .map(|c| (c.packet, c.verdict))
        .collect();
    replay(&lab, &rs, &cases);
}

/// Base chains of equal priority: the kernel runs the one registered last first. Tables loaded
/// in the other order than in `traversal.nft` (the marking one now runs first, so the mark
/// test drops), and two chains of one table likewise.
#[test]
fn equal_priorities_run_newest_first() {
    let lab = Lab::new("tie");
    lab.b.nft(
        "table ip tie_b {
	chain in {
		type filter hook input priority 5; policy accept;
		udp dport 4500 meta mark 0x7 drop
	}
}
table ip tie_a {
	chain in {
		type filter hook input priority 5; policy accept;
		udp dport 4500 meta mark set 0x7
	}
}
",
    );
    // Two chains of one table, the marking one added last.
    let rs = lab.load(
        "table ip tie_c {
	chain test {
		type filter hook input priority 5; policy accept;
		udp dport 4600 meta mark 0x8 drop
	}
	chain marker {
		type filter hook input priority 5; policy accept;
		udp dport 4600 meta mark set 0x8
	}
}
",
    );
    lab.observe();
    let pkt = to_node("eth0", CLIENT, NODE, UDP, 4500);
    let out = evaluate(&rs, &pkt);
    assert_eq!(out.deciding.as_ref().unwrap().table, "tie_b");
    let chains = to_node("eth0", CLIENT, NODE, UDP, 4600);
    let out = evaluate(&rs, &chains);
    assert_eq!(out.deciding.as_ref().unwrap().chain, "test");
    replay(&lab, &rs, &[(pkt, Verdict::Drop), (chains, Verdict::Drop)]);
}

#[test]
fn firewalld_calico_worker_matches_the_kernel() {
    let lab = Lab::new("fwd");
    let rs = lab.load(CALICO_WORKER);
    assert_eq!(rs.rule_count(), 114);
    lab.observe();
    use Verdict::{Accept, Reject};
    let udp = |port| to_node("eth0", CLIENT, NODE, UDP, port);
    let tcp = |port| to_node("eth0", CLIENT, NODE, TCP, port);
    let cases = [
        (udp(4789), Reject),
        (tcp(10250), Accept),
        (tcp(179), Accept),
        (tcp(22), Accept),
        (tcp(6443), Reject),
        (udp(179), Reject),
        (
            Packet {
                icmp_type: Some(8),
                ..to_node("eth0", CLIENT, NODE, 1, 0)
            },
            Accept,
        ),
        (to_node("eth0", "10.244.1.2", NODE, UDP, 4789), Reject),
        (to_node("eth0", "10.244.1.2", NODE, TCP, 10250), Accept),
        (to_node("eth0", CLIENT6, NODE6, TCP, 22), Accept),
        (to_node("eth0", CLIENT6, NODE6, UDP, 4789), Reject),
        (routed("eth0", "eth1", CLIENT, SERVER, UDP, 53), Reject),
        (routed("eth1", "eth0", SERVER, CLIENT, UDP, 53), Accept),
        (
            routed("eth0", "eth1", CLIENT, "10.244.2.2", TCP, 8080),
            Accept,
        ),
    ];
    replay(&lab, &rs, &cases);

    // An answer to the node's own traffic is established and accepted before the zones.
    lab.b.send("udp", ip(NODE), "41000", ip(CLIENT), 5000);
    let answer = Packet {
        sport: 5000,
        dport: 41000,
        ct_state: CtState::Established,
        ..udp(41000)
    };
    // (Loaded from text, the rules have new handles.)
    let out = evaluate(&rs, &answer);
    assert_eq!(
        (&out.verdict, out.deciding.map(|r| r.text)),
        (
            &Accept,
            Some("ct state { established, related } accept".into())
        )
    );
    replay(&lab, &rs, &[(answer, Accept)]);
}

#[test]
fn firewalld_k3s_trusted_interface_matches_the_kernel() {
    let lab = Lab::new("k3s");
    let rs = lab.load(K3S_SEGREGATED);
    lab.observe();
    use Verdict::{Accept, Reject};
    let cases = [
        (to_node("eth1", SERVER, "172.16.0.1", UDP, 8472), Accept),
        (to_node("eth1", SERVER, "172.16.0.1", TCP, 12345), Accept),
        (to_node("eth0", CLIENT, NODE, UDP, 8472), Reject),
        (to_node("eth0", CLIENT, NODE, UDP, 8125), Accept),
        (to_node("eth0", CLIENT, NODE, TCP, 6379), Accept),
        (to_node("eth0", CLIENT, NODE, TCP, 6380), Reject),
        (routed("eth1", "eth0", SERVER, CLIENT, UDP, 9), Accept),
        (routed("eth0", "eth1", CLIENT, SERVER, UDP, 9), Reject),
    ];
    replay(&lab, &rs, &cases);
}

#[test]
fn iptables_nft_extension_matches_are_read_from_iptables_save() {
    let lab = Lab::new("xts");
    lab.b.sh(&format!(
        "iptables-nft -A INPUT -m conntrack --ctstate INVALID -j DROP
         iptables-nft -A INPUT -m state ! --state NEW,RELATED -j ACCEPT
         iptables-nft -A INPUT -p udp -m multiport --dports 5006,5007:5008 -j DROP
         iptables-nft -A INPUT -p udp -m multiport ! --dports 5010:5020 -m comment --comment 'outside \"range\"' -j ACCEPT
         iptables-nft -A INPUT -p udp -m addrtype --dst-type LOCAL -m multiport --dports 5012 -j REJECT
         iptables-nft -A INPUT -p udp -m addrtype ! --src-type LOCAL --limit-iface-in -m multiport --dports 5014 -j DROP
         iptables-nft -N LAB-MARK
         iptables-nft -A INPUT -p tcp -m multiport --dports 6000:6010 -j LAB-MARK
         iptables-nft -A LAB-MARK -j MARK --or-mark 0x4000
         iptables-nft -A INPUT -p tcp --dport 6001 -m mark --mark 0x4000/0x4000 -j DROP
         ipset create lab-peers hash:net
         ipset add lab-peers 192.0.2.0/24
         ipset add lab-peers {CLIENT}
         ipset create lab-none hash:ip
         ipset create lab-odd hash:net
         ipset add lab-odd 10.0.0.0/8
         ipset add lab-odd 10.1.0.0/16 nomatch
         iptables-nft -A INPUT -p udp --dport 5015 -m set --match-set lab-peers src -j ACCEPT
         iptables-nft -A INPUT -p udp --dport 5015 -j DROP
         iptables-nft -A INPUT -p udp --dport 5016 -m set ! --match-set lab-none src -j DROP
         iptables-nft -A INPUT -p udp --dport 5017 -m set --match-set lab-odd src -j DROP",
    ));
    let plain = lab.listing();
    let rs = lab.listing_with_saved();
    lab.observe();
    use Verdict::{Accept, Drop, Reject};
    let udp = |port| to_node("eth0", CLIENT, NODE, UDP, port);
    let tcp = |port| to_node("eth0", CLIENT, NODE, TCP, port);
    let cases = [
        (udp(5006), Drop),
        (udp(5008), Drop),
        (udp(5009), Accept),
        (udp(5012), Reject),
        (udp(5013), Accept),
        (tcp(6001), Drop),
        (tcp(6002), Accept),
        (tcp(5006), Accept),
        (udp(5015), Accept),
        (udp(5016), Drop),
    ];
    replay(&lab, &rs, &cases);
    // A set with `nomatch` members is more than a list of prefixes: unknown, not a guess.
    let out = evaluate(&rs, &udp(5017));
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("`set`")),
        "{out:#?}"
    );
    // Without iptables-nft-save the same rules are unknown from the first xt match on.
    let out = evaluate(&plain, &udp(5006));
    assert!(
        matches!(&out.verdict, Verdict::Unknown(why) if why.contains("`conntrack`")),
        "{out:#?}"
    );
    // `--limit-iface-in` makes it `fib saddr . iif type`, which the model does not evaluate:
    // it says so, naming the translated rule.
    let out = evaluate(&rs, &udp(5014));
    let Verdict::Unknown(why) = &out.verdict else {
        panic!("{out:#?}")
    };
    assert!(why.contains("fib saddr . iif type"), "{why}");
    assert_eq!(lab.kernel_verdict(&udp(5014)), Drop);
}

#[test]
fn iptables_nft_rules_match_the_kernel_or_say_unknown() {
    let lab = Lab::new("ipt");
    lab.b.sh(
        "iptables-nft -A INPUT -p udp --dport 5001 -m comment --comment 'lab drop' -j DROP
         iptables-nft -A INPUT -p tcp --dport 5002 -j REJECT --reject-with tcp-reset
         iptables-nft -A INPUT -p udp --dport 5003 -m comment --comment x -j REJECT
         iptables-nft -N LAB-CHAIN
         iptables-nft -A INPUT -p udp --dport 5004 -m comment --comment 'to chain' -j LAB-CHAIN
         iptables-nft -A LAB-CHAIN -p udp --dport 5004 -j DROP
         iptables-nft -A INPUT -p udp -m multiport --dports 5006,5007 -j DROP",
    );
    let rs = lab.listing();
    lab.observe();
    use Verdict::{Accept, Drop, Reject};
    let udp = |port| to_node("eth0", CLIENT, NODE, UDP, port);
    replay(
        &lab,
        &rs,
        &[
            (udp(5001), Drop),
            (to_node("eth0", CLIENT, NODE, TCP, 5002), Reject),
            (udp(5003), Reject),
            (udp(5004), Drop),
            (to_node("eth0", CLIENT, NODE, TCP, 5005), Accept),
        ],
    );
    // The multiport match shows only its name: the model says so instead of guessing.
    let out = evaluate(&rs, &udp(5006));
    let Verdict::Unknown(why) = &out.verdict else {
        panic!("{out:#?}")
    };
    assert!(why.contains("`multiport`"), "{why}");
    assert_eq!(lab.kernel_verdict(&udp(5006)), Drop);
}

#[test]
fn read_live_reads_the_current_namespace() {
    let lab = Lab::new("live");
    lab.b.nft("table ip live { chain c { type filter hook input priority 0; policy drop; tcp dport 22 accept; }\n}\n");
    // The nft that read_live starts inherits the namespace of the thread run_in moves there.
    let rs = lab
        .b
        .run_in(Ruleset::read_live)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.rule_count(), 1);
    let table = rs.table(tracer_nft::Family::Ip, "live").unwrap();
    assert_eq!(table.chains[0].rules[0].text, "tcp dport 22 accept");
}
