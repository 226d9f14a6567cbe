//! End to end: the full-screen view of `tracer watch` in a real terminal (tmux), on one end of
//! a veth pair with kubelet traffic (a listener on 10250 makes the node a worker) and Calico
//! VXLAN datagrams an nftables rule drops.
//! The screen shows the rates, the drop with its reason and cause, and the finding; the keys do
//! what the help says; every panel's title shows at 80x24 and 200x60; after `q` the terminal
//! is back as the shell had it and no program of the tracer stays loaded.

use std::{
    net::TcpListener,
    path::Path,
    time::{Duration, Instant},
};

use bytes::Bytes;
use tracer_lab::synth::{Eth, L4, frame};

use crate::{
    harness::{
        Paced, Stream,
        pair::{A, B, pair, udp},
        tmux::{Tmux, bpf_programs_of, children},
        tracer::BIN,
    },
    watch::program_exists,
};

/// A SYN from B to A's kubelet port.
fn kubelet_syn(sport: u16) -> Bytes {
    frame(
        &Eth::new(B.mac, A.mac),
        B.ip.into(),
        A.ip.into(),
        &L4::syn(sport, 10250),
    )
}

const TITLES: [&str; 4] = ["Traffic", "Drops", "Dropped flows", "Findings"];

/// The packets per second the screen shows for `class`: the number after its name.
fn rate_of(screen: &str, class: &str) -> Option<f64> {
    screen.lines().find_map(|l| {
        let mut words = l.split_whitespace().skip_while(|w| *w != class);
        words.next()?;
        words.next()?.parse().ok()
    })
}

fn all_titles(screen: &str) -> bool {
    TITLES.iter().all(|t| screen.contains(t)) && !screen.contains("HIDDEN")
}

#[test]
fn the_view_shows_rates_drops_causes_and_findings_and_its_keys_work() {
    let (a, b) = pair();
    // A kubelet: the diagnosis takes the node for a worker, whose role needs the overlay.
    let _kubelet = a.enter(|| TcpListener::bind((A.ip, 10250)).expect("listen on 10250"));
    a.nft_drop_input(4789);
    let dir = tempfile::tempdir().unwrap();
    let stty = dir.path().join("stty");
    let command = format!(
        "{BIN} --netns {} watch --iface va --profile k0s-calico --interval 0.5 --diagnose-every 1; \
         echo EXIT=$?; stty -a > {}; sleep 600",
        a.name,
        stty.display()
    );
    let term = Tmux::start("view", 200, 60, &command);
    let _traffic = Paced::start(
        &b,
        B.name,
        vec![
            Stream {
                per_sec: 40.0,
                make: Box::new(|n| kubelet_syn(20000 + (n % 20000) as u16)),
            },
            Stream {
                per_sec: 40.0,
                make: Box::new(|n| udp(40000 + (n % 20000) as u16, 4789)),
            },
        ],
    );

    // The rates, the drop with its reason and cause, and the finding.
    let screen = term.wait_for("rates, the drop, its cause and the finding", |s| {
        rate_of(s, "kubelet").is_some_and(|r| r > 0.0)
            && rate_of(s, "calico-vxlan").is_some_and(|r| r > 0.0)
            && s.contains("NETFILTER_DROP")
            && s.contains("of chain input in table inet trt")
            && s.contains("calico-vxlan 4789/udp from a peer on va is dropped")
    });
    assert!(screen.contains("ERROR"), "{screen}");
    assert!(
        screen.contains("udp 10.77.0.2 -> 10.77.0.1:4789 from"),
        "{screen}"
    );
    assert!(screen.contains("profile k0s-calico") && screen.contains("hooks va:tc"));
    assert!(all_titles(&screen), "at 200x60:\n{screen}");

    // `/` filters by class: the dropped VXLAN traffic leaves the screen, Esc brings it back.
    term.text("/kube");
    term.keys(&["Enter"]);
    let filtered = term.wait_for("the filter applied", |s| {
        s.contains("filter: kube") && !s.contains("calico-vxlan")
    });
    assert!(filtered.contains("kubelet"), "{filtered}");
    term.keys(&["Escape"]);
    term.wait_for("the filter cleared", |s| {
        s.contains("calico-vxlan") && !s.contains("filter: kube")
    });

    // Tab moves the focus; Enter on a dropped flow shows its cause and fix, Esc closes it.
    assert!(term.screen().contains("\u{25b6} Traffic"));
    term.keys(&["Tab"]);
    term.wait_for("the focus on Drops", |s| s.contains("\u{25b6} Drops"));
    term.keys(&["Tab"]);
    term.wait_for("the focus on Dropped flows", |s| {
        s.contains("\u{25b6} Dropped flows")
    });
    term.keys(&["Enter"]);
    let details = term.wait_for("the details of the flow", |s| {
        s.contains("Details (Esc to close)")
    });
    assert!(details.contains("reason: NETFILTER_DROP"), "{details}");
    assert!(details.contains("rule:   inet trt input #"), "{details}");
    // The fix alone on its line, ready to copy.
    assert!(
        details
            .lines()
            .any(|l| l.trim().starts_with("nft insert rule inet trt input ")
                && l.trim().ends_with("udp dport 4789 accept")),
        "{details}"
    );
    term.keys(&["Escape"]);
    term.wait_for("the details closed", |s| !s.contains("Details (Esc"));

    // Every panel's title at 80x24 too.
    term.resize(80, 24);
    let small = term.wait_for("every panel at 80x24", |s| {
        all_titles(s) && s.lines().all(|l| l.chars().count() <= 80)
    });
    assert_eq!(small.lines().count(), 24, "{small}");

    quit_restores_the_terminal_and_unloads_the_programs(&term, &stty);
}

/// `q`: the view closes, the summary is printed, the terminal is the shell's again (the
/// pane's command wrote `stty -a` to `stty` after the tracer exited), and the tracer's
/// programs are gone.
fn quit_restores_the_terminal_and_unloads_the_programs(term: &Tmux, stty: &Path) {
    let shell: u32 = term.format("#{pane_pid}").parse().unwrap();
    let tracer = *children(shell)
        .first()
        .expect("the tracer runs under the pane's shell");
    let programs = bpf_programs_of(tracer);
    assert!(programs.len() >= 3, "programs of the tracer: {programs:?}");
    assert!(programs.iter().all(|id| program_exists(*id)));
    term.keys(&["q"]);
    let after = term.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(after.contains("EXIT=0"), "{after}");
    let history = term.history();
    assert!(history.contains("Summary after"), "{history}");
    assert_eq!(
        term.format("#{alternate_on}"),
        "0",
        "still on the alternate screen"
    );
    assert_eq!(
        term.format("#{cursor_flag}"),
        "1",
        "the cursor is still hidden"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::metadata(stty).is_ok_and(|m| m.len() > 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let modes = std::fs::read_to_string(stty).unwrap();
    for mode in ["icanon", "echo", "isig", "opost"] {
        assert!(
            modes.split_whitespace().any(|m| m == mode),
            "the terminal is left with -{mode}: {modes}"
        );
    }
    // The kernel frees programs once the last reference goes; give RCU a moment.
    while programs.iter().any(|id| program_exists(*id)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<_> = programs.iter().filter(|id| program_exists(**id)).collect();
    assert!(left.is_empty(), "programs {left:?} still loaded after q");
}
