//! One worker of the harness: a node namespace running a real firewalld (started once, given
//! each case's permanent configuration with `firewall-cmd --reload`), two peer namespaces on
//! its `eth0` and `eth1`, and the kernel's own account of every probe: a trace table in the
//! node (`meta nftrace set 1` on the input and forward hooks) and `nft monitor trace` reading what each base
//! chain did with it. Everything is removed when the worker drops, also on failure.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tracer::model::{
    legacy::LegacySaves,
    nft::{Backend, Family, Ruleset, SavedRules},
};
use tracer_lab::firewalld::firewall_cmd_output;

use super::cases::{Case, Net, PEER_HOSTS, Probe};
use super::kernel::{Index, KernelVerdict, judge_trace};
use super::legacy::{self, Counters};
use crate::harness::{NetNs, Scratch};

/// Sends the probes of one peer: `argv[1]` a JSON list of [proto, src, sport, dst, dport],
/// `argv[2]` how long to keep the sockets open. TCP: a SYN from a non-blocking connect; UDP:
/// one datagram; ICMP: an echo request whose id is the "sport".
const SENDER: &str = r"
import json, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
keep = []
for proto, src, sport, dst, dport in json.loads(sys.argv[1]):
    if proto == 6:
        s = socket.socket()
        s.bind((src, sport))
        s.setblocking(False)
        try:
            s.connect((dst, dport))
        except BlockingIOError:
            pass
    elif proto == 17:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, sport))
        s.sendto(b'fwdiff', (dst, dport))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.bind((src, 0))
        h = struct.pack('!BBHHH', 8, 0, 0, sport, 1) + b'fwdiff'
        h = struct.pack('!BBHHH', 8, 0, csum(h), sport, 1) + b'fwdiff'
        s.sendto(h, (dst, 0))
    keep.append(s)
    time.sleep(0.002)
time.sleep(float(sys.argv[2]))
";

/// A probe as sent, with the source port (or ICMP id) it was given.
#[derive(Clone, Debug)]
pub struct Sent {
    pub probe: Probe,
    pub sport: u16,
}

pub struct Node {
    pub net: Net,
    /// The node's namespace and its firewalld.
    pub fw: Scratch,
    peers: [NetNs; 2],
    monitor: Child,
    lines: Arc<Mutex<Vec<String>>>,
    next_port: u16,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ))
    }
}

