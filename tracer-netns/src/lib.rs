//! Network namespaces, the one place the project handles them. The node binary uses [`enter`]
//! (`tracer --netns NAME`); the tests, the lab and the bench create scratch namespaces with
//! [`NetNs`], a guard that names each one uniquely and deletes it when dropped, and run
//! commands or closures inside any namespace with [`exec`], [`ip`], [`nft`] and [`run_in`];
//! [`run_in_scratch`] gives a closure a fresh, nameless namespace that vanishes with it.
//!
//! Every command runs inside a namespace (`ip netns exec`, `ip -n`): nothing here changes the
//! namespace the caller lives in, except [`enter`], which moves the calling thread on purpose.

use std::{
    fs::File,
    io::Write,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

/// What went wrong with a namespace or a command run in one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command}: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("network namespace {name:?}: cannot open {} (see `ip netns list`): {source}", path.display())]
    Open {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("entering network namespace {name:?}: {source}")]
    Enter {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread inside network namespace {0:?} panicked")]
    Panicked(String),
    #[error("creating a scratch network namespace (needs root, CAP_SYS_ADMIN): {0}")]
    Unshare(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The file of a namespace given by `ip netns` name, or by path (`/proc/PID/ns/net`).
pub fn path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("/run/netns").join(name)
    }
}

/// Moves the calling thread into the network namespace `name`. setns applies to the calling
/// thread only: a program that wants all of its threads inside calls this before it starts any.
pub fn enter(name: &str) -> Result<()> {
    let path = path(name);
    let file = File::open(&path).map_err(|source| Error::Open {
        name: name.to_string(),
        path: path.clone(),
        source,
    })?;
    // SAFETY: setns on a descriptor we own and keep open for the call; it changes only the
    // calling thread's namespace and touches no memory of ours.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::Enter {
            name: name.to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Runs `f` on a scoped thread that has entered the network namespace `name`, leaving the
/// calling thread where it is; `f`'s result, or why the thread could not enter or panicked.
pub fn run_in<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(name)?;
                Ok(f())
            })
            .join()
            .map_err(|_| Error::Panicked(name.to_string()))?
    })
}

/// Runs `f` on a scoped thread that has moved into a new, empty network namespace of its own
/// (loopback only, down): commands it starts run there too. The namespace has no name and no
/// file, so nothing is left behind however the process ends: the kernel frees it when its last
/// thread and process are gone. For reading rules into nftables without touching the node's.
pub fn run_in_scratch<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: unshare changes only the calling thread's network namespace (this
                // scoped thread, which ends with `f`) and reads no memory of ours.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(Error::Unshare(std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .map_err(|_| Error::Panicked("(scratch)".to_string()))?
    })
}

/// Runs a command to its end; its stdout, or an error naming it with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let command = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Failed {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS args...`
pub fn ip(ns: &str, args: &[&str]) -> Result<String> {
    run(Command::new("ip").arg("-n").arg(ns).args(args))
}

/// A program run inside the namespace `ns`, to its end.
pub fn exec(ns: &str, argv: &[&str]) -> Result<String> {
    run(&mut command_in(ns, argv))
}

/// A command that runs `argv` inside the namespace `ns`, for callers that start it themselves.
pub fn command_in(ns: &str, argv: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(argv);
    cmd
}

/// Sets a sysctl inside the namespace `ns` (the `net.*` ones are per namespace).
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    exec(ns, &["sysctl", "-qw", &format!("{key}={value}")]).map(drop)
}

/// Loads a ruleset (`nft -f` syntax) into the namespace `ns`.
pub fn nft(ns: &str, ruleset: &str) -> Result<()> {
    let command = format!("nft -f - in {ns}");
    let spawn_error = |source| Error::Spawn {
        command: command.clone(),
        source,
    };
    let mut child = command_in(ns, &["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ruleset.as_bytes()).map_err(spawn_error)?;
    }
    let out = child.wait_with_output().map_err(spawn_error)?;
    if !out.status.success() {
        return Err(Error::Failed {
            command,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A scratch network namespace, named `<prefix><pid>-<n>-<tag>` so that parallel tests and
/// runs never collide, with loopback up. It is deleted when the guard drops, also when a test
/// panics or a run fails; [`remove_stale`] deletes those of processes that were killed.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace. `prefix` says whose it is (`trt-` for tests, `bn-` for the
    /// bench); `tag` what it is for.
    pub fn create(prefix: &str, tag: &str) -> Result<NetNs> {
        let name = format!(
            "{prefix}{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates the namespace `name` exactly, for a test that needs a name of its choosing;
    /// deleted when the guard drops, like the others.
    pub fn named(name: &str) -> Result<NetNs> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = NetNs {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        ip(&self.name, args)
    }

    /// Runs a program inside the namespace, to its end.
    pub fn exec(&self, argv: &[&str]) -> Result<String> {
        exec(&self.name, argv)
    }

    /// A command that runs `argv` inside the namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        command_in(&self.name, argv)
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        sysctl(&self.name, key, value)
    }

    /// Loads an nftables ruleset (`nft -f` syntax) into the namespace.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        nft(&self.name, ruleset)
    }

    /// Runs `f` on a thread that has entered the namespace (setns is per thread).
    pub fn run_in<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        run_in(&self.name, f)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// One end of a veth pair: the namespace it goes in, its name, its IPv4 address in a /24 and,
/// when it matters, its MAC address.
#[derive(Clone, Copy, Debug)]
pub struct End<'a> {
    pub ns: &'a NetNs,
    pub name: &'a str,
    pub ip: std::net::Ipv4Addr,
    pub mac: Option<[u8; 6]>,
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Connects two namespaces with a veth pair, addresses in a /24, IPv6 off to keep the link
/// quiet.
pub fn veth_pair(a: &End, b: &End) -> Result<()> {
    let mut args = vec!["link", "add", a.name];
    let (a_mac, b_mac) = (a.mac.map(|m| mac_text(&m)), b.mac.map(|m| mac_text(&m)));
    if let Some(m) = &a_mac {
        args.extend(["address", m]);
    }
    args.extend(["type", "veth", "peer", "name", b.name]);
    if let Some(m) = &b_mac {
        args.extend(["address", m]);
    }
    args.extend(["netns", b.ns.name()]);
    a.ns.ip(&args)?;
    for end in [a, b] {
        end.ns
            .sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "1")?;
        end.ns
            .ip(&["addr", "add", &format!("{}/24", end.ip), "dev", end.name])?;
        end.ns.ip(&["link", "set", end.name, "up"])?;
    }
    Ok(())
}

/// Deletes the namespaces named `<prefix><pid>-...` whose process is gone, and stops what still
/// runs in them: what a run that was killed left behind. Namespaces of runs still going, and every other namespace, are left
/// alone. Returns the names deleted.
pub fn remove_stale(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // What the run started there (a firewalld, a D-Bus daemon) outlives the namespace's
        // name: stop it first.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &name]).output() {
            for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(p).status();
            }
        }
        if Command::new("ip")
            .args(["netns", "del", &name])
            .status()
            .is_ok_and(|s| s.success())
        {
            removed.push(name);
        }
    }
    removed
}
