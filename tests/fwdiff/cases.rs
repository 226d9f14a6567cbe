//! Seeded random firewalld configurations and the packets to try on them. One seed gives one
//! case: zones (targets, interface and source bindings, ipset sources, services, ports,
//! protocols, source ports, icmp-blocks and their inversion, intra-zone forwarding, rich
//! rules of every kind and priority), services (with includes and destinations), policies
//! (ingress zones or ANY to HOST, zone to zone, targets, priorities), ipsets, direct rules,
//! iptables-nft and iptables-legacy rules, all as files firewalld reads and commands, and the probes: packets from
//! the peers to the node and through it, aimed at what the configuration names so that every
//! element gets its turn. Everything is drawn from a fixed splitmix64 stream, so a seed
//! replays the same case on any machine.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// splitmix64: small, fixed, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    pub fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
}

/// The addresses of one worker's little network: the node between peer A (on the node's
/// `eth0`) and peer B (on `eth1`).
#[derive(Clone, Copy, Debug)]
pub struct Net {
    /// The second octet of every address: 10.N.x.y.
    pub n: u8,
}

/// How many addresses each peer holds: .2 to .7 of its /24.
pub const PEER_HOSTS: u8 = 6;

impl Net {
    /// Node address on eth0 (side 0) or eth1 (side 1).
    pub fn node(self, side: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.n, side, 1)
    }

    /// The node's second address on eth0.
    pub fn node_extra(self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.n, 0, 100)
    }

    /// Peer address `i` (0-based) on side 0 (A) or 1 (B).
    pub fn peer(self, side: u8, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.n, side, 2 + i)
    }
}

/// A packet to send and judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Sent by peer A (0) or B (1).
    pub side: u8,
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// 6 tcp, 17 udp, 1 icmp (echo request).
    pub proto: u8,
    pub dport: u16,
    /// Through the node to the other peer, rather than to the node.
    pub forward: bool,
}

impl Probe {
    pub fn iif(&self) -> &'static str {
        if self.side == 0 { "eth0" } else { "eth1" }
    }

    pub fn oif(&self) -> Option<&'static str> {
        self.forward
            .then_some(if self.side == 0 { "eth1" } else { "eth0" })
    }

    pub fn describe(&self) -> String {
        let what = match self.proto {
            6 => format!("tcp {}", self.dport),
            17 => format!("udp {}", self.dport),
            _ => "icmp echo-request".to_string(),
        };
        format!(
            "{} {} -> {} {what}{}",
            self.iif(),
            self.saddr,
            self.daddr,
            if self.forward { " (forwarded)" } else { "" }
        )
    }
}

/// One generated case: the files of `etc/firewalld`, iptables-nft rules, and the probes.
#[derive(Clone, Debug, Default)]
pub struct Case {
    pub seed: u64,
    /// (relative path under etc/firewalld, content).
    pub files: Vec<(String, String)>,
    /// iptables-nft arguments, each appended with `-A`.
    pub iptables: Vec<String>,
    /// iptables-legacy arguments (x_tables, table filter), each appended with `-A`. A case
    /// has these or iptables-nft rules and direct rules, not both: iptables' filter chains
    /// of both backends hook at the same priority, in an order no listing shows.
    pub legacy: Vec<String>,
    pub probes: Vec<Probe>,
}

/// (port, protocol): the port pool, small so that rules and probes meet.
const PORTS: &[(&str, &str)] = &[
    ("22", "tcp"),
    ("80", "tcp"),
    ("179", "tcp"),
    ("443", "tcp"),
    ("2379-2380", "tcp"),
    ("4789", "udp"),
    ("6443", "tcp"),
    ("8472", "udp"),
    ("9000-9010", "tcp"),
    ("10250", "tcp"),
    ("53", "udp"),
    ("123", "udp"),
];
const STOCK_SERVICES: &[&str] = &["ssh", "http", "https", "dns", "ntp", "bgp", "mdns"];
const ZONES: &[&str] = &[
    "public", "work", "dmz", "internal", "home", "z-one", "z-two",
];
const TARGETS: &[Option<&str>] = &[
    None,
    None,
    None,
    Some("DROP"),
    Some("%%REJECT%%"),
    Some("ACCEPT"),
];
const ICMP: &[&str] = &["echo-request", "timestamp-request", "echo-reply"];

