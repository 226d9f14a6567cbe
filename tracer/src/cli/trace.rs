//! What every tracing command (`watch`, `baseline record`, `baseline compare`) takes: the
//! interfaces, profile, catalogs, hook and drop capture, and how they become a session.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use clap::Args;

use super::catalog::choose;
use crate::{
    probes::{AttachMode, drops::EventBudget},
    session::{self, Config, Diagnose},
};

/// What to trace and how: shared by every command that attaches the datapath.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Interface to watch (repeat, or separate with commas). Default: every interface of this
    /// network namespace that is up, except loopback.
    #[arg(long, short, value_delimiter = ',', value_name = "IFACE")]
    pub iface: Vec<String>,

    /// Cluster profile whose ports define the classes. Default: detected, else generic.
    #[arg(long, short)]
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
        })
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
