//! End to end: `tracer watch` in a pipe prints a log of what changed, not a table per
//! interval, with flows that differ only in an ephemeral port as one group; and a finding the
//! fix resolves is reported as resolved, in the log and as a typed JSON line.

use std::{
    process::{Command, Stdio},
    sync::mpsc::Receiver,
    time::{Duration, Instant},
};

use tracer::schema::WatchLine;

use crate::harness::{
    Tracer,
    pair::{B, pair, udp_to},
    send_frames,
    tmux::patience,
    tracer::lines_of,
};

/// Reads lines into `out` until one contains `what`, within the attach patience.
fn read_until(rx: &Receiver<String>, out: &mut Vec<String>, what: &str) {
    let deadline = Instant::now() + patience();
    while !out.iter().any(|l| l.contains(what)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => out.push(line),
            Err(e) => panic!("no line with {what:?} ({e}):\n{}", out.join("\n")),
        }
    }
}

#[test]
fn in_a_pipe_watch_logs_what_changed_and_groups_ephemeral_ports() {
    let (a, b) = pair();
    a.nft_drop_input(4789);
    // Text is what a pipe gets without asking.
    let mut child = Command::new(crate::harness::tracer::BIN)
        .args(["--netns", &a.name, "watch", "--iface", "va"])
        .args(["--profile", "k0s-calico", "--interval", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let mut out = Vec::new();
    // Printed once every program is attached.
    read_until(&rx, &mut out, "Ctrl-C to stop.");
    // Two bursts from 40 source ports each, the second once the first was logged.
    send_frames(&b, B.name, &udp_to(40, 41000, 4789));
    read_until(
        &rx,
        &mut out,
        "] drops: udp 10.77.0.2 -> 10.77.0.1:4789 from",
    );
    send_frames(&b, B.name, &udp_to(40, 42000, 4789));
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    out.extend(rx.iter());
    let out = out.join("\n");
    assert!(status.success(), "{status}: {out}");

    let log: Vec<&str> = out.lines().collect();
    let drop_lines: Vec<&&str> = log
        .iter()
        .filter(|l| l.contains("] drops: udp 10.77.0.2 -> 10.77.0.1:4789 from"))
        .collect();
    assert_eq!(drop_lines.len(), 1, "one line for the group:\n{out}");
    let new_vxlan = log
        .iter()
        .filter(|l| l.contains("] new traffic: calico-vxlan ingress on va"))
        .count();
    assert_eq!(new_vxlan, 1, "{out}");
    // The finding once, and no table per interval.
    let found = log
        .iter()
        .filter(|l| l.contains("found: ERROR   calico-vxlan 4789/udp from a peer on va"))
        .count();
    assert_eq!(found, 1, "{out}");
    assert_eq!(
        log.iter().filter(|l| l.starts_with("IFACE")).count(),
        1,
        "the table once, in the summary:\n{out}"
    );
    // The summary has both bursts in one group, with the cause and fix.
    let summary = out.split("Summary after").nth(1).expect("a summary");
    assert!(
        summary.contains(
            "udp 10.77.0.2 -> 10.77.0.1:4789 from 80 source ports on va, NETFILTER_DROP x80"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("fix:   nft insert rule inet trt input"),
        "{summary}"
    );
    assert!(summary.contains("Findings still open:"), "{summary}");
}

#[test]
fn a_fixed_rule_resolves_its_finding() {
    let (a, b) = pair();
    a.nft_drop_input(4789);
    // Diagnosed every half second, so the fix shows soon.
    let every = ["--interval", "0.2", "--diagnose-every", "0.5"];
    let mut tracer = Tracer::watch(
        &a,
        &[&["-i", "va", "-p", "k0s-calico"][..], &every].concat(),
    );
    tracer.started();
    send_frames(&b, B.name, &udp_to(10, 41000, 4789));
    let finding = tracer.wait_for("the calico-vxlan finding", |l| match l {
        WatchLine::Finding(f) if f.class.as_deref() == Some("calico-vxlan") => Some(f.clone()),
        _ => None,
    });
    // The fix: the dropping rule goes.
    a.exec(&["nft", "delete", "table", "inet", "trt"]);
    let resolved = tracer.wait_for("the finding resolved", |l| match l {
        WatchLine::FindingResolved(f) if f.id == finding.id => Some(f.clone()),
        _ => None,
    });
    assert_eq!(resolved, finding);
    let lines = tracer.stop();
    // Resolved once, and not found again.
    let again = lines
        .iter()
        .skip_while(|l| !matches!(l, WatchLine::FindingResolved(_)))
        .filter(|l| matches!(l, WatchLine::Finding(f) if f.id == finding.id))
        .count();
    assert_eq!(again, 0, "{lines:#?}");
}
