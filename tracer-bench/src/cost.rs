//! Section 1: what each kernel program costs per packet. The real datapath (generic catalog,
//! loopback of a fresh namespace as its one interface) and the empty program of the same hook
//! (the floor: what running any XDP or tc program at all costs) run the same frames under
//! BPF_PROG_TEST_RUN, whose reported duration is the kernel's own average per run; several
//! rounds, medians. Then the share of each part of classification ([`parts`]).
//!
//! tc programs get a different malformed frame: the kernel's skb test run refuses IP frames
//! shorter than their IP header (EINVAL), so for tc the broken frame is one whose TCP header
//! is cut short; XDP gets the truncated IPv4 header.

mod parts;
mod table;

use std::{net::IpAddr, time::Duration};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Serialize;
use tracer::{
    model::catalog::{Catalog, class_table},
    probes::{ClassTable, Datapath, Program},
};
use tracer_lab::synth::{Eth, L4, frame, vxlan_payload};

pub use table::{goals, table};

use crate::{
    netns::{self, check_interrupt},
    report::median,
};

/// The benchmark's programs (`tracer-ebpf/src/floor.rs`), built with the datapath: `floor`
/// (XDP) and `floor_tc`, the floors of the XDP and tc rows; the classifiers cut short after
/// each part ([`parts`]); `floor_drop`, the floor of the drop observers (section 4b).
pub static FLOOR: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-floor.o"));

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub repeat: u32,
    pub rounds: usize,
}

/// One program on one kind of packet.
#[derive(Debug, Serialize)]
pub struct Row {
    pub packet: &'static str,
    pub program: &'static str,
    pub frame_len: usize,
    /// The class the packet was counted in (and its inner class, for VXLAN).
    pub counted_as: String,
    pub ns: f64,
    /// The empty program of the same hook (`floor` for XDP, `floor_tc` for tc).
    pub floor_program: &'static str,
    pub floor_ns: f64,
    /// Median over rounds of (program - floor) in the same round.
    pub above_floor_ns: f64,
    /// Kernel averages per round, ns.
    pub runs_ns: Vec<u64>,
    pub floor_runs_ns: Vec<u64>,
    /// True for the VXLAN frame (the inner-flow goal); the others have the plain goals.
    pub vxlan: bool,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub repeat: u32,
    pub rounds: usize,
    pub note: &'static str,
    pub rows: Vec<Row>,
    /// What each part of plain classification adds, per hook.
    pub parts: Vec<parts::Part>,
}

const NOTE: &str = "malformed for tc programs is a truncated TCP header (the kernel's skb test \
                    run refuses IP frames shorter than the IP header); for XDP a truncated IPv4 \
                    header. empty = the empty program of the same hook on the same frame.";

/// The packet kinds: name, frame for XDP, frame for tc (differs only for malformed).
fn packets() -> Vec<(&'static str, Bytes, Bytes)> {
    let eth = Eth::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ip = |s: &str| -> IpAddr { s.parse().expect("address literal") };
    let v4 = |l4: L4| frame(&eth, ip("192.168.10.21"), ip("192.168.10.11"), &l4);
    let plain = v4(L4::syn(40000, 6443));
    let inner = frame(
        &eth,
        ip("10.244.1.2"),
        ip("10.244.2.2"),
        &L4::syn(40000, 6443),
    );
    let vxlan = v4(L4::Udp {
        sport: 50000,
        dport: 4789,
        payload: vxlan_payload(4096, &inner),
    });
    let v6 = frame(&eth, ip("fd00::21"), ip("fd00::11"), &L4::syn(40000, 6443));
    let other = v4(L4::syn(40000, 8080));
    // 14 + 20 + 6: the TCP header ends after its ports; 14 + 11: the IPv4 header is cut.
    let bad_tcp = plain.slice(..40);
    let bad_ip = plain.slice(..25);
    vec![
        ("plain (tcp 6443)", plain.clone(), plain),
        ("vxlan + inner flow", vxlan.clone(), vxlan),
        ("ipv6 (tcp 6443)", v6.clone(), v6),
        ("other (tcp 8080)", other.clone(), other),
        ("malformed", bad_ip, bad_tcp),
    ]
}

pub fn run(cfg: Config) -> Result<Results> {
    eprintln!(
        "[cost] BPF_PROG_TEST_RUN: {} repeats x {} rounds per program and packet",
        cfg.repeat, cfg.rounds
    );
    let ns = netns::create("cost")?;
    let (rows, parts) = ns.run_in(|| measure(cfg))??;
    Ok(Results {
        repeat: cfg.repeat,
        rounds: cfg.rounds,
        note: NOTE,
        rows,
        parts,
    })
}

