//! The drop tracker: cumulative flow counts across the kernel table's entries, the top flows,
//! the bound on remembered flows.

use super::*;
use crate::probes::drops::ReasonNames;

fn names_for<'a>(
    classes: &'a ClassTable,
    reasons: &'a Reasons,
    iface: &'a dyn Fn(u32) -> String,
) -> Names<'a> {
    Names {
        classes,
        reasons,
        iface,
        symbols: None,
    }
}

fn flow_key(sport: u16, count_class: u8) -> FlowKey {
    let mut k = FlowKey {
        ifindex: 3,
        reason: 77,
        class: count_class,
        ..Default::default()
    };
    k.outer = Flow {
        family: 4,
        proto: 17,
        sport,
        dport: 4789,
        _reserved: 0,
        src: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    k
}

#[test]
fn flows_report_cumulative_changes_only() {
    let mut classes = ClassTable::new();
    let vx = classes.add_class("calico-vxlan").unwrap();
    let reasons = Reasons::new(ReasonNames::from_pairs([(
        "SKB_DROP_REASON_NETFILTER_DROP".to_string(),
        77,
    )]));
    let iface = |i: u32| format!("if{i}");
    let names = names_for(&classes, &reasons, &iface);
    let mut t = DropTracker::default();
    let k = flow_key(1000, vx);
    let c = t.update(&[], &[(k, 5)], &[], DropStats::default(), &names);
    assert_eq!(c.flows.len(), 1);
    let f = &c.flows[0];
    assert_eq!(
        (f.iface.as_str(), f.class.as_str(), f.reason.name(), f.count),
        ("if3", "calico-vxlan", "NETFILTER_DROP", 5)
    );
    assert_eq!(f.flow.src, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(f.flow.proto_name(), "udp");
    assert!(
        t.update(&[], &[(k, 5)], &[], DropStats::default(), &names)
            .flows
            .is_empty()
    );
    assert_eq!(t.quiet(&[(k, 5)]), vec![k]);
    assert!(t.quiet(&[(k, 6)]).is_empty());
    // Taken out of the kernel's table with 6 (one more drop since the read), then back with
    // 2: 8 in all, each drop once.
    let c = t.update(&[], &[], &[(k, 6)], DropStats::default(), &names);
    assert_eq!(c.flows[0].count, 6);
    assert_eq!(
        t.update(&[], &[(k, 2)], &[], DropStats::default(), &names)
            .flows[0]
            .count,
        8
    );
}

#[test]
fn sockets_tidying_up_do_not_crowd_the_top_flows_out() {
    let mut classes = ClassTable::new();
    let vx = classes.add_class("calico-vxlan").unwrap();
    let reasons = Reasons::new(ReasonNames::from_pairs([
        ("SKB_DROP_REASON_NETFILTER_DROP".to_string(), 77),
        ("SKB_DROP_REASON_SOCKET_CLOSE".to_string(), 78),
    ]));
    let iface = |i: u32| format!("if{i}");
    let names = names_for(&classes, &reasons, &iface);
    let mut t = DropTracker::default();
    let mut flows: Vec<(FlowKey, u64)> = (0..3)
        .map(|i| {
            let mut k = flow_key(2000 + i, vx);
            k.reason = 78;
            (k, 100)
        })
        .collect();
    flows.push((flow_key(1000, vx), 5));
    t.update(&[], &flows, &[], DropStats::default(), &names);
    let top = t.top_flows(2, &names);
    assert_eq!(top.len(), 1, "{top:?}");
    assert_eq!((top[0].reason.name(), top[0].count), ("NETFILTER_DROP", 5));
}

#[test]
fn remembered_flows_are_bounded() {
    let classes = ClassTable::new();
    let reasons = Reasons::default();
    let iface = |_: u32| "x".to_string();
    let names = names_for(&classes, &reasons, &iface);
    let mut t = DropTracker::default();
    for round in 0..3u16 {
        let flows: Vec<(FlowKey, u64)> = (0..10_000u16)
            .map(|i| (flow_key(i.wrapping_add(round * 10_000), 0), 1))
            .collect();
        t.update(&[], &flows, &[], DropStats::default(), &names);
    }
    assert!(t.flows_remembered() <= MAX_FLOWS);
    let stats = DropStats {
        events_lost: 3,
        ..Default::default()
    };
    assert_eq!(t.update(&[], &[], &[], stats, &names).stats, Some(stats));
}

#[test]
fn a_flow_the_kernel_still_holds_is_never_forgotten_and_counted_again() {
    let classes = ClassTable::new();
    let reasons = Reasons::default();
    let iface = |_: u32| "x".to_string();
    let names = names_for(&classes, &reasons, &iface);
    let mut t = DropTracker::default();
    let held: Vec<(FlowKey, u64)> = (0..16_000u16).map(|i| (flow_key(i, 0), 1)).collect();
    t.update(&[], &held, &[], DropStats::default(), &names);
    // Half of them taken out of the kernel's table, 8,000 new ones in: 24,000 remembered, all
    // but the new ones last changed in the first round.
    let (taken, kept) = held.split_at(8_000);
    let mut flows = kept.to_vec();
    flows.extend((0..8_000u16).map(|i| (flow_key(i, 1), 1)));
    t.update(&[], &flows, taken, DropStats::default(), &names);
    assert!(t.flows_remembered() <= MAX_FLOWS);
    // Nothing dropped since: nothing moved, however many were forgotten.
    let again = t.update(&[], &flows, &[], DropStats::default(), &names);
    assert!(
        again.flows.is_empty(),
        "{} flows counted again, e.g. {:?}",
        again.flows.len(),
        again.flows.first()
    );
}
