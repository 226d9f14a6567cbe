//! Baselines built from hand-made counters, their file format, and comparisons of hand-made
//! recordings: what moves, what is a regression, the noise floor and the threshold's edges.

use super::*;
use tracer_nft::JsonError;

fn meta() -> Meta {
    Meta {
        recorded_at: "2025-01-02T03:04:05Z".into(),
        profile: "generic".into(),
        catalogs: vec![],
        interfaces: vec![IfaceHook {
            iface: "eth0".into(),
            hook: "tc".into(),
        }],
        kernel: "6.18.0".into(),
        tracer_version: "0.1.0".into(),
    }
}

fn traffic(class: &str, direction: Direction, packets_per_sec: f64) -> TrafficRate {
    TrafficRate {
        iface: "eth0".into(),
        direction,
        class: class.into(),
        inner: false,
        packets_per_sec,
        bytes_per_sec: packets_per_sec * 66.0,
        sizes: Some(vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    }
}

fn drop_rate(class: &str, reason: &str, per_sec: f64) -> DropRate {
    DropRate {
        iface: "eth0".into(),
        class: class.into(),
        reason: reason.into(),
        per_sec,
    }
}

fn recording(traffic: Vec<TrafficRate>, drops: Option<Vec<DropRate>>) -> Baseline {
    Baseline {
        format: FORMAT.into(),
        version: VERSION,
        meta: meta(),
        duration_secs: 10.0,
        size_bounds: SIZE_BOUNDS.to_vec(),
        traffic,
        drops,
    }
}

/// A healthy node: kube-apiserver both ways, the overlay, a few VXLAN drops.
fn healthy() -> Baseline {
    recording(
        vec![
            traffic("kube-apiserver", Direction::Ingress, 200.0),
            traffic("kube-apiserver", Direction::Egress, 200.0),
            traffic("calico-vxlan", Direction::Ingress, 50.0),
        ],
        Some(vec![drop_rate("calico-vxlan", "NETFILTER_DROP", 10.0)]),
    )
}

const DEFAULT: Thresholds = Thresholds {
    percent: 30.0,
    floor: 1.0,
};

fn set_rate(b: &mut Baseline, class: &str, direction: Direction, rate: f64) {
    let t = b
        .traffic
        .iter_mut()
        .find(|t| t.class == class && t.direction == direction)
        .expect("row");
    t.packets_per_sec = rate;
    t.bytes_per_sec = rate * 66.0;
}

fn regressions(c: &Comparison) -> Vec<&Change> {
    c.changes.iter().filter(|c| c.regression).collect()
}

fn total(class: &str, reason: &str, count: u64) -> DropTotal {
    DropTotal {
        iface: "eth0".into(),
        class: class.into(),
        reason: reason.into(),
        count,
    }
}

#[test]
#[allow(
    clippy::float_cmp,
    reason = "whole counts over 4 s and quarters of a bucket total: exact in binary, so exact here"
)]
fn rates_are_the_difference_over_the_window() {
    let before = [
        Entry::eth0_ingress(
            "kube-apiserver",
            false,
            100,
            6_600,
            [0, 100, 0, 0, 0, 0, 0, 0],
        ),
        Entry::eth0_ingress("etcd", false, 50, 5_000, [0, 50, 0, 0, 0, 0, 0, 0]),
    ];
    let after = [
        Entry::eth0_ingress(
            "kube-apiserver",
            false,
            500,
            46_600,
            [100, 400, 0, 0, 0, 0, 0, 0],
        ),
        // No packets during the window: no row.
        Entry::eth0_ingress("etcd", false, 50, 5_000, [0, 50, 0, 0, 0, 0, 0, 0]),
        // Appeared during the window; inner rows have no sizes.
        Entry::eth0_ingress("kube-apiserver", true, 40, 4_000, [0; SIZE_BUCKETS]),
    ];
    let drops_before = [total("calico-vxlan", "NETFILTER_DROP", 1_000)];
    let drops_after = [
        total("calico-vxlan", "NETFILTER_DROP", 1_040),
        total("other", "NO_SOCKET", 4),
    ];
    let b = Baseline::from_entries(
        meta(),
        4.0,
        &before,
        &after,
        Some(DropWindow {
            before: &drops_before,
            after: &drops_after,
        }),
    );
    assert_eq!(b.duration_secs, 4.0);
    assert_eq!(b.traffic.len(), 2, "{:?}", b.traffic);
    let api = &b.traffic[0];
    assert_eq!((api.class.as_str(), api.inner), ("kube-apiserver", false));
    assert_eq!(api.packets_per_sec, 100.0);
    assert_eq!(api.bytes_per_sec, 10_000.0);
    assert_eq!(
        api.sizes.as_deref(),
        Some(&[0.25, 0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][..])
    );
    let inner = &b.traffic[1];
    assert!(inner.inner);
    assert_eq!(inner.packets_per_sec, 10.0);
    assert_eq!(inner.sizes, None);
    assert_eq!(
        b.drops,
        Some(vec![
            drop_rate("calico-vxlan", "NETFILTER_DROP", 10.0),
            drop_rate("other", "NO_SOCKET", 1.0)
        ])
    );
    // Without drop capture there is no drop list at all, which is not "no drops".
    let b = Baseline::from_entries(meta(), 4.0, &before, &after, None);
    assert_eq!(b.drops, None);
    assert!(!b.to_json().contains("\"drops\""));
}

