//! Section 5: the tracer's user-space CPU under steady traffic. 64-byte UDP datagrams at about
//! 100,000 per second cross a veth pair, from a paced sender to a receiver that reads them all
//! (so nothing is dropped and the drop probe stays quiet); the tracer watches the receiving
//! end with the default one-second interval. Its user+system time over the traffic window
//! (from /proc/PID/stat), as a share of one core. The same over an idle window first, for
//! contrast: the kernel aggregates, so user space should not care how many packets pass.
//!
//! A sender of our own rather than iperf3: on this machine `iperf3 -u -l 64` topped out near
//! 85k datagrams/s and its server dropped a quarter of them.

use std::{
    net::{Ipv4Addr, UdpSocket},
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde::Serialize;

use tracer::schema::Direction;

use crate::{
    netns::{self, NetNs, check_interrupt},
    procs::{Tracer, counted, cpu_secs, run_secs},
};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 76, 0, 1);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 76, 0, 2);
const PORT: u16 = 6443;
/// UDP payload bytes: a 64-byte datagram on the wire is 14 + 20 + 8 + 22.
const PAYLOAD: usize = 22;
const RCVBUF: i32 = 64 << 20;

#[derive(Debug, Serialize)]
pub struct Results {
    pub target_pps: u64,
    /// Datagrams per second that reached the receiver.
    pub measured_pps: f64,
    pub traffic_secs: f64,
    pub sent: u64,
    pub received: u64,
    /// Packets the tracer counted arriving on the receiving interface.
    pub packets_counted: u64,
    pub tracer_cpu_secs: f64,
    /// Share of one core over the traffic window, percent, from utime+stime (counted in
    /// clock ticks: 0.1% of a core is one tick in 10 s).
    pub tracer_cpu_percent: f64,
    /// The same from the scheduler's nanosecond run times (/proc/PID/task/*/schedstat).
    pub tracer_cpu_percent_schedstat: f64,
    pub idle_secs: f64,
    pub idle_cpu_percent: f64,
    pub idle_cpu_percent_schedstat: f64,
}

pub fn run(bin: &Path, pps: u64, secs: u32, idle_secs: u32) -> Result<Results> {
    eprintln!("[steady] {pps} packets/s of 64-byte UDP for {secs} s over a veth pair");
    let (a, b) = netns::pair("stc", CLIENT_IP, "sts", SERVER_IP)?;
    let tracer = Tracer::watch(bin, b.name(), &["--iface", "bn1", "--profile", "generic"])?;
    let pid = tracer.pid();

    let idle_start = (Instant::now(), cpu_secs(pid)?, run_secs(pid)?);
    std::thread::sleep(Duration::from_secs(u64::from(idle_secs)));
    let idle_wall = idle_start.0.elapsed().as_secs_f64();
    let idle_cpu = cpu_secs(pid)? - idle_start.1;
    let idle_run = run_secs(pid)? - idle_start.2;
    eprintln!(
        "[steady] idle: tracer CPU {:.2}% of a core ({:.3}% by schedstat)",
        100.0 * idle_cpu / idle_wall,
        100.0 * idle_run / idle_wall
    );
    check_interrupt()?;

    let start = (Instant::now(), cpu_secs(pid)?, run_secs(pid)?);
    let (sent, received) = traffic(&a, &b, pps, Duration::from_secs(u64::from(secs)))?;
    let wall = start.0.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid)? - start.1;
    let run = run_secs(pid)? - start.2;
    let summary = tracer.stop()?;
    let packets = counted(&summary, |c| {
        c.iface == "bn1" && c.direction == Direction::Ingress
    });
    let results = Results {
        target_pps: pps,
        measured_pps: received as f64 / f64::from(secs),
        traffic_secs: wall,
        sent,
        received,
        packets_counted: packets,
        tracer_cpu_secs: cpu,
        tracer_cpu_percent: 100.0 * cpu / wall,
        tracer_cpu_percent_schedstat: 100.0 * run / wall,
        idle_secs: idle_wall,
        idle_cpu_percent: 100.0 * idle_cpu / idle_wall,
        idle_cpu_percent_schedstat: 100.0 * idle_run / idle_wall,
    };
    eprintln!(
        "[steady] {:.0} packets/s received ({} sent, {} counted by the tracer), tracer CPU {:.2}% of a core ({:.3}% by schedstat)",
        results.measured_pps,
        sent,
        packets,
        results.tracer_cpu_percent,
        results.tracer_cpu_percent_schedstat
    );
    Ok(results)
}

/// Sends datagrams from `client` to a reader in `server` at `pps` for `secs`: (sent, received).
fn traffic(client: &NetNs, server: &NetNs, pps: u64, secs: Duration) -> Result<(u64, u64)> {
    let done = AtomicBool::new(false);
    let ready = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| -> Result<u64> {
            tracer_netns::enter(server.name())?;
            let sock = UdpSocket::bind((SERVER_IP, PORT)).context("binding the receiver")?;
            // Room for a few hundred milliseconds of traffic when this thread is descheduled:
            // datagrams dropped at a full socket would wake the drop probe.
            force_rcvbuf(&sock, RCVBUF)?;
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            ready.store(true, Ordering::SeqCst);
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            loop {
                match sock.recv(&mut buf) {
                    Ok(_) => n += 1,
                    Err(_) if done.load(Ordering::SeqCst) => return Ok(n),
                    Err(_) => {}
                }
            }
        });
        let sender = s.spawn(|| -> Result<u64> {
            let stop = || done.store(true, Ordering::SeqCst);
            let result = (|| {
                tracer_netns::enter(client.name())?;
                let deadline = Instant::now() + Duration::from_secs(5);
                while !ready.load(Ordering::SeqCst) {
                    anyhow::ensure!(Instant::now() < deadline, "the receiver did not start");
                    std::thread::sleep(Duration::from_millis(10));
                }
                let sock = UdpSocket::bind((CLIENT_IP, 0))?;
                sock.connect((SERVER_IP, PORT))?;
                let payload = [0x5au8; PAYLOAD];
                let started = Instant::now();
                let mut sent = 0u64;
                // Paced by the clock: whatever is due is sent, then a short sleep.
                while started.elapsed() < secs {
                    let due = (started.elapsed().as_secs_f64() * pps as f64) as u64;
                    while sent < due {
                        sock.send(&payload).context("sending")?;
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Ok(sent)
            })();
            // Let the receiver read what is still queued, then stop it.
            std::thread::sleep(Duration::from_millis(300));
            stop();
            result
        });
        let sent = sender
            .join()
            .map_err(|_| anyhow::anyhow!("sender panicked"))??;
        let received = receiver
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        Ok((sent, received))
    })
}

/// SO_RCVBUFFORCE: a receive buffer above net.core.rmem_max (root only).
fn force_rcvbuf(sock: &UdpSocket, bytes: i32) -> Result<()> {
    use std::os::fd::AsFd;
    tracer::sys::sockets::set_receive_buffer(sock.as_fd(), bytes, true).context("SO_RCVBUFFORCE")
}
