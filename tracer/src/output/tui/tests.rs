//! The view drawn on ratatui's in-memory backend at the sizes an operator's terminal has: every
//! panel's title at 80x24 and 200x60, what a small terminal hides said in the status line, and
//! the details of a dropped flow with its fix on a line of its own.

use std::{collections::VecDeque, time::Duration};

use tracer_common::counters::SIZE_BUCKETS;

use ratatui::{Terminal, backend::TestBackend};

use super::{
    draw::draw,
    lines::sparkline,
    state::{Data, DropRow, Panel, Popup, Row, View},
};
use crate::{
    events::{DropTotal, Reason, counters::Entry, drops::Endpoints},
    findings::{Finding, Severity, drops::DropCause},
    output::WatchHeader,
    session::DropsView,
};

fn data() -> Data {
    let mut d = Data {
        header: Some(WatchHeader {
            profile: "k0s-calico".into(),
            profile_reason: "given with --profile".into(),
            ifaces: vec![("va".into(), 3, "tc".into())],
            interval: Duration::from_millis(500),
            programs: Vec::new(),
            metrics: None,
        }),
        elapsed: Duration::from_secs(12),
        ..Data::default()
    };
    for (class, pps) in [("kube-apiserver", 100.0), ("calico-vxlan", 50.0)] {
        d.rows.push(Row {
            entry: Entry::eth0_ingress(class, false, 1000, 64_000, [0; SIZE_BUCKETS]),
            pps,
            bps: pps * 800.0,
            history: VecDeque::from(vec![pps / 2.0, pps]),
        });
    }
    let flow = crate::events::DropFlow {
        iface: "eth0".into(),
        class: "calico-vxlan".into(),
        reason: Reason::named("NETFILTER_DROP"),
        flow: Endpoints {
            proto: 17,
            src: Some("10.77.0.2".parse().unwrap()),
            dst: Some("10.77.0.1".parse().unwrap()),
            sport: 40000,
            dport: 4789,
        },
        inner: None,
        count: 500,
        location: None,
    };
    let cause = DropCause {
        rule: None,
        zone: None,
        binding: None,
        element: Some("rule 1 of nft chain input, outside firewalld".into()),
        fix: vec!["nft insert rule inet trt input udp dport 4789 accept".into()],
    };
    d.book.update(&DropsView {
        changed: vec![flow],
        changed_causes: vec![Some(cause)],
        ..DropsView::default()
    });
    d.drops = Some(vec![DropRow {
        total: DropTotal {
            iface: "eth0".into(),
            class: "calico-vxlan".into(),
            reason: Reason::named("NETFILTER_DROP"),
            count: 500,
        },
        per_sec: 50.0,
    }]);
    let mut f = Finding::new(
        "flow/calico-vxlan",
        Severity::Error,
        "calico-vxlan 4789/udp from a peer on eth0 is dropped",
        "The node's worker role needs this traffic.",
    );
    f.fix = vec!["nft insert rule inet trt input udp dport 4789 accept".into()];
    d.findings = vec![f];
    d
}

fn screen(width: u16, height: u16, view: &mut View) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    let d = data();
    t.draw(|f| draw(f, &d, view)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut s = String::new();
    for y in 0..height {
        for x in 0..width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn every_panel_title_shows_at_80x24_and_200x60() {
    for (w, h) in [(80, 24), (200, 60)] {
        let s = screen(w, h, &mut View::default());
        for p in Panel::ALL {
            assert!(s.contains(p.title()), "{w}x{h} lacks {}:\n{s}", p.title());
        }
        assert!(!s.contains("HIDDEN"), "{w}x{h}:\n{s}");
        assert!(
            s.contains("kube-apiserver") && s.contains("NETFILTER_DROP"),
            "{s}"
        );
        assert!(
            s.contains("profile k0s-calico") && s.contains("hooks va:tc"),
            "{s}"
        );
    }
}

#[test]
fn a_small_terminal_says_what_it_hides() {
    let s = screen(60, 12, &mut View::default());
    assert!(s.contains("HIDDEN Drops, Findings (60x12"), "{s}");
    assert!(s.contains("Traffic") && s.contains("Dropped flows"), "{s}");
}

#[test]
fn details_show_the_cause_and_the_fix_on_a_line_of_its_own() {
    let mut view = View {
        focus: Panel::Flows,
        popup: Popup::Details,
        ..View::default()
    };
    let s = screen(100, 30, &mut view);
    assert!(s.contains("cause:  rule 1 of nft chain input"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.trim() == "nft insert rule inet trt input udp dport 4789 accept"),
        "{s}"
    );
}

#[test]
fn sparklines_scale_to_the_largest_rate() {
    let h = VecDeque::from(vec![0.0, 1.0, 2.0, 4.0]);
    assert_eq!(sparkline(&h, 3), "\u{2583}\u{2585}\u{2588}");
}