/// Keeps the measuring thread on the last CPU: the two CPUs of a small VM differ by a few ns
/// per run (interrupt load), which otherwise shows up as rounds in two clusters.
fn pin_to_last_cpu() -> Result<usize> {
    let cpu = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) - 1;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_setaffinity(0) pins this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
    }
    Ok(cpu)
}

fn measure(cfg: Config) -> Result<(Vec<Row>, Vec<parts::Part>)> {
    let cpu = pin_to_last_cpu()?;
    eprintln!("[cost] measuring on CPU {cpu}");
    let catalog = Catalog::builtin("generic")?;
    let classes = class_table(&catalog.components)?;
    // Test runs deliver packets on loopback.
    let datapath = Datapath::load_loopback(&classes).context("loading the datapath")?;
    let bench = Datapath::load_loopback_object(FLOOR, &parts::PROGRAMS, &classes)
        .context("loading the benchmark's programs")?;

    let mut rows = Vec::new();
    let mut plain = None;
    for (packet, xdp_frame, tc_frame) in packets() {
        for program in Program::ALL {
            check_interrupt()?;
            let (f, floor) = match program {
                Program::XdpIngress => (&xdp_frame, parts::FLOOR_XDP),
                _ => (&tc_frame, parts::FLOOR_TC),
            };
            let counted_as = counted_as(&datapath, &classes, program, f)?;
            let mut runs = Vec::with_capacity(cfg.rounds);
            let mut floor_runs = Vec::with_capacity(cfg.rounds);
            for round in 0..cfg.rounds {
                // Alternate which goes first, so neither always runs on a warmer cache.
                let tracer_first = round % 2 == 0;
                for tracer in [tracer_first, !tracer_first] {
                    if tracer {
                        let d = datapath.test_run(program, f, cfg.repeat)?.duration;
                        runs.push(nanos(d));
                    } else {
                        let d = bench.test_run_program(floor, f, cfg.repeat)?.duration;
                        floor_runs.push(nanos(d));
                    }
                }
            }
            let ns = median(&runs.iter().map(|&n| n as f64).collect::<Vec<_>>());
            let floor_ns = median(&floor_runs.iter().map(|&n| n as f64).collect::<Vec<_>>());
            // Each round's program against that round's floor: drift cancels out.
            let above: Vec<f64> = runs
                .iter()
                .zip(&floor_runs)
                .map(|(&p, &f)| p as f64 - f as f64)
                .collect();
            eprintln!(
                "[cost] {packet:<20} {:<11} {ns:>5.1} ns  {floor} {floor_ns:>4.1} ns  ({counted_as})",
                program.name(),
            );
            rows.push(Row {
                packet,
                program: program.name(),
                frame_len: f.len(),
                counted_as,
                ns,
                floor_program: floor,
                floor_ns,
                above_floor_ns: median(&above),
                runs_ns: runs,
                floor_runs_ns: floor_runs,
                vxlan: packet.starts_with("vxlan"),
            });
        }
        if plain.is_none() {
            plain = Some((xdp_frame, tc_frame));
        }
    }
    let (xdp_frame, tc_frame) = plain.context("no plain packet")?;
    let parts = parts::measure(cfg, &datapath, &bench, &xdp_frame, &tc_frame)?;
    Ok((rows, parts))
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Runs the frame once and names the counter (and inner counter) that moved: proof that the
/// frame takes the path its row claims.
fn counted_as(
    datapath: &Datapath,
    classes: &ClassTable,
    program: Program,
    f: &[u8],
) -> Result<String> {
    let before = (datapath.counters()?, datapath.inner_counters()?);
    datapath.test_run(program, f, 1)?;
    let after = (datapath.counters()?, datapath.inner_counters()?);
    let moved = |old: &[tracer::probes::CounterRow], new: &[tracer::probes::CounterRow]| {
        new.iter()
            .find(|n| {
                let was = old
                    .iter()
                    .find(|o| (o.direction, o.class) == (n.direction, n.class))
                    .map_or(0, |o| o.packets);
                n.packets > was
            })
            .map(|n| classes.name(n.class).to_string())
    };
    let outer = moved(&before.0, &after.0).unwrap_or_else(|| "nothing".into());
    Ok(match moved(&before.1, &after.1) {
        Some(inner) => format!("{outer}, inner {inner}"),
        None => outer,
    })
}
