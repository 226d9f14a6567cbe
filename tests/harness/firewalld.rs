//! A real firewalld in a scratch network namespace, with the lab's recipe
//! (`tracer_lab::firewalld`): a node directory holding its configuration and private bus,
//! dbus-daemon and firewalld started in the namespace, `firewall-cmd` against them. Everything
//! is stopped and removed when the guard drops, also on failure.

use std::{
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use tempfile::TempDir;
use tracer::model::firewalld::{Permanent, Runtime, read_permanent, read_runtime_at};
use tracer_lab::firewalld::{bus_address, firewall_cmd, prepare_node_dir, start, wait_ready};

use super::netns::NetNs;

/// The host's stock configuration, read-only.
const STOCK: &str = "/usr/lib/firewalld";

/// One node: a namespace, a node directory, and the daemons started in them.
pub struct Scratch {
    pub netns: NetNs,
    dir: TempDir,
    /// (pid, name), firewalld before dbus-daemon so it leaves the bus while it is there.
    daemons: Vec<(u32, &'static str)>,
}

impl Scratch {
    /// A namespace tagged `tag` and a node directory, nothing started yet.
    pub fn new(tag: &str) -> Scratch {
        let netns = NetNs::new(tag);
        // Short, under /tmp: the bus socket path must fit in 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("hbfwd-")
            .tempdir_in("/tmp")
            .expect("node dir");
        let s = Scratch {
            netns,
            dir,
            daemons: Vec::new(),
        };
        prepare_node_dir(s.dir()).unwrap_or_else(|e| panic!("prepare node dir: {e:#}"));
        std::fs::create_dir_all(s.dir().join("usr/lib")).expect("mkdir usr/lib");
        std::os::unix::fs::symlink(STOCK, s.dir().join("usr/lib/firewalld")).expect("symlink");
        s
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts dbus-daemon and firewalld; `Err` is firewalld's startup failure.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let d = start(&self.netns.name, self.dir()).unwrap_or_else(|e| panic!("start: {e:#}"));
        self.daemons
            .extend([(d.firewalld_pid, "firewalld"), (d.dbus_pid, "dbus-daemon")]);
        wait_ready(&self.netns.name, self.dir(), Duration::from_secs(30))
    }

    /// Stops the daemons named `which` (all when `None`), SIGTERM then SIGKILL, and reaps them.
    pub fn stop(&mut self, which: Option<&str>) {
        let (stop, keep): (Vec<_>, Vec<_>) = self
            .daemons
            .iter()
            .partition(|(_, n)| which.is_none_or(|w| w == *n));
        for (pid, name) in stop {
            // SAFETY: kill and waitpid on our own unreaped child, whose pid cannot be reused
            // until we reap it; no memory is shared.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            loop {
                let mut status = 0;
                // SAFETY: as above; `status` is ours to write.
                let r = unsafe { libc::waitpid(pid as i32, &raw mut status, libc::WNOHANG) };
                if r != 0 {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    eprintln!("{name} (pid {pid}) ignored SIGTERM for 10 s: SIGKILL");
                    // SAFETY: as above.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                        libc::waitpid(pid as i32, &raw mut status, 0);
                    }
                    break;
                }
                sleep(Duration::from_millis(20));
            }
        }
        self.daemons = keep;
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        firewall_cmd(&self.netns.name, self.dir(), args)
            .unwrap_or_else(|e| panic!("firewall-cmd {args:?}: {e:#}"))
    }

    pub fn address(&self) -> String {
        bus_address(self.dir()).expect("bus address")
    }

    pub fn runtime(&self) -> Runtime {
        read_runtime_at(&self.address())
            .unwrap_or_else(|e| panic!("read runtime: {e}"))
            .expect("firewalld should be running")
    }

    pub fn permanent(&self) -> Permanent {
        read_permanent(self.dir())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.stop(None);
    }
}