fn first_port(spec: &str) -> u16 {
    spec.split('-').next().unwrap().parse().unwrap()
}

/// A zone being generated.
#[derive(Default)]
struct ZoneGen {
    name: String,
    body: String,
    interfaces: Vec<String>,
    sources: Vec<String>,
}

struct Gen<'a> {
    r: &'a mut Rng,
    net: Net,
    services: Vec<String>,
    ipsets: Vec<String>,
    /// (source address, port, proto) of rich rules, to aim probes at.
    aims: Vec<(Option<Ipv4Addr>, u16, u8)>,
    files: Vec<(String, String)>,
    iptables: Vec<String>,
    legacy: Vec<String>,
}

impl Gen<'_> {
    fn peer_host(&mut self) -> Ipv4Addr {
        let side = self.r.below(2) as u8;
        let i = self.r.below(PEER_HOSTS as usize) as u8;
        self.net.peer(side, i)
    }

    /// An address or network of the peers, as a source.
    fn source(&mut self) -> String {
        let n = self.net.n;
        match self.r.below(5) {
            0 | 1 => self.peer_host().to_string(),
            2 => format!("10.{n}.{}.0/29", self.r.below(2)),
            3 => format!("10.{n}.{}.4/30", self.r.below(2)),
            _ => format!("10.{n}.{}.0/24", self.r.below(2)),
        }
    }

    /// One rich rule's XML; records what it aims at.
    fn rich(&mut self, with_elements: bool) -> String {
        let mut x = String::from("<rule");
        let prio = match self.r.below(10) {
            0..=5 => 0,
            6 | 7 => -(1 + self.r.below(20) as i32),
            _ => 1 + self.r.below(20) as i32,
        };
        if prio != 0 {
            let _ = write!(x, " priority=\"{prio}\"");
        }
        x.push_str(" family=\"ipv4\">");
        let mut src = None;
        if self.r.chance(75) {
            let not = if self.r.chance(10) {
                " invert=\"yes\""
            } else {
                ""
            };
            if !self.ipsets.is_empty() && self.r.chance(15) {
                let set = self.r.pick(&self.ipsets).clone();
                let _ = write!(x, "<source ipset=\"{set}\"{not}/>");
            } else {
                let s = self.source();
                if !s.contains('/') && not.is_empty() {
                    src = s.parse().ok();
                }
                let _ = write!(x, "<source address=\"{s}\"{not}/>");
            }
        }
        if self.r.chance(15) {
            let not = if self.r.chance(20) {
                " invert=\"yes\""
            } else {
                ""
            };
            let d = if self.r.chance(50) {
                self.net.node(0)
            } else {
                self.net.node_extra()
            };
            let _ = write!(x, "<destination address=\"{d}\"{not}/>");
        }
        let need = with_elements || !x.contains("<source");
        let (port, proto, icmp_block) = if need {
            self.element(&mut x)
        } else {
            (0, 6, false)
        };
        self.tail(&mut x, icmp_block, proto);
        self.aims.push((src, port, proto));
        x
    }

    /// A rich rule's element: (port, protocol, whether it is an icmp-block).
    fn element(&mut self, x: &mut String) -> (u16, u8, bool) {
        let mut icmp_block = false;
        let (mut port, mut proto) = (0, 6);
        match self.r.below(7) {
            0..=2 => {
                let (p, pr) = *self.r.pick(PORTS);
                let _ = write!(x, "<port port=\"{p}\" protocol=\"{pr}\"/>");
                (port, proto) = (first_port(p), if pr == "tcp" { 6 } else { 17 });
            }
            3 => {
                let s = self.r.pick(&self.services).clone();
                let _ = write!(x, "<service name=\"{s}\"/>");
            }
            4 => {
                let p = *self.r.pick(&["tcp", "udp", "icmp"]);
                let _ = write!(x, "<protocol value=\"{p}\"/>");
                proto = match p {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => 1,
                };
            }
            5 => {
                let _ = write!(x, "<icmp-type name=\"{}\"/>", self.r.pick(ICMP));
                proto = 1;
            }
            _ => {
                let _ = write!(x, "<icmp-block name=\"{}\"/>", self.r.pick(ICMP));
                (icmp_block, proto) = (true, 1);
            }
        }
        (port, proto, icmp_block)
    }

    /// A rich rule's log, audit and action, and its end.
    fn tail(&mut self, x: &mut String, icmp_block: bool, proto: u8) {
        if self.r.chance(20) {
            x.push_str("<log prefix=\"fwdiff \" level=\"info\">");
            if self.r.chance(50) {
                x.push_str("<limit value=\"10/m\"/>");
            }
            x.push_str("</log>");
        }
        if self.r.chance(10) {
            x.push_str("<audit/>");
        }
        if !icmp_block {
            x.push_str(match self.r.below(6) {
                0 | 1 => "<accept/>",
                2 => "<drop/>",
                3 => "<reject/>",
                4 => "<reject type=\"icmp-host-prohibited\"/>",
                _ => "<reject type=\"tcp-reset\"/>",
            });
        }
        x.push_str("</rule>\n");
        if x.contains("tcp-reset") && proto != 6 {
            // firewalld refuses a TCP reset for anything but TCP.
            *x = x.replace("<reject type=\"tcp-reset\"/>", "<reject/>");
        }
        if x.contains("tcp-reset")
            && !x.contains("protocol=\"tcp\"")
            && !x.contains("value=\"tcp\"")
        {
            *x = x.replace("<reject type=\"tcp-reset\"/>", "<drop/>");
        }
    }

    /// The common elements of a zone or a policy.
    fn elements(&mut self, body: &mut String, zone: bool) {
        for _ in 0..self.r.below(3) {
            let s = self.r.pick(&self.services).clone();
            if !body.contains(&format!("service name=\"{s}\"")) {
                let _ = writeln!(body, "  <service name=\"{s}\"/>");
            }
        }
        for _ in 0..self.r.below(4) {
            let (p, pr) = *self.r.pick(PORTS);
            let _ = writeln!(body, "  <port port=\"{p}\" protocol=\"{pr}\"/>");
        }
        if self.r.chance(15) {
            let _ = writeln!(
                body,
                "  <protocol value=\"{}\"/>",
                self.r.pick(&["gre", "vrrp", "icmp", "udp"])
            );
        }
        if self.r.chance(10) {
            let _ = writeln!(
                body,
                "  <source-port port=\"{}\" protocol=\"tcp\"/>",
                40000 + self.r.below(3) * 1000
            );
        }
        if self.r.chance(30) {
            let _ = writeln!(body, "  <icmp-block name=\"{}\"/>", self.r.pick(ICMP));
        }
        if zone && self.r.chance(15) {
            body.push_str("  <icmp-block-inversion/>\n");
        }
        for _ in 0..self.r.below(4) {
            let with = self.r.chance(70);
            let rule = self.rich(with);
            body.push_str("  ");
            body.push_str(&rule);
        }
    }
}

const XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

impl Gen<'_> {
    /// Services of our own, one including another, maybe with a destination.
    fn services(&mut self) {
        if !self.r.chance(50) {
            return;
        }
        let (p, pr) = *self.r.pick(PORTS);
        let dest = if self.r.chance(25) {
            format!("  <destination ipv4=\"{}\"/>\n", self.net.node(0))
        } else {
            String::new()
        };
        self.files.push((
            "services/svc-b.xml".to_string(),
            format!("{XML}<service>\n  <port port=\"{p}\" protocol=\"{pr}\"/>\n{dest}</service>\n"),
        ));
        let (p2, pr2) = *self.r.pick(PORTS);
        self.files.push((
            "services/svc-a.xml".to_string(),
            format!("{XML}<service>\n  <port port=\"{p2}\" protocol=\"{pr2}\"/>\n  <include service=\"svc-b\"/>\n</service>\n"),
        ));
        self.services
            .extend(["svc-a".to_string(), "svc-b".to_string()]);
    }

    /// An ipset of peers: hosts for hash:ip, one network for hash:net (nft refuses
    /// overlapping intervals).
    fn ipset(&mut self) {
        if !self.r.chance(30) {
            return;
        }
        let kind = if self.r.chance(50) {
            "hash:ip"
        } else {
            "hash:net"
        };
        let entries: Vec<String> = if kind == "hash:ip" {
            let mut hosts: Vec<String> = (0..=self.r.below(3))
                .map(|_| self.peer_host().to_string())
                .collect();
            hosts.sort();
            hosts.dedup();
            hosts
        } else {
            vec![self.source()]
        };
        let mut body = String::new();
        for e in entries {
            let _ = writeln!(body, "  <entry>{e}</entry>");
        }
        self.files.push((
            "ipsets/peers.xml".to_string(),
            format!("{XML}<ipset type=\"{kind}\">\n{body}</ipset>\n"),
        ));
        self.ipsets.push("peers".into());
    }

    /// One to three zones, with bindings and elements; the names of the active ones.
    fn zones(&mut self) -> (Vec<ZoneGen>, Vec<&'static str>) {
        let count = 1 + self.r.below(3);
        let mut names: Vec<&'static str> = Vec::new();
        while names.len() < count {
            let z = *self.r.pick(ZONES);
            if !names.contains(&z) {
                names.push(z);
            }
        }
        let mut ifaces = vec!["eth0", "eth1"];
        let mut zones: Vec<ZoneGen> = Vec::new();
        let mut used_sources: Vec<String> = Vec::new();
        for name in &names {
            let mut z = ZoneGen {
                name: (*name).to_string(),
                ..ZoneGen::default()
            };
            if !ifaces.is_empty() && self.r.chance(60) {
                let i = ifaces.remove(self.r.below(ifaces.len()));
                z.interfaces.push(i.to_string());
            } else if self.r.chance(10) && ifaces.len() == 2 {
                ifaces.clear();
                z.interfaces.push("eth+".to_string());
            }
            for _ in 0..self.r.below(3) {
                let s = if !self.ipsets.is_empty() && self.r.chance(20) {
                    "ipset:peers".to_string()
                } else {
                    self.source()
                };
                if !used_sources.contains(&s) {
                    used_sources.push(s.clone());
                    z.sources.push(s);
                }
            }
            let target = *self.r.pick(TARGETS);
            let mut body = String::new();
            self.elements(&mut body, true);
            if self.r.chance(60) {
                body.push_str("  <forward/>\n");
            }
            z.body = match target {
                Some(t) => format!("<zone target=\"{t}\">\n{body}"),
                None => format!("<zone>\n{body}"),
            };
            zones.push(z);
        }
        // Leftover interfaces sometimes join a zone, so that a zone may hold both.
        if !ifaces.is_empty() && self.r.chance(40) {
            let i = self.r.below(zones.len());
            zones[i].interfaces.push(ifaces.remove(0).to_string());
        }
        for z in &zones {
            let mut x = format!("{XML}{}", z.body);
            for i in &z.interfaces {
                let _ = writeln!(x, "  <interface name=\"{i}\"/>");
            }
            for s in &z.sources {
                match s.strip_prefix("ipset:") {
                    Some(set) => {
                        let _ = writeln!(x, "  <source ipset=\"{set}\"/>");
                    }
                    None => {
                        let _ = writeln!(x, "  <source address=\"{s}\"/>");
                    }
                }
            }
            x.push_str("</zone>\n");
            self.files.push((format!("zones/{}.xml", z.name), x));
        }
        (zones, names)
    }

    /// Up to two policies between the active zones, ANY and HOST.
    fn policies(&mut self, zones: &[ZoneGen]) {
        let active: Vec<String> = zones
            .iter()
            .filter(|z| !z.interfaces.is_empty() || !z.sources.is_empty())
            .map(|z| z.name.clone())
            .collect();
        for pi in 0..self.r.below(3) {
            let ingress = if active.is_empty() || self.r.chance(30) {
                "ANY".to_string()
            } else {
                self.r.pick(&active).clone()
            };
            let egress = if self.r.chance(75) || active.len() < 2 {
                "HOST".to_string()
            } else if self.r.chance(30) {
                "ANY".to_string()
            } else {
                self.r.pick(&active).clone()
            };
            if ingress == "ANY" && egress == "ANY" {
                continue;
            }
            let target = *self
                .r
                .pick(&["CONTINUE", "CONTINUE", "ACCEPT", "DROP", "REJECT"]);
            let prio = if self.r.chance(70) {
                -(1 + self.r.below(30) as i32)
            } else {
                1 + self.r.below(30) as i32
            };
            let mut body = String::new();
            self.elements(&mut body, false);
            self.files.push((
                format!("policies/pol{pi}.xml"),
                format!("{XML}<policy target=\"{target}\" priority=\"{prio}\">\n  <ingress-zone name=\"{ingress}\"/>\n  <egress-zone name=\"{egress}\"/>\n{body}</policy>\n"),
            ));
        }
    }

    /// A direct rule sometimes, and iptables-nft or iptables-legacy rules beside firewalld
    /// (the legacy ones in INPUT or FORWARD).
    fn iptables(&mut self) {
        let direct = self.r.chance(10);
        if direct {
            let rule = self.iptables_rule();
            let prio = self.r.below(3);
            self.files.push((
                "direct.xml".into(),
                format!("{XML}<direct>\n  <rule ipv=\"ipv4\" table=\"filter\" chain=\"INPUT\" priority=\"{prio}\">{rule}</rule>\n</direct>\n"),
            ));
        }
        let n = if self.r.chance(30) {
            1 + self.r.below(2)
        } else {
            0
        };
        let legacy = n > 0 && !direct && self.r.chance(50);
        for _ in 0..n {
            let rule = self.iptables_rule();
            if legacy {
                let chain = if self.r.chance(25) {
                    "FORWARD"
                } else {
                    "INPUT"
                };
                self.legacy.push(format!("{chain} {rule}"));
            } else {
                self.iptables.push(format!("INPUT {rule}"));
            }
        }
    }

    /// An iptables rule's arguments for a port of the pool, maybe from one peer host; the
    /// probes aim at it.
    fn iptables_rule(&mut self) -> String {
        let (p, pr) = *self.r.pick(PORTS);
        let src = if self.r.chance(50) {
            format!("-s {} ", self.peer_host())
        } else {
            String::new()
        };
        let verdict = *self.r.pick(&["DROP", "REJECT", "ACCEPT"]);
        self.aims
            .push((None, first_port(p), if pr == "tcp" { 6 } else { 17 }));
        format!("{src}-p {pr} --dport {} -j {verdict}", first_port(p))
    }
}

