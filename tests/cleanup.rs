//! End to end, kernels without TCX (before 6.6): tc programs are netlink filters that outlive a
//! killed tracer. The next run removes them and attaches exactly one set, counting exactly;
//! `tracer cleanup` removes what a killed run left. On a kernel with TCX the test makes tracer
//! attach netlink filters anyway (TRACER_NO_TCX=1), and says so.

use std::process::Command;

use crate::harness::{
    Counts, NetNs, Tracer, kernel,
    netns::run,
    pair::{A, B, SILENT, apiserver_syns, pair, udp_to},
    send_frames, silent_apiserver,
    tracer::BIN,
};

/// The bpf filters on one clsact hook of va: (handle, program name, program id).
fn filters(ns: &NetNs, hook: &str) -> Vec<(String, String, u64)> {
    let text = ns.exec(&["tc", "filter", "show", "dev", "va", hook]);
    let word_after = |line: &str, key: &str| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next().map(str::to_string)
    };
    text.lines()
        .filter_map(|l| {
            Some((
                word_after(l, "handle")?,
                word_after(l, "name")?,
                word_after(l, "id")?.parse().ok()?,
            ))
        })
        .collect()
}

fn qdiscs(ns: &NetNs) -> String {
    ns.exec(&["tc", "qdisc", "show", "dev", "va"])
}

fn cleanup(ns: &NetNs) -> String {
    run(Command::new(BIN).args(["--netns", &ns.name, "cleanup"]))
}

#[test]
fn filters_a_killed_tracer_left_are_removed_by_the_next_run_and_by_cleanup() {
    let env: &[(&str, &str)] = if kernel::features().tcx {
        eprintln!(
            "cleanup: kernel {} has TCX; making tracer attach netlink filters (TRACER_NO_TCX=1)",
            kernel::features().release
        );
        &[("TRACER_NO_TCX", "1")]
    } else {
        &[]
    };
    let (a, b) = pair();
    let _apiserver = silent_apiserver(&a, &A, &B, SILENT);
    let args = [
        "--iface",
        "va",
        "--profile",
        "generic",
        "--interval",
        "0.5",
        "--no-drops",
    ];

    let mut first = Tracer::watch_env(&a, env, &args);
    let first_ids = first.started().programs;
    first.kill9();
    let left = |name: &str| {
        vec![(
            "0x7ace".to_string(),
            name.to_string(),
            u64::from(first_ids[name]),
        )]
    };
    assert_eq!(filters(&a, "ingress"), left("tc_ingress"));
    assert_eq!(filters(&a, "egress"), left("tc_egress"));

    let mut second = Tracer::watch_env(&a, env, &args);
    let ids = second.started().programs;
    let ours = |name: &str| vec![("0x7ace".to_string(), name.to_string(), u64::from(ids[name]))];
    assert_eq!(
        filters(&a, "ingress"),
        ours("tc_ingress"),
        "exactly one set"
    );
    assert_eq!(filters(&a, "egress"), ours("tc_egress"), "exactly one set");
    assert!(
        cleanup(&a).contains("belongs to a running tracer"),
        "cleanup must leave a running tracer's filters alone"
    );
    assert_eq!(filters(&a, "ingress"), ours("tc_ingress"));

    let mut frames = apiserver_syns(1000);
    frames.extend(udp_to(1000, 40000, 4789));
    send_frames(&b, B.name, &frames);
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Stopped cleanly, a run takes its filters and the clsact qdisc it found with them.
    let counts = Counts::from_summary(&second.stop());
    assert_eq!(counts.packets("va", "ingress", "kube-apiserver"), 1000);
    assert_eq!(counts.packets("va", "ingress", "calico-vxlan"), 1000);
    assert_eq!(counts.packets("va", "egress", "kube-apiserver"), 1000);
    assert!(filters(&a, "ingress").is_empty() && filters(&a, "egress").is_empty());
    assert!(!qdiscs(&a).contains("clsact"), "{}", qdiscs(&a));

    let mut third = Tracer::watch_env(&a, env, &args);
    third.started();
    third.kill9();
    assert_eq!(filters(&a, "ingress").len(), 1);
    let said = cleanup(&a);
    assert!(
        said.contains("removed tracer's ingress tc filter")
            && said.contains("removed tracer's egress tc filter"),
        "{said}"
    );
    assert!(filters(&a, "ingress").is_empty() && filters(&a, "egress").is_empty());
    assert!(!qdiscs(&a).contains("clsact"), "{}", qdiscs(&a));
    assert!(cleanup(&a).contains("nothing left behind"));
}

#[test]
fn cleanup_never_touches_filters_of_others() {
    let (a, _b) = pair();
    // Someone else's filters: a (classic) BPF filter in tracer's very slot, and one at another
    // priority. Neither runs tracer's program.
    a.exec(&["tc", "qdisc", "add", "dev", "va", "clsact"]);
    let pass_all = "1,6 0 0 4294967295,";
    a.exec(&[
        "tc", "filter", "add", "dev", "va", "ingress", "prio", "1", "handle", "0x7ace", "bpf",
        "bytecode", pass_all,
    ]);
    a.exec(&[
        "tc", "filter", "add", "dev", "va", "egress", "prio", "7", "bpf", "bytecode", pass_all,
    ]);
    let before = (
        a.exec(&["tc", "filter", "show", "dev", "va", "ingress"]),
        a.exec(&["tc", "filter", "show", "dev", "va", "egress"]),
    );
    assert!(
        before.0.contains("handle 0x7ace") && before.1.contains("bpf"),
        "{before:?}"
    );
    assert!(cleanup(&a).contains("nothing left behind"));
    let after = (
        a.exec(&["tc", "filter", "show", "dev", "va", "ingress"]),
        a.exec(&["tc", "filter", "show", "dev", "va", "egress"]),
    );
    assert_eq!(before, after);
    assert!(qdiscs(&a).contains("clsact"));
}
