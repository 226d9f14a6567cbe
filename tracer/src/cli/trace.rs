//! What every tracing command (`watch`, `baseline record`, `baseline compare`) takes: the
//! interfaces, profile, catalogs, hook and drop capture, and how they become a session.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result};
use clap::Args;

use super::catalog::choose;
use crate::{
    probes::{AttachMode, drops::EventBudget},
    session::{self, Config, Diagnose},
};

/// What to trace and how: shared by every command that attaches the datapath.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Interface to watch: a name or a glob such as 'veth*' or 'cali*' (repeat, or separate
    /// with commas). Interfaces that appear later and match are watched within a second, and
    /// released when they go. Default: every interface of this network namespace that is up,
    /// except loopback.
    #[arg(long, short, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,

    /// Interfaces the kernel tables have room for at once (at most 4096). Default: 1024 with
    /// a glob in --iface, else room for the interfaces given. Each slot costs the counters of
    /// every class in both directions on every CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_ifaces: Option<u16>,

    /// Cluster profile whose ports define the classes. Default: detected, else generic.
    #[arg(long, short, value_parser = super::profile_values())]
    pub profile: Option<String>,

    /// Add the components of a catalog file (application ports) as classes. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,

    /// Ingress hook: auto picks tc on virtual devices (veth, bridge, vxlan) and native XDP on
    /// physical NICs that support it. Egress is always tc.
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub attach: AttachMode,

    /// Do not watch drops (the drop probe needs a kernel with BTF).
    #[arg(long)]
    pub no_drops: bool,

    /// Dropped packets sampled per flow and reason each second on each CPU (for --pcap and
    /// the function that dropped them); counts are exact regardless.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub events_per_flow: u32,

    /// Dropped packets sampled per second in all, however many flows drop: bounds what a
    /// storm of many flows costs the node. Counts are exact regardless.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub events_per_sec: u32,

    /// The node's name in metrics and JSON lines (the `node` label). Default: the NODE_NAME
    /// environment variable (a DaemonSet sets it from the downward API), else the host name.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
}

impl TraceArgs {
    /// The session these arguments describe (without a sink for sampled drops): privileges
    /// first, then the catalog.
    pub fn config(&self, diagnose: Option<Diagnose>) -> Result<Config> {
        session::preflight()?;
        let chosen = choose(self.profile.as_deref(), &self.catalog)?;
        Ok(Config {
            catalog: chosen.catalog,
            profile_reason: chosen.reason,
            ifaces: self.iface.clone(),
            max_ifaces: self.max_ifaces.map(usize::from),
            attach: self.attach,
            drops: (!self.no_drops).then(|| {
                EventBudget::new(
                    self.events_per_flow,
                    self.events_per_sec,
                    aya::util::nr_cpus().map_or(1, |n| n as u32),
                )
            }),
            sink: None,
            diagnose,
            cni_cache: Some(crate::model::cni::dir().to_path_buf()),
        })
    }
}

impl TraceArgs {
    /// `--node-name`, else `NODE_NAME`, else the host name; one of the first two must be set
    /// where the host name cannot be read.
    pub fn node(&self) -> Result<String> {
        let from_env = std::env::var("NODE_NAME")
            .ok()
            .filter(|n| !n.trim().is_empty());
        match self.node_name.clone().or(from_env) {
            Some(name) => Ok(name),
            None => crate::sys::host::hostname()
                .context("reading the host name for the node's name; give --node-name"),
        }
    }
}

/// A number of seconds, at least a millisecond (a shorter one would be zero to the timers).
pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    secs_at_least(s, 0.001)
}

/// The seconds between two reports: reading every counter map more often than ten times a
/// second costs the node for nothing a person can follow.
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    secs_at_least(s, 0.1)
}

fn secs_at_least(s: &str, min: f64) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v > 0.0 && v < 1e9) {
        return Err(format!("{s}: give a positive number of seconds"));
    }
    if v < min {
        return Err(format!("{s}: give at least {min} seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_too_small_for_a_timer_are_refused() {
        for tiny in ["1e-10", "5e-324", "0.0000001"] {
            assert!(parse_secs(tiny).is_err(), "{tiny}");
            assert!(parse_interval(tiny).is_err(), "{tiny}");
        }
        assert!(parse_interval("0.05").is_err());
        assert_eq!(parse_interval("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_secs("0.001"), Ok(Duration::from_millis(1)));
        for bad in ["0", "-1", "nan", "inf", "1e9", "x"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }
}
