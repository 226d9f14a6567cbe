//! Network namespaces named uniquely per test and deleted when the guard drops, plus veth
//! pairs between them.

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A network namespace that exists for the guard's lifetime.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> Self {
        super::require_root();
        let name = format!(
            "trt-{}-{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// Runs a program inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv))
    }

    /// Loads an nftables ruleset (nft -f syntax) into the namespace.
    pub fn nft(&self, ruleset: &str) {
        tracer::lab::net::nft(&self.name, ruleset).unwrap_or_else(|e| panic!("{e:#}:\n{ruleset}"));
    }

    /// Drops UDP to `port` arriving in the namespace, with a real nftables rule.
    pub fn nft_drop_input(&self, port: u16) {
        self.nft(&format!("table inet trt {{\n chain input {{\n type filter hook input priority 0;\n udp dport {port} drop\n }}\n}}\n"));
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }

    /// Runs `f` on a thread that has entered the namespace (setns is per thread).
    pub fn enter<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        tracer::model::netns::run_in(&self.name, f).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One end of a veth pair, configured.
pub struct Veth {
    pub name: &'static str,
    pub mac: [u8; 6],
    pub ip: std::net::Ipv4Addr,
}

impl Veth {
    pub fn mac_text(&self) -> String {
        self.mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Connects two namespaces with a veth pair, addresses in a /24, IPv6 off to keep the
/// links quiet.
pub fn veth_pair(a: &NetNs, a_end: &Veth, b: &NetNs, b_end: &Veth) {
    a.ip(&[
        "link",
        "add",
        a_end.name,
        "address",
        &a_end.mac_text(),
        "type",
        "veth",
        "peer",
        "name",
        b_end.name,
        "address",
        &b_end.mac_text(),
        "netns",
        &b.name,
    ]);
    for (ns, end) in [(a, a_end), (b, b_end)] {
        ns.sysctl(&format!("net.ipv6.conf.{}.disable_ipv6", end.name), "1");
        ns.ip(&["addr", "add", &format!("{}/24", end.ip), "dev", end.name]);
        ns.ip(&["link", "set", end.name, "up"]);
    }
}

/// Two fresh namespaces, tagged `<tag>a` and `<tag>b`, joined by a veth pair with these ends.
pub fn joined(tag: &str, a_end: &Veth, b_end: &Veth) -> (NetNs, NetNs) {
    let a = NetNs::new(&format!("{tag}a"));
    let b = NetNs::new(&format!("{tag}b"));
    veth_pair(&a, a_end, &b, b_end);
    (a, b)
}

/// A kube-apiserver stand-in in `ns` (which owns `own`): a listener on 6443 answering each SYN
/// with exactly one SYN-ACK (from a cookie, never retransmitted). The SYNs are to come from
/// `silent`, an address on `peer`'s link that nothing owns, so the SYN-ACKs leave through
/// `own` and nothing answers them: one egress packet per ingress SYN, exactly.
pub fn silent_apiserver(
    ns: &NetNs,
    own: &Veth,
    peer: &Veth,
    silent: std::net::Ipv4Addr,
) -> std::net::TcpListener {
    ns.ip(&[
        "neigh",
        "add",
        &silent.to_string(),
        "lladdr",
        &peer.mac_text(),
        "dev",
        own.name,
        "nud",
        "permanent",
    ]);
    ns.sysctl("net.ipv4.tcp_syncookies", "2");
    ns.sysctl("net.ipv4.tcp_synack_retries", "0");
    ns.enter(|| std::net::TcpListener::bind("0.0.0.0:6443").expect("listen on 6443"))
}