impl Node {
    /// Worker `w`'s network, firewalld and trace monitor.
    pub fn new(w: u8) -> Node {
        let net = Net { n: 100 + w };
        let mut fw = Scratch::new(&format!("fd{w}n"));
        let node = &fw.netns;
        let peers = [
            NetNs::new(&format!("fd{w}a")),
            NetNs::new(&format!("fd{w}b")),
        ];
        for side in 0..2u8 {
            let peer = &peers[side as usize];
            let (ours, theirs) = (format!("eth{side}"), "p0");
            node.ip(&[
                "link", "add", &ours, "type", "veth", "peer", "name", theirs, "netns", &peer.name,
            ]);
            node.sysctl(&format!("net.ipv6.conf.{ours}.disable_ipv6"), "1");
            peer.sysctl(&format!("net.ipv6.conf.{theirs}.disable_ipv6"), "1");
            node.ip(&[
                "addr",
                "add",
                &format!("{}/24", net.node(side)),
                "dev",
                &ours,
            ]);
            node.ip(&["link", "set", &ours, "up"]);
            for i in 0..PEER_HOSTS {
                peer.ip(&[
                    "addr",
                    "add",
                    &format!("{}/24", net.peer(side, i)),
                    "dev",
                    theirs,
                ]);
            }
            peer.ip(&["link", "set", theirs, "up"]);
            let other = format!("10.{}.{}.0/24", net.n, 1 - side);
            peer.ip(&["route", "add", &other, "via", &net.node(side).to_string()]);
            // Replies to the node's second address on eth0 go back the same way.
            peer.sysctl("net.ipv4.conf.all.rp_filter", "0");
        }
        node.ip(&[
            "addr",
            "add",
            &format!("{}/24", net.node_extra()),
            "dev",
            "eth0",
        ]);
        node.sysctl("net.ipv4.ip_forward", "1");
        node.sysctl("net.ipv4.conf.all.rp_filter", "0");
        node.sysctl("net.ipv4.conf.default.rp_filter", "0");

        for sub in ["policies", "ipsets"] {
            std::fs::create_dir_all(fw.dir().join("etc/firewalld").join(sub)).expect("mkdir");
        }
        fw.start()
            .unwrap_or_else(|e| panic!("firewalld did not come up: {e:#}"));
        let node = &fw.netns;
        // The trace table: every IPv4 packet the peers send, on the input and forward hooks
        // before the chains that judge them (tracing from prerouting on would add firewalld's
        // mangle and nat chains, and enough lines to lose some). firewalld's reload leaves
        // other tables alone.
        node.nft(
            "table inet fwdiff_trace {\n chain input {\n  type filter hook input priority -400; policy accept;\n  iifname { \"eth0\", \"eth1\" } meta nfproto ipv4 meta nftrace set 1\n }\n chain forward {\n  type filter hook forward priority -400; policy accept;\n  iifname { \"eth0\", \"eth1\" } meta nfproto ipv4 meta nftrace set 1\n }\n}\n",
        );
        let mut monitor = node
            .command(&["nft", "-a", "monitor", "trace"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("nft monitor trace");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = monitor.stdout.take().expect("monitor stdout");
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("trace lines").push(l);
            }
        });
        Node {
            net,
            fw,
            peers,
            monitor,
            lines,
            next_port: 20000,
        }
    }

    pub fn dir(&self) -> &Path {
        self.fw.dir()
    }

    pub fn bus(&self) -> String {
        self.fw.address()
    }

    fn etc(&self) -> std::path::PathBuf {
        self.dir().join("etc/firewalld")
    }

    /// Makes `case` the node's configuration: its files, a reload, its iptables-nft or
    /// iptables-legacy rules. `Err` when firewalld refuses the configuration (the case is then
    /// skipped).
    pub fn apply(&self, case: &Case) -> Result<(), String> {
        for sub in ["zones", "services", "policies", "ipsets"] {
            let d = self.etc().join(sub);
            for e in std::fs::read_dir(&d).map_err(|e| e.to_string())?.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_file(self.etc().join("direct.xml"));
        for (rel, text) in &case.files {
            std::fs::write(self.etc().join(rel), text).map_err(|e| format!("{rel}: {e}"))?;
        }
        for chain in ["INPUT", "FORWARD"] {
            for tool in ["iptables-nft", "iptables-legacy"] {
                let _ = run(&mut self.fw.netns.command(&[tool, "-F", chain]));
            }
        }
        self.reload()?;
        let (tool, rules) = if case.legacy.is_empty() {
            ("iptables-nft", &case.iptables)
        } else {
            // No iptables-nft chain at the legacy chains' priority: which of two chains of
            // equal priority runs first is not in any listing.
            let _ = run(&mut self
                .fw
                .netns
                .command(&["nft", "delete", "table", "ip", "filter"]));
            ("iptables-legacy", &case.legacy)
        };
        for rule in rules {
            let mut argv = vec![tool, "-A"];
            argv.extend(rule.split_whitespace());
            run(&mut self.fw.netns.command(&argv))?;
        }
        Ok(())
    }

    /// `firewall-cmd --reload`, then firewalld must be running with the new configuration.
    pub fn reload(&self) -> Result<(), String> {
        let out = firewall_cmd_output(&self.fw.netns.name, self.dir(), &["--reload"])
            .map_err(|e| format!("{e:#}"))?;
        if !out.status.success() {
            return Err(format!(
                "firewall-cmd --reload: {}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
        let state = firewall_cmd_output(&self.fw.netns.name, self.dir(), &["--state"])
            .map_err(|e| format!("{e:#}"))?;
        if !state.status.success() {
            return Err(format!(
                "firewalld is not running after the reload: {}",
                String::from_utf8_lossy(&state.stdout)
            ));
        }
        Ok(())
    }

    /// Runs one printed fix command in the node, with firewalld's bus, and with a `/run` of
    /// the node's own: a fix may keep a file there between its lines (iptables' rules saved
    /// around a reload), and the workers, each a node of its own, share this machine's `/run`.
    pub fn run_fix(&self, line: &str) -> Result<(), String> {
        let own_run = self.dir().join("run");
        std::fs::create_dir_all(&own_run).map_err(|e| e.to_string())?;
        let own_run = own_run.to_string_lossy().into_owned();
        run(self
            .fw
            .netns
            .command(&[
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-e",
                "-c",
                "mount --bind \"$1\" /run && exec sh -e -c \"$2\"",
                "fix",
                &own_run,
                line,
            ])
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus()))
        .map(|_| ())
    }

    /// The live ruleset, with iptables-nft-save's arguments for its xt matches, and the
    /// iptables-legacy tables as the tracer reads them on a node.
    pub fn ruleset(&self) -> Ruleset {
        let json = run(&mut self.fw.netns.command(&["nft", "-j", "list", "ruleset"]))
            .unwrap_or_else(|e| panic!("{e}"));
        let save = run(&mut self.fw.netns.command(&["iptables-nft-save"])).unwrap_or_default();
        let mut saved = SavedRules::default();
        saved.add(Family::Ip, &save);
        let mut rs = Ruleset::from_json_with_saved(&json, "fwdiff", &saved)
            .unwrap_or_else(|e| panic!("{e}"));
        let legacy = run(&mut self.fw.netns.command(&["iptables-legacy-save"])).unwrap_or_default();
        let saves = LegacySaves {
            v4: Some(legacy),
            v6: None,
        };
        let (mut sources, mut problems) = (Vec::new(), Vec::new());
        saves.merge_into(Some(&mut rs), None, &mut sources, &mut problems);
        assert!(problems.is_empty(), "legacy rules: {problems:?}");
        rs
    }

    /// The legacy filter table's counters.
    fn legacy_counters(&self) -> Counters {
        let save = run(&mut self
            .fw
            .netns
            .command(&["iptables-legacy-save", "-c", "-t", "filter"]))
        .unwrap_or_else(|e| panic!("{e}"));
        Counters::parse(&save)
    }

    /// Sends `probes` and returns what the kernel did with each, in order.
    /// With iptables-legacy rules in force, the probes go one at a time, each between two
    /// readings of the legacy counters.
    pub fn probe(&mut self, probes: &[Probe], ruleset: &Ruleset) -> Vec<(Sent, KernelVerdict)> {
        let index = Index::of(ruleset);
        let legacy = ruleset
            .tables
            .iter()
            .any(|t| t.backend == Backend::IptablesLegacy);
        let send = |node: &mut Node, probes: &[Probe]| {
            if legacy {
                probes
                    .iter()
                    .flat_map(|p| node.send(std::slice::from_ref(p), &index, true))
                    .collect()
            } else {
                node.send(probes, &index, false)
            }
        };
        let mut out: Vec<(Sent, KernelVerdict)> = send(self, probes);
        // The monitor may lose a trace when the kernel's netlink buffer fills: once more, with
        // fresh ports, for those.
        let lost: Vec<usize> = (0..out.len())
            .filter(|i| matches!(out[*i].1, KernelVerdict::Pending(_)))
            .collect();
        if !lost.is_empty() {
            let again: Vec<Probe> = lost.iter().map(|i| out[*i].0.probe.clone()).collect();
            for (i, r) in lost.into_iter().zip(send(self, &again)) {
                out[i] = r;
            }
        }
        out
    }

    /// Sends `probes` once and reads their traces, up to five seconds; with `legacy`, one probe
    /// between two readings of the legacy counters.
    fn send(
        &mut self,
        probes: &[Probe],
        index: &Index,
        legacy: bool,
    ) -> Vec<(Sent, KernelVerdict)> {
        let before = legacy.then(|| self.legacy_counters());
        let mut sent = Vec::new();
        for p in probes {
            self.next_port = if self.next_port >= 60000 {
                20000
            } else {
                self.next_port + 1
            };
            sent.push(Sent {
                probe: p.clone(),
                sport: self.next_port,
            });
        }
        self.lines.lock().expect("trace lines").clear();
        for side in 0..2u8 {
            let list: Vec<String> = sent
                .iter()
                .filter(|s| s.probe.side == side)
                .map(|s| {
                    format!(
                        "[{}, \"{}\", {}, \"{}\", {}]",
                        s.probe.proto, s.probe.saddr, s.sport, s.probe.daddr, s.probe.dport
                    )
                })
                .collect();
            if list.is_empty() {
                continue;
            }
            let arg = format!("[{}]", list.join(", "));
            run(&mut self.peers[side as usize].command(&["python3", "-c", SENDER, &arg, "0.05"]))
                .unwrap_or_else(|e| panic!("sending probes: {e}"));
        }
        let ends: Vec<_> = sent
            .iter()
            .map(|s| {
                let before = before.as_ref()?;
                let chain = if s.probe.forward { "FORWARD" } else { "INPUT" };
                legacy::end(chain, before, &self.legacy_counters())
            })
            .collect();
        let t0 = Instant::now();
        loop {
            let lines = self.lines.lock().expect("trace lines").clone();
            let got: Vec<KernelVerdict> = sent
                .iter()
                .zip(&ends)
                .map(|(s, end)| judge_trace(&lines, s, index, end.as_ref()))
                .collect();
            let done = got.iter().all(|k| !matches!(k, KernelVerdict::Pending(_)));
            if done || t0.elapsed() > Duration::from_secs(5) {
                return sent.into_iter().zip(got).collect();
            }
            sleep(Duration::from_millis(30));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
    }
}
