//! A real Prometheus server inside a test's namespace ([`tracer_lab::prometheus`], the lab's
//! one way to start it), scraping the targets it is given every second with the rules it is
//! given; killed and its storage removed when the guard drops, also when the test panics.

use std::{
    path::PathBuf,
    process::Child,
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
    /// Starts Prometheus on `addr` in the namespace `ns`, scraping `targets` with `rules`
    /// loaded; waits until it is ready.
    pub fn start(ns: &str, addr: &str, targets: &[String], rules: &[PathBuf]) -> PromServer {
        let dir = tempfile::Builder::new()
            .prefix("tracer-prometheus")
            .tempdir()
            .unwrap();
        let child = tracer_lab::prometheus::spawn(ns, dir.path(), addr, targets, rules)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let mut p = PromServer {
            child,
            dir,
            url: format!("http://{addr}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !tracer_lab::prometheus::ready(ns, addr) {
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
        tracer_lab::prometheus::log(self.dir.path())
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
