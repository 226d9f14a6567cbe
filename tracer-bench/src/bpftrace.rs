//! bpftrace as a peer of the drop probe: a one-liner on `tracepoint:skb:kfree_skb`, run in a
//! namespace of the benchmark with tracefs mounted there (bpftrace attaches tracepoints through
//! tracefs, which `ip netns exec` leaves empty), stopped by its own pid, its map read back.
//!
//! A `BEGIN` probe that prints `ready` tells when the one-liner is attached (bpftrace fires
//! `BEGIN` after attaching every other probe); it runs once and costs the dropping path nothing.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::netns::{NetNs, check_interrupt};

/// The one-liners, as an operator would type them.
pub const ONE_LINERS: [(&str, &str); 2] = [
    (
        "bpftrace, count by reason",
        "tracepoint:skb:kfree_skb { @[args->reason] = count(); }",
    ),
    (
        "bpftrace, by reason, addresses, protocol",
        "tracepoint:skb:kfree_skb { $s = (struct sk_buff *)args->skbaddr; \
         $ip = (struct iphdr *)($s->head + $s->network_header); \
         @[args->reason, $ip->saddr, $ip->daddr, args->protocol] = count(); }",
    ),
];

/// A running bpftrace, killed when the guard drops.
pub struct Bpftrace {
    child: Child,
    lines: Receiver<String>,
}

impl Bpftrace {
    /// Starts `program` inside `ns` and waits until it is attached.
    pub fn start(ns: &NetNs, program: &str) -> Result<Bpftrace> {
        let script = format!("BEGIN {{ printf(\"ready\\n\"); }} {program}");
        let mut child = ns
            .command(&[
                "sh",
                "-c",
                "mount -t tracefs nodev /sys/kernel/tracing && exec bpftrace -e \"$0\"",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It warns about RLIMIT_MEMLOCK and loads anyway.
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let bpftrace = Bpftrace { child, lines };
        bpftrace.wait_for("ready", Duration::from_mins(1))?;
        Ok(bpftrace)
    }

    fn wait_for(&self, what: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            check_interrupt()?;
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.trim() == what => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("bpftrace exited before attaching"),
                Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    bail!("bpftrace did not attach within {} s", within.as_secs());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Stops it (SIGINT, as Ctrl-C would) and returns its map: the count of each key whose
    /// first element is `reason`, summed.
    pub fn stop(mut self, reason: u32) -> Result<u64> {
        // SAFETY: signalling our own child, which we have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.child.wait().context("waiting for bpftrace")?;
        let mut total = 0;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            // `@[3, 17059082, 150999050, 2048]: 1000000`
            let Some((key, count)) = line
                .trim()
                .strip_prefix("@[")
                .and_then(|l| l.split_once("]: "))
            else {
                continue;
            };
            let first = key.split(',').next().unwrap_or_default().trim();
            if first.parse::<u32>().ok() == Some(reason) {
                total += count.trim().parse::<u64>().unwrap_or(0);
            }
        }
        Ok(total)
    }
}

impl Drop for Bpftrace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