#[test]
fn the_file_reads_back_as_written() {
    let b = healthy();
    let text = b.to_json();
    assert!(text.contains("\"format\": \"tracer-baseline\""), "{text}");
    assert!(text.contains("\"version\": 1"), "{text}");
    assert_eq!(Baseline::from_json(&text, "b.json").unwrap(), b);
    // The hand-laid-out text holds exactly what serde would have written.
    let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ours, serde_json::to_value(&b).unwrap());
    // One line per rate.
    assert!(
        text.lines().any(|l| l.trim_start().starts_with(
            "{\"iface\":\"eth0\",\"direction\":\"egress\",\"class\":\"kube-apiserver\""
        )),
        "{text}"
    );
    let empty = recording(vec![], Some(vec![]));
    assert_eq!(
        Baseline::from_json(&empty.to_json(), "e.json").unwrap(),
        empty
    );
}

#[test]
fn broken_json_names_file_line_and_column() {
    let text = "{\n  \"format\": \"tracer-baseline\",\n  \"version\": 1,\n  oops\n}\n";
    let e = Baseline::from_json(text, "/tmp/b.json").unwrap_err();
    assert!(e.to_string().starts_with("/tmp/b.json:4:3: "), "{e}");
    // Right syntax, wrong shape: still located.
    let mut v: serde_json::Value = serde_json::from_str(&healthy().to_json()).unwrap();
    v["traffic"][1]["packets_per_sec"] = "many".into();
    let text = serde_json::to_string_pretty(&v).unwrap();
    let e = Baseline::from_json(&text, "b.json").unwrap_err();
    let BaselineError::Json(JsonError { line, .. }) = &e else {
        panic!("{e}");
    };
    assert!(
        text.lines().nth(line - 1).unwrap().contains("\"many\""),
        "{e}"
    );
}

