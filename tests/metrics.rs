//! End to end: `tracer watch --metrics` scraped by a real Prometheus server, both inside a
//! fresh namespace; exact packet numbers sent in, exact numbers expected back from
//! Prometheus's query API, and the served text checked by `promtool`.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tracer::schema::DiagnoseLine;

use crate::harness::{
    NetNs, Tracer,
    pair::{A, B, SILENT, apiserver_syns, pair, udp_to},
    prometheus::PromServer,
    send_frames, silent_apiserver,
    tracer::BIN,
};

pub(crate) const METRICS: &str = "127.0.0.1:9464";
const PROMETHEUS: &str = "127.0.0.1:9090";

/// A Prometheus server inside a namespace, scraping the tracer every second (the harness's
/// [`PromServer`]), with the queries these tests make.
pub(crate) struct Prometheus(PromServer);

impl Prometheus {
    pub(crate) fn start(ns: &NetNs) -> Prometheus {
        Prometheus(PromServer::start(
            &ns.name,
            PROMETHEUS,
            &[METRICS.to_string()],
            &[],
        ))
    }

    pub(crate) fn log(&self) -> String {
        self.0.log()
    }

    /// Waits until Prometheus holds a scrape of the tracer that started after `t` (Unix
    /// seconds).
    pub(crate) fn scraped_after(&self, ns: &NetNs, t: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let scraped = self.query(ns, r#"timestamp(up{job="tracer"})"#);
            if scraped.first().is_some_and(|s| s.1 > t) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no scrape after the traffic within 30s: {scraped:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// An instant query's samples: labels and value.
    pub(crate) fn query(&self, ns: &NetNs, promql: &str) -> Vec<(Value, f64)> {
        let (status, body) = get(
            ns,
            PROMETHEUS,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .unwrap_or_else(|| panic!("querying prometheus:\n{}", self.log()));
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{promql}: bad JSON ({e}): {body}"));
        assert_eq!(status, 200, "{promql}: {body}");
        assert_eq!(v["status"], "success", "{promql}: {body}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of a query that must have exactly one sample.
    pub(crate) fn value(&self, ns: &NetNs, promql: &str) -> f64 {
        let samples = self.query(ns, promql);
        assert_eq!(samples.len(), 1, "{promql}: {samples:?}");
        samples[0].1
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends raw bytes to a server inside the namespace and returns the whole answer; `None` when
/// nothing listens.
fn exchange(ns: &NetNs, addr: &str, request: &[u8]) -> Option<Vec<u8>> {
    ns.enter(|| {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).ok()?;
        // Keep what arrived even if the connection ends in an error.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
        }
        Some(answer)
    })
}

/// `GET path` over HTTP/1.0 (so no chunked bodies): status and body.
pub(crate) fn get(ns: &NetNs, addr: &str, path: &str) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let answer = String::from_utf8(exchange(ns, addr, request.as_bytes())?).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

pub(crate) fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one scrape of one run of traffic, checked from the counters to the served text"
)]
#[allow(
    clippy::float_cmp,
    reason = "whole packet and byte counts, which Prometheus serves as floats that must be exact"
)]
fn prometheus_scrapes_exact_counts() {
    let (a, b) = pair();
    let _apiserver = silent_apiserver(&a, &A, &B, SILENT);

    let mut tracer = Tracer::watch(
        &a,
        &[
            "--iface",
            "va",
            "--profile",
            "generic",
            "--interval",
            "0.5",
            "--metrics",
            METRICS,
        ],
    );
    tracer.started();
    let prometheus = Prometheus::start(&a);

    let mut frames = apiserver_syns(1000);
    frames.extend(udp_to(500, 41000, 8472));
    send_frames(&b, B.name, &frames);
    // Two tracer intervals: the counters of every frame are published.
    std::thread::sleep(Duration::from_secs(1));
    let sent = unix_now();

    prometheus.scraped_after(&a, sent);
    assert_eq!(prometheus.value(&a, r#"up{job="tracer"}"#), 1.0);
    let apiserver = prometheus.value(
        &a,
        r#"tracer_packets_total{iface="va",direction="ingress",class="kube-apiserver"}"#,
    );
    let flannel = prometheus.value(
        &a,
        r#"tracer_packets_total{iface="va",direction="ingress",class="flannel-vxlan"}"#,
    );
    let replies = prometheus.value(
        &a,
        r#"tracer_packets_total{iface="va",direction="egress",class="kube-apiserver"}"#,
    );
    let bytes = prometheus.value(
        &a,
        r#"tracer_bytes_total{iface="va",direction="ingress",class="flannel-vxlan"}"#,
    );
    let build = prometheus.query(&a, "tracer_build_info");
    eprintln!(
        "prometheus: kube-apiserver ingress {apiserver}, egress {replies}; flannel-vxlan ingress {flannel} ({bytes} bytes); build_info {build:?}"
    );
    assert_eq!(apiserver, 1000.0);
    assert_eq!(flannel, 500.0);
    assert_eq!(replies, 1000.0);
    // 14 Ethernet + 20 IPv4 + 8 UDP + 50 payload.
    assert_eq!(bytes, 500.0 * 92.0);
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0].1, 1.0);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert!(build[0].0["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    let sizes = prometheus.value(
        &a,
        r#"tracer_packet_size_bytes_bucket{iface="va",direction="ingress",class="flannel-vxlan",le="128"}"#,
    );
    assert_eq!(sizes, 500.0);

    // Nothing listens on 8472 in the namespace: every VXLAN datagram is a network drop.
    assert_eq!(
        prometheus.value(
            &a,
            r#"tracer_drops_total{iface="va",class="flannel-vxlan",reason="NO_SOCKET",housekeeping="false"}"#,
        ),
        500.0
    );

    // Watch diagnoses the node as it runs: one series per finding, as many as `tracer
    // diagnose` reports for the same namespace (a fresh one has IP forwarding off: one error).
    let diagnosis = Command::new(BIN)
        .args(["--netns", &a.name, "diagnose", "--profile", "generic"])
        .args(["--output", "json"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&diagnosis.stdout)
        .lines()
        .find_map(|l| match serde_json::from_str(l) {
            Ok(DiagnoseLine::Summary(s)) => Some(s),
            _ => None,
        })
        .expect("diagnose prints a summary");
    let errors = summary.errors as f64;
    assert!(errors >= 1.0, "{summary:?}");
    assert_eq!(
        prometheus.value(
            &a,
            r#"count(tracer_findings{severity="error"}) or vector(0)"#
        ),
        errors
    );
    assert_eq!(
        prometheus.value(
            &a,
            r#"count(tracer_findings{severity="warning"}) or vector(0)"#
        ),
        summary.warnings as f64
    );

    // The served text itself, as promtool sees it.
    let (status, text) = get(&a, METRICS, "/metrics").expect("tracer serves /metrics");
    assert_eq!(status, 200);
    eprintln!("{text}");
    let (clean, said) = promtool_check(&text);
    assert!(
        clean && said.is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
    // Without --node-name or NODE_NAME, the node is the host name.
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let node = node.trim();
    assert!(text.contains(&format!(
        "tracer_packets_total{{node=\"{node}\",iface=\"va\",direction=\"ingress\",class=\"kube-apiserver\"}} 1000\n"
    )));
    assert!(text.contains(&format!(
        "tracer_interface_info{{node=\"{node}\",iface=\"va\","
    )));

    let counts = crate::harness::Counts::from_summary(&tracer.stop());
    assert_eq!(counts.packets("va", "ingress", "kube-apiserver"), 1000);
    drop(prometheus);
}

#[test]
fn a_slow_or_oversized_client_does_not_block_scrapes() {
    let (a, _b) = pair();
    let mut tracer = Tracer::watch(&a, &["--iface", "va", "--interval", "0.2", "--metrics"]);
    tracer.started();
    // A client that connects and says nothing holds only its own connection.
    let idle = a.enter(|| TcpStream::connect(METRICS).expect("connect to the metrics port"));
    let t = Instant::now();
    let (status, text) = get(&a, METRICS, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("tracer_build_info"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let answer = exchange(&a, METRICS, huge.as_bytes()).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(get(&a, METRICS, "/nope").unwrap().0, 404);
    let (status, pointer) = get(&a, METRICS, "/").unwrap();
    assert_eq!((status, pointer.contains("/metrics")), (200, true));

    // The silent client is cut off after the read timeout.
    a.enter(|| {
        let mut idle = idle;
        idle.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = String::new();
        let _ = idle.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    });
    tracer.stop();
}

/// Runs watch with `--metrics ADDR` in a namespace that has no interface to watch: only an
/// error from the metrics listener can come before the one about interfaces.
fn bind_error(ns: &NetNs, addr: &str) -> String {
    let out = Command::new(BIN)
        .args(["--netns", &ns.name, "watch", "--metrics", addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn bind_errors_come_before_attaching_in_one_line() {
    let ns = NetNs::new("m");
    let _taken = ns.enter(|| TcpListener::bind(METRICS).expect("take the metrics port"));
    let err = bind_error(&ns, METRICS);
    assert!(
        err.contains("cannot serve metrics on 127.0.0.1:9464") && err.contains("in use"),
        "{err}"
    );
    let err = bind_error(&ns, "10.99.0.1:9464");
    assert!(
        err.contains("cannot serve metrics on 10.99.0.1:9464")
            && err.contains("Cannot assign requested address"),
        "{err}"
    );
}

#[test]
fn a_non_loopback_address_warns_that_it_is_reachable() {
    let (a, _b) = pair();
    let out = Command::new(BIN)
        .args([
            "--netns", &a.name, "watch", "--iface", "va", "--output", "json",
        ])
        .args(["--duration", "0.5", "--metrics", &format!("{}:9464", A.ip)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("reachable from the network"), "{err}");
}

/// Three hundred local clients that send a byte now and then and never finish a request do
/// not keep scrapes waiting: ten consecutive scrapes are answered while every one of those
/// clients is still unanswered (before, 32 connection slots filled and a scrape waited behind
/// their 5 s timeouts). The scrape times are printed for the record, not asserted.
#[test]
fn hundreds_of_slow_clients_do_not_delay_a_scrape() {
    let (a, _b) = pair();
    let mut tracer = Tracer::watch(&a, &["--iface", "va", "--interval", "0.2", "--metrics"]);
    tracer.started();
    let slow: Vec<TcpStream> = a.enter(|| {
        (0..300)
            .map(|_| {
                let mut s = TcpStream::connect(METRICS).expect("connect to the metrics port");
                s.write_all(b"G").unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect()
    });
    let mut times = Vec::new();
    for _ in 0..10 {
        for mut s in &slow {
            let _ = s.write_all(b"E");
        }
        let t = Instant::now();
        let (status, text) = get(&a, METRICS, "/metrics").expect("a scrape");
        times.push(t.elapsed());
        assert_eq!(status, 200);
        assert!(text.contains("tracer_build_info"), "{text}");
    }
    let unanswered = |mut s: &TcpStream| matches!(s.read(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    let answered = slow.iter().filter(|s| !unanswered(s)).count();
    assert_eq!(
        answered, 0,
        "slow clients were answered (or cut) before the scrapes were"
    );
    eprintln!("scrapes with 300 slow clients open: {times:?}");
    drop(slow);
    tracer.stop();
}

/// `--metrics 127.0.0.1:0` lets the kernel pick the port, and the start line says which: the
/// endpoint answers there.
#[test]
fn port_zero_says_which_port_it_bound() {
    let (a, _b) = pair();
    let mut tracer = Tracer::watch(&a, &["--iface", "va", "--metrics", "127.0.0.1:0"]);
    let start = tracer.started();
    let addr = start
        .metrics
        .expect("the start line names the metrics address");
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    let (status, text) = get(&a, &addr, "/metrics").expect("a scrape at the bound port");
    assert_eq!(status, 200);
    assert!(text.contains("tracer_build_info"), "{text}");
    tracer.stop();
}
