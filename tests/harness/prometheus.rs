//! A real Prometheus server (Debian's package) inside a test's namespace, scraping the
//! targets it is given every second and evaluating tracer's shipped rules when asked; killed
//! and its storage removed when the guard drops, also when the test panics.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The shipped rules.
pub fn shipped_rules() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/tracer-rules.yml")
}

pub struct PromServer {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://ADDR`, as `tracer cluster --prometheus` takes it.
    pub url: String,
}

impl PromServer {
    /// Starts Prometheus on `addr` in the namespace `ns`, scraping `targets` (job `tracer`),
    /// with `rules` loaded; waits until it is ready.
    pub fn start(ns: &str, addr: &str, targets: &[String], rules: &[PathBuf]) -> PromServer {
        let dir = tempfile::Builder::new()
            .prefix("tracer-prometheus")
            .tempdir()
            .unwrap();
        let config = dir.path().join("prometheus.yml");
        let quoted: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let files: Vec<String> = rules
            .iter()
            .map(|r| format!("'{}'", r.canonicalize().unwrap().display()))
            .collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: [{}]\n",
                files.join(", "),
                quoted.join(", ")
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        // `ip netns exec` execs the program itself, so the child is Prometheus.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian package prometheus; cargo xtask setup installs it)");
        let mut p = PromServer {
            child,
            dir,
            url: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(ns, addr) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 30s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `/-/ready` answers 200.
fn ready(ns: &str, addr: &str) -> bool {
    tracer_netns::run_in(ns, || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = format!("GET /-/ready HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        let mut answer = String::new();
        s.write_all(request.as_bytes()).is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.0 200")
    })
    .unwrap_or_else(|e| panic!("{e}"))
}