#[test]
fn other_files_and_versions_are_refused_by_name() {
    let e = Baseline::from_json("{\"type\":\"summary\"}", "watch.json").unwrap_err();
    assert!(matches!(e, BaselineError::NotBaseline { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("watch.json: not a tracer baseline"),
        "{e}"
    );

    let mut v: serde_json::Value = serde_json::from_str(&healthy().to_json()).unwrap();
    v["version"] = 2.into();
    // A later version may have renamed anything: the version is what is reported.
    v.as_object_mut().unwrap().remove("traffic");
    let e = Baseline::from_json(&v.to_string(), "new.json").unwrap_err();
    assert!(matches!(e, BaselineError::Version { .. }), "{e}");
    assert!(e.to_string().contains("version 2"), "{e}");

    v.as_object_mut().unwrap().remove("version");
    let e = Baseline::from_json(&v.to_string(), "new.json").unwrap_err();
    assert!(e.to_string().contains("version (none)"), "{e}");
}

#[test]
fn nonsense_values_are_refused() {
    let mut b = healthy();
    b.traffic[0].sizes = Some(vec![1.0]);
    let e = Baseline::from_json(&b.to_json(), "b.json").unwrap_err();
    assert!(matches!(e, BaselineError::Invalid { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("traffic[0] (kube-apiserver ingress on eth0)"),
        "{e}"
    );

    let mut b = healthy();
    b.drops.as_mut().unwrap()[0].per_sec = -1.0;
    let e = Baseline::from_json(&b.to_json(), "b.json").unwrap_err();
    assert!(e.to_string().contains("drops[0]"), "{e}");

    let mut b = healthy();
    b.duration_secs = 0.0;
    assert!(Baseline::from_json(&b.to_json(), "b.json").is_err());
}

#[test]
fn a_huge_name_in_a_refused_entry_is_not_echoed_whole() {
    let mut b = healthy();
    b.traffic[0].class = "x".repeat(20_000);
    b.traffic[0].packets_per_sec = -1.0;
    let e = Baseline::from_json(&b.to_json(), "b.json")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("b.json: traffic[0] (xxx"), "{e}");
    assert!(e.len() < 1024, "{} bytes", e.len());
}

#[test]
fn unchanged_traffic_is_no_regression() {
    let c = compare(&healthy(), &healthy(), DEFAULT);
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    assert!(!c.regressed());
}

#[test]
fn halved_traffic_is_a_regression() {
    let mut now = healthy();
    set_rate(&mut now, "kube-apiserver", Direction::Ingress, 100.0);
    let c = compare(&healthy(), &now, DEFAULT);
    assert!(c.regressed());
    assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
    let change = &c.changes[0];
    assert!(
        matches!(&change.subject, Subject::Traffic(k) if k.class == "kube-apiserver" && k.direction == Direction::Ingress)
    );
    assert_eq!(
        change.delta,
        Delta::Rate {
            measure: Measure::Packets,
            before: 200.0,
            after: 100.0
        }
    );
    assert_eq!(change.delta.percent(), Some(-50.0));
}

#[test]
fn doubled_drops_are_a_regression() {
    let mut now = healthy();
    now.drops.as_mut().unwrap()[0].per_sec = 20.0;
    let c = compare(&healthy(), &now, DEFAULT);
    let r = regressions(&c);
    assert_eq!(r.len(), 1, "{:?}", c.changes);
    assert!(
        matches!(&r[0].subject, Subject::Drops(k) if k.class == "calico-vxlan" && k.reason == "NETFILTER_DROP")
    );
    assert_eq!(r[0].delta.percent(), Some(100.0));
}

#[test]
fn more_housekeeping_drops_are_reported_but_no_regression() {
    let mut now = healthy();
    now.drops
        .as_mut()
        .unwrap()
        .push(drop_rate("other", "QUEUE_PURGE", 40.0));
    let c = compare(&healthy(), &now, DEFAULT);
    assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
    assert!(!c.regressed());
}

#[test]
fn fewer_drops_are_reported_but_no_regression() {
    let mut now = healthy();
    now.drops = Some(vec![]);
    let c = compare(&healthy(), &now, DEFAULT);
    assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
    assert!(!c.regressed());
    assert_eq!(c.changes[0].delta.percent(), Some(-100.0));
}

#[test]
fn new_drops_are_a_regression_above_the_floor() {
    let mut now = healthy();
    now.drops
        .as_mut()
        .unwrap()
        .push(drop_rate("kube-apiserver", "NO_SOCKET", 5.0));
    let c = compare(&healthy(), &now, DEFAULT);
    let r = regressions(&c);
    assert_eq!(r.len(), 1, "{:?}", c.changes);
    assert_eq!(r[0].delta.percent(), None, "new: no percentage of nothing");
    // A drop now and then is noise.
    now.drops.as_mut().unwrap()[1].per_sec = 0.5;
    let c = compare(&healthy(), &now, DEFAULT);
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    // ...unless the floor says otherwise.
    let c = compare(
        &healthy(),
        &now,
        Thresholds {
            floor: 0.1,
            ..DEFAULT
        },
    );
    assert!(c.regressed());
}

#[test]
fn a_class_only_in_the_baseline_is_gone_and_only_in_the_sample_is_new() {
    let mut now = healthy();
    now.traffic.retain(|t| t.class != "calico-vxlan");
    now.traffic.push(traffic("etcd", Direction::Ingress, 30.0));
    let c = compare(&healthy(), &now, DEFAULT);
    assert_eq!(c.changes.len(), 2, "{:?}", c.changes);
    // Regressions come first.
    let gone = &c.changes[0];
    assert!(gone.regression);
    assert!(matches!(&gone.subject, Subject::Traffic(k) if k.class == "calico-vxlan"));
    assert_eq!(gone.delta.percent(), Some(-100.0));
    let new = &c.changes[1];
    assert!(!new.regression, "more traffic is not a regression");
    assert!(matches!(&new.subject, Subject::Traffic(k) if k.class == "etcd"));
    assert_eq!(new.delta.percent(), None);
}

#[test]
fn rates_under_the_noise_floor_are_not_compared() {
    let mut then = healthy();
    then.traffic
        .push(traffic("kubelet", Direction::Ingress, 0.8));
    let mut now = healthy();
    now.traffic
        .push(traffic("konnectivity", Direction::Ingress, 0.9));
    // kubelet vanished and konnectivity appeared, both below 1/s.
    let c = compare(&then, &now, DEFAULT);
    assert!(c.changes.is_empty(), "{:?}", c.changes);
    // With a lower floor, kubelet's disappearance is a regression.
    let c = compare(
        &then,
        &now,
        Thresholds {
            floor: 0.5,
            ..DEFAULT
        },
    );
    assert!(c.regressed());
    assert_eq!(c.changes.len(), 2, "{:?}", c.changes);
    // A class growing from below the floor to above it is reported, not a regression.
    let mut now = healthy();
    now.traffic
        .push(traffic("kubelet", Direction::Ingress, 5.0));
    let c = compare(&then, &now, DEFAULT);
    assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
    assert!(!c.regressed());
}

#[test]
fn a_fall_of_exactly_the_threshold_counts_and_a_hair_less_does_not() {
    for (after, reported) in [(140.0, true), (140.2, false), (141.0, false), (100.0, true)] {
        let mut now = healthy();
        set_rate(&mut now, "kube-apiserver", Direction::Ingress, after);
        let c = compare(&healthy(), &now, DEFAULT);
        assert_eq!(c.regressed(), reported, "200 -> {after}: {:?}", c.changes);
    }
    for (after, reported) in [(13.0, true), (12.9, false)] {
        let mut now = healthy();
        now.drops.as_mut().unwrap()[0].per_sec = after;
        let c = compare(&healthy(), &now, DEFAULT);
        assert_eq!(c.regressed(), reported, "10 -> {after}: {:?}", c.changes);
    }
    // A stricter threshold catches smaller moves.
    let mut now = healthy();
    set_rate(&mut now, "kube-apiserver", Direction::Ingress, 180.0);
    let strict = Thresholds {
        percent: 10.0,
        ..DEFAULT
    };
    assert!(compare(&healthy(), &now, strict).regressed());
    assert!(!compare(&healthy(), &now, DEFAULT).regressed());
}

#[test]
fn more_traffic_is_reported_but_no_regression() {
    let mut now = healthy();
    set_rate(&mut now, "calico-vxlan", Direction::Ingress, 100.0);
    let c = compare(&healthy(), &now, DEFAULT);
    assert_eq!(c.changes.len(), 1, "{:?}", c.changes);
    assert_eq!(c.changes[0].delta.percent(), Some(100.0));
    assert!(!c.regressed());
}

#[test]
fn size_shifts_are_reported_by_total_variation_distance() {
    let mut now = healthy();
    // Same packet rate, half the packets now in the 1024-1518 bucket.
    now.traffic[0].sizes = Some(vec![0.0, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0]);
    now.traffic[0].bytes_per_sec = 200.0 * 700.0;
    let c = compare(&healthy(), &now, DEFAULT);
    assert!(!c.regressed(), "{:?}", c.changes);
    assert_eq!(c.changes.len(), 2, "{:?}", c.changes);
    assert!(matches!(
        c.changes[0].delta,
        Delta::Rate {
            measure: Measure::Bytes,
            ..
        }
    ));
    assert!(
        matches!(c.changes[1].delta, Delta::Sizes { distance, .. } if (distance - 0.5).abs() < 1e-9)
    );
    // A fifth of the packets moving is under the 30% threshold.
    now.traffic[0].sizes = Some(vec![0.0, 0.8, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0]);
    now.traffic[0].bytes_per_sec = 200.0 * 66.0;
    assert!(compare(&healthy(), &now, DEFAULT).changes.is_empty());
}

#[test]
fn what_differs_between_the_recordings_is_noted() {
    let mut now = healthy();
    now.meta.profile = "k3s-flannel".into();
    now.meta.interfaces.push(IfaceHook {
        iface: "flannel.1".into(),
        hook: "tc".into(),
    });
    now.drops = None;
    let c = compare(&healthy(), &now, DEFAULT);
    assert!(
        c.changes.is_empty(),
        "drops are not compared: {:?}",
        c.changes
    );
    assert_eq!(
        c.notes,
        vec![
            Note::ProfileDiffers {
                baseline: "generic".into(),
                sample: "k3s-flannel".into()
            },
            Note::InterfacesDiffer {
                only_baseline: vec![],
                only_sample: vec!["flannel.1".into()]
            },
            Note::NoDrops(Side::Sample),
        ]
    );
}
