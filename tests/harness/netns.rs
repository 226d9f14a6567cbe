//! Network namespaces named uniquely per test and deleted when the guard drops, plus veth
//! pairs between them.

use std::process::Command;

/// Runs a command, panicking with its error when it fails.
pub fn run(cmd: &mut Command) -> String {
    tracer_netns::run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// A network namespace for one test: the project's one namespace guard
/// ([`tracer_netns::NetNs`], deleted when dropped), with commands that panic with their error.
pub struct NetNs {
    pub name: String,
    guard: tracer_netns::NetNs,
}

impl NetNs {
    pub fn new(tag: &str) -> Self {
        super::require_root();
        // A run killed with SIGKILL cannot delete its namespaces; the first namespace of this
        // run deletes those whose run is gone (`trt-<pid>-...`, the pid no longer alive).
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| {
            for name in tracer_netns::remove_stale("trt-") {
                eprintln!("deleted {name}, left by a test run that is gone");
            }
        });
        let guard = tracer_netns::NetNs::create("trt-", tag).unwrap_or_else(|e| panic!("{e}"));
        NetNs {
            name: guard.name().to_string(),
            guard,
        }
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> String {
        self.guard.ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A command that runs `argv` inside the namespace.
    pub fn command(&self, argv: &[&str]) -> std::process::Command {
        self.guard.command(argv)
    }

    /// Runs a program inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> String {
        self.guard.exec(argv).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads an nftables ruleset (nft -f syntax) into the namespace.
    pub fn nft(&self, ruleset: &str) {
        self.guard
            .nft(ruleset)
            .unwrap_or_else(|e| panic!("{e}:\n{ruleset}"));
    }

    /// Drops UDP to `port` arriving in the namespace, with a real nftables rule.
    pub fn nft_drop_input(&self, port: u16) {
        self.nft(&format!("table inet trt {{\n chain input {{\n type filter hook input priority 0;\n udp dport {port} drop\n }}\n}}\n"));
    }

    pub fn sysctl(&self, key: &str, value: &str) {
        self.guard
            .sysctl(key, value)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `f` on a thread that has entered the namespace (setns is per thread).
    pub fn enter<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        self.guard.run_in(f).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// One end of a veth pair, configured.
pub struct Veth {
    pub name: &'static str,
    pub mac: [u8; 6],
    pub ip: std::net::Ipv4Addr,
}

impl Veth {
    /// This end, in `ns`.
    fn end<'a>(&'a self, ns: &'a NetNs) -> tracer_netns::End<'a> {
        tracer_netns::End {
            ns: &ns.guard,
            name: self.name,
            ip: self.ip,
            mac: Some(self.mac),
        }
    }
}

/// Connects two namespaces with a veth pair, addresses in a /24, IPv6 off to keep the
/// links quiet.
pub fn veth_pair(a: &NetNs, a_end: &Veth, b: &NetNs, b_end: &Veth) {
    tracer_netns::veth_pair(&a_end.end(a), &b_end.end(b)).unwrap_or_else(|e| panic!("{e}"));
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
        &tracer_netns::mac_text(&peer.mac),
        "dev",
        own.name,
        "nud",
        "permanent",
    ]);
    ns.sysctl("net.ipv4.tcp_syncookies", "2");
    ns.sysctl("net.ipv4.tcp_synack_retries", "0");
    ns.enter(|| std::net::TcpListener::bind("0.0.0.0:6443").expect("listen on 6443"))
}