/// The case of `seed` for the worker network `net`.
pub fn case(seed: u64, net: Net) -> Case {
    let mut r = Rng::new(seed);
    let mut g = Gen {
        r: &mut r,
        net,
        services: STOCK_SERVICES.iter().map(ToString::to_string).collect(),
        ipsets: Vec::new(),
        aims: Vec::new(),
        files: Vec::new(),
        iptables: Vec::new(),
        legacy: Vec::new(),
    };
    g.services();
    g.ipset();
    let (zones, names) = g.zones();
    let default_zone = if g.r.chance(60) {
        "public".to_string()
    } else {
        (*g.r.pick(&names)).to_string()
    };
    g.policies(&zones);
    g.iptables();
    let probes = probes(&mut g);
    g.files.push((
        "firewalld.conf".into(),
        format!("DefaultZone={default_zone}\nCleanupOnExit=yes\nLockdown=no\nIPv6_rpfilter=yes\nIndividualCalls=no\nLogDenied=off\nFirewallBackend=nftables\nFlushAllOnReload=yes\nRFC3964_IPv4=yes\n"),
    ));
    Case {
        seed,
        files: g.files,
        iptables: g.iptables,
        legacy: g.legacy,
        probes,
    }
}

/// The probes of a case: some aimed at the rich rules' sources and ports, the rest drawn from
/// the peers and the port pool, a few forwarded.
fn probes(g: &mut Gen) -> Vec<Probe> {
    let net = g.net;
    let mut out: Vec<Probe> = Vec::new();
    let aims = g.aims.clone();
    let total = 10;
    while out.len() < total {
        let aim = (!aims.is_empty() && g.r.chance(50)).then(|| aims[g.r.below(aims.len())]);
        let saddr = aim.and_then(|a| a.0).unwrap_or_else(|| g.peer_host());
        let side = saddr.octets()[2];
        let (mut proto, mut dport) = match aim {
            Some((_, port, proto)) if port != 0 || proto == 1 => (proto, port),
            _ => {
                let (p, pr) = *g.r.pick(PORTS);
                (if pr == "tcp" { 6 } else { 17 }, first_port(p))
            }
        };
        if g.r.chance(12) {
            (proto, dport) = (1, 0);
        } else if g.r.chance(10) {
            dport = 30000 + g.r.below(100) as u16;
        }
        let forward = g.r.chance(15);
        let daddr = if forward {
            net.peer(1 - side, g.r.below(PEER_HOSTS as usize) as u8)
        } else if side == 0 && g.r.chance(30) {
            net.node_extra()
        } else if g.r.chance(15) {
            net.node(1 - side)
        } else {
            net.node(side)
        };
        let p = Probe {
            side,
            saddr,
            daddr,
            proto,
            dport,
            forward,
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}
