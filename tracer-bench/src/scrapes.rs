//! Section 7: scrapes beside slow clients. `tracer watch --metrics` in a namespace of its own
//! with 300 local connections open to its endpoint, each sending a byte now and then and
//! never finishing a request: how long each of ten consecutive scrapes (a whole `GET
//! /metrics`) takes while those clients stay unanswered. Prometheus gives up on a scrape after
//! its timeout (10 s by default); the goal is under 1 s for every one.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use crate::{netns, procs::Tracer};

const METRICS: &str = "127.0.0.1:9464";

/// Slow clients held open during the scrapes.
pub const SLOW_CLIENTS: usize = 300;
/// Consecutive scrapes.
const SCRAPES: usize = 10;

#[derive(Debug, Serialize)]
pub struct Results {
    pub slow_clients: usize,
    /// Each scrape's time, from connecting to the end of the answer.
    pub scrape_ms: Vec<f64>,
}

impl Results {
    pub fn slowest_ms(&self) -> f64 {
        self.scrape_ms.iter().copied().fold(0.0, f64::max)
    }
}

/// One scrape: its time in milliseconds, once the answer is a whole exposition.
fn scrape() -> Result<f64> {
    let t = Instant::now();
    let mut s = TcpStream::connect(METRICS).context("connecting to the metrics endpoint")?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .context("reading the scrape's answer")?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    ensure!(
        answer.starts_with("HTTP/1.") && answer.contains("tracer_build_info"),
        "the scrape was answered with {:?}",
        answer.lines().next().unwrap_or_default()
    );
    Ok(ms)
}

/// The scrapes, with the slow clients open, inside the namespace the tracer serves in.
fn scrapes() -> Result<Vec<f64>> {
    let slow = (0..SLOW_CLIENTS)
        .map(|_| -> Result<TcpStream> {
            let mut s = TcpStream::connect(METRICS).context("opening a slow client")?;
            s.write_all(b"G")?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut times = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        // Each slow client sends another byte of a request it never finishes.
        for mut s in &slow {
            let _ = s.write_all(b"E");
        }
        times.push(scrape()?);
    }
    Ok(times)
}

pub fn run(bin: &Path) -> Result<Results> {
    let ns = netns::create("scrapes")?;
    let tracer = Tracer::watch(
        bin,
        ns.name(),
        &[
            "--iface",
            "lo",
            "--profile",
            "generic",
            "--no-drops",
            "--no-diagnose",
            "--interval",
            "0.2",
            "--metrics",
            METRICS,
        ],
    )?;
    let scrape_ms = tracer_netns::run_in(ns.name(), scrapes)??;
    tracer.stop()?;
    Ok(Results {
        slow_clients: SLOW_CLIENTS,
        scrape_ms,
    })
}
