//! The sandbox of the differential tests: a client A, the node under test B and a server C,
//! network namespaces joined by veth pairs (A `a0` - `eth0` B `eth1` - `c0` C, IPv4 and IPv6),
//! with observer tables that tell what B's ruleset did to a probe. An observer base chain at
//! priority 10000 on B counts the probes that got through every other base chain (accepted);
//! counters on A and C count the ICMP errors and TCP resets that come back (rejected);
//! neither means dropped. The namespaces are `tracer_netns` guards, deleted when the test ends.

use std::{
    net::IpAddr,
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::Duration,
};

use tracer_netns::NetNs;
use tracer_nft::{Hook, Packet, Ruleset, SavedRules, Verdict};

/// Panics with a clear message unless running as root.
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().nth(1));
    assert_eq!(
        uid,
        Some("0"),
        "the differential tests load rulesets into network namespaces: run them as root"
    );
}

/// A namespace of the sandbox: the guard, with commands that panic with their error.
pub struct Ns(NetNs);

impl Ns {
    fn new(tag: &str) -> Ns {
        Ns(NetNs::create("nfx-", tag).unwrap_or_else(|e| panic!("{e}")))
    }

    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// Runs `argv` inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> String {
        self.0.exec(argv).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ip(&self, args: &str) {
        let argv: Vec<&str> = args.split_whitespace().collect();
        self.0.ip(&argv).unwrap_or_else(|e| panic!("{e}"));
    }

    fn sysctl(&self, key: &str, value: &str) {
        self.0.sysctl(key, value).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Loads a ruleset in nft syntax.
    pub fn nft(&self, text: &str) {
        self.0.nft(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    }

    /// Runs a shell script (iptables-nft commands).
    pub fn sh(&self, script: &str) {
        self.exec(&["sh", "-e", "-c", script]);
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn run_in<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.0.run_in(f).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends one packet from this namespace.
    pub fn send(&self, proto: &str, src: IpAddr, sport: &str, dst: IpAddr, dport: u16) {
        self.exec(&[
            "python3",
            "-c",
            SEND,
            proto,
            &src.to_string(),
            sport,
            &dst.to_string(),
            &dport.to_string(),
        ]);
    }

    /// A named counter's packets.
    fn counter(&self, name: &str) -> u64 {
        let out = self.exec(&["nft", "-j", "list", "counter", "inet", OBSERVER, name]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        doc["nftables"]
            .as_array()
            .and_then(|items| items.iter().find_map(|i| i.get("counter")))
            .and_then(|c| c["packets"].as_u64())
            .unwrap_or_else(|| panic!("counter {name} in {}: {out}", self.name()))
    }
}

const OBSERVER: &str = "nfx_observe";

/// Counts what passed B's input and forward hooks, after every other base chain.
const NODE_OBSERVER: &str = r#"table inet nfx_observe {
	counter passed { }
	chain input {
		type filter hook input priority 10000; policy accept;
		meta l4proto { tcp, udp } counter name "passed"
		icmp type echo-request counter name "passed"
		icmpv6 type echo-request counter name "passed"
	}
	chain forward {
		type filter hook forward priority 10000; policy accept;
		meta l4proto { tcp, udp } counter name "passed"
		icmp type echo-request counter name "passed"
		icmpv6 type echo-request counter name "passed"
	}
}
"#;

/// Counts the errors a rejecting node sends back to A or C.
const PEER_OBSERVER: &str = r#"table inet nfx_observe {
	counter refused { }
	chain input {
		type filter hook input priority -1000; policy accept;
		icmp type destination-unreachable counter name "refused"
		icmpv6 type destination-unreachable counter name "refused"
		tcp flags & rst == rst counter name "refused"
	}
}
"#;

/// Sends one probe from inside a namespace; `proto src sport dst dport`.
const SEND: &str = r"
import socket, sys, time
proto, src, sport, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
if proto == 'udp':
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, sport))
    s.sendto(b'probe', (dst, dport))
elif proto == 'tcp':
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.bind((src, sport))
    s.setblocking(False)
    s.connect_ex((dst, dport))
    time.sleep(0.05)
else:
    icmp = socket.IPPROTO_ICMPV6 if fam == socket.AF_INET6 else socket.IPPROTO_ICMP
    s = socket.socket(fam, socket.SOCK_DGRAM, icmp)
    s.bind((src, 0))
    s.sendto(bytes([128 if fam == socket.AF_INET6 else 8, 0, 0, 0, 0, 0, 0, 1]), (dst, 0))
s.close()
";

/// The three namespaces.
pub struct Scratch {
    pub a: Ns,
    pub b: Ns,
    pub c: Ns,
    next_port: AtomicU32,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        require_root();
        let lab = Scratch {
            a: Ns::new(&format!("{tag}-a")),
            b: Ns::new(&format!("{tag}-b")),
            c: Ns::new(&format!("{tag}-c")),
            next_port: AtomicU32::new(20000),
        };
        let b = lab.b.name();
        lab.a
            .ip(&format!("link add a0 type veth peer name eth0 netns {b}"));
        lab.c
            .ip(&format!("link add c0 type veth peer name eth1 netns {b}"));
        for (ns, dev, v4, v6) in [
            (&lab.a, "a0", "192.168.10.21/24", "fd00:10::21/64"),
            (&lab.b, "eth0", "192.168.10.22/24", "fd00:10::22/64"),
            (&lab.b, "eth1", "172.16.0.1/24", "fd00:16::1/64"),
            (&lab.c, "c0", "172.16.0.2/24", "fd00:16::2/64"),
        ] {
            ns.ip(&format!("addr add {v4} dev {dev}"));
            ns.ip(&format!("addr add {v6} dev {dev} nodad"));
            ns.ip(&format!("link set {dev} up"));
        }
        // Extra sources on A (a pod address, an address in a blocked range) and a pod on C.
        lab.a.ip("addr add 10.244.1.2/32 dev a0");
        lab.a.ip("addr add 192.168.10.110/32 dev a0");
        lab.c.ip("addr add 10.244.2.2/32 dev c0");
        lab.a.ip("route add 172.16.0.0/24 via 192.168.10.22");
        lab.a.ip("route add 10.244.2.0/24 via 192.168.10.22");
        lab.a.ip("-6 route add fd00:16::/64 via fd00:10::22");
        lab.c.ip("route add default via 172.16.0.1");
        lab.c.ip("-6 route add default via fd00:16::1");
        lab.b.ip("route add 10.244.1.0/24 via 192.168.10.21");
        lab.b.ip("route add 10.244.2.0/24 via 172.16.0.2");
        for (key, value) in [
            ("net.ipv4.ip_forward", "1"),
            ("net.ipv6.conf.all.forwarding", "1"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.eth0.rp_filter", "0"),
            ("net.ipv4.icmp_ratelimit", "0"),
            ("net.ipv6.icmp.ratelimit", "0"),
        ] {
            lab.b.sysctl(key, value);
        }
        for ns in [&lab.a, &lab.c] {
            ns.sysctl("net.ipv4.ping_group_range", "0 2147483647");
        }
        lab
    }

    /// Loads `text` on B and returns its listing, read before the observers are added.
    pub fn load(&self, text: &str) -> Ruleset {
        self.b.nft(text);
        self.listing()
    }

    /// B's ruleset as it is now.
    pub fn listing(&self) -> Ruleset {
        let json = self.b.exec(&["nft", "-j", "list", "ruleset"]);
        Ruleset::from_json(&json, &format!("nft -j list ruleset in {}", self.b.name()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// B's ruleset with the arguments of its iptables-nft extension matches, as
    /// [`Ruleset::read_live`] reads it on a node.
    pub fn listing_with_saved(&self) -> Ruleset {
        let json = self.b.exec(&["nft", "-j", "list", "ruleset"]);
        let saved = SavedRules::collect(|argv| Some(self.b.exec(argv)));
        Ruleset::from_json_with_saved(
            &json,
            &format!("nft -j list ruleset in {}", self.b.name()),
            &saved,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds the observer tables; after this B's listing includes them.
    pub fn observe(&self) {
        self.b.nft(NODE_OBSERVER);
        self.a.nft(PEER_OBSERVER);
        self.c.nft(PEER_OBSERVER);
    }

    /// Sends the probe `p` describes (from A when it comes in on eth0, from C on eth1) and
    /// reports what B's ruleset did to it.
    pub fn kernel_verdict(&self, p: &Packet) -> Verdict {
        let from = match p.iif.as_deref() {
            Some("eth0") => &self.a,
            Some("eth1") => &self.c,
            other => panic!("no namespace sends on {other:?}"),
        };
        assert!(matches!(p.hook, Hook::Input | Hook::Forward), "{p:?}");
        let proto = match p.l4proto {
            6 => "tcp",
            17 => "udp",
            1 | 58 => "icmp",
            other => panic!("cannot send IP protocol {other}"),
        };
        // A fresh source port for each probe keeps conntrack entries of earlier probes out.
        let sport = if p.sport == 40000 {
            self.next_port.fetch_add(1, Ordering::Relaxed).to_string()
        } else {
            p.sport.to_string()
        };
        let before = (self.b.counter("passed"), self.refused());
        from.send(proto, p.saddr, &sport, p.daddr, p.dport);
        let mut after = before;
        // Probes travel veths synchronously, replies too; a short wait covers the rest.
        for _ in 0..12 {
            thread::sleep(Duration::from_millis(25));
            after = (self.b.counter("passed"), self.refused());
            if after != before {
                break;
            }
        }
        if after.0 > before.0 {
            Verdict::Accept
        } else if after.1 > before.1 {
            Verdict::Reject
        } else {
            Verdict::Drop
        }
    }

    fn refused(&self) -> u64 {
        self.a.counter("refused") + self.c.counter("refused")
    }
}
