//! The watch session, the stage between the findings and the outputs: one attached datapath
//! with its drop capture and, while watching, the node's diagnosis. [`Session::start`]
//! checks privileges, loads and attaches; [`Session::run`] is the one loop every tracing
//! command drives: it ticks the intervals, drains sampled drop events as they arrive, stops on
//! Ctrl-C, SIGTERM or a deadline, and yields each interval (counters, rates, drops with their
//! causes, new findings) to its caller. `tracer watch` hands each interval to its outputs and
//! the metrics endpoint; `tracer baseline` keeps only the first and last readings. Dropping a
//! session detaches everything.

mod attach;
mod capture;
mod changes;
mod links;
mod pods;
mod run;

pub use attach::{Causes, Config, Diagnose, Session, preflight};
pub use capture::{DropSink, DropsView};
pub use links::{IfaceChange, IfaceChangeKind};
pub use run::{End, Interval, Next, Stop, Wake};

use crate::{
    model::catalog::CatalogError,
    probes::{ProbeError, btf::BtfError, preflight::PreflightError},
};

/// Why a session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("listing interfaces")]
    Interfaces(#[source] std::io::Error),
    #[error("following interfaces as they come and go (rtnetlink)")]
    Links(#[source] std::io::Error),
    #[error(
        "no interface besides loopback is up in this network namespace; name one with --iface (there are: {known})"
    )]
    NoInterfaceUp { known: String },
    #[error(
        "no interface named {name:?} in this network namespace (there are: {known}); a glob such as \"veth*\" also watches interfaces that appear later"
    )]
    NoSuchInterface { name: String, known: String },
    #[error("drop capture needs BTF; run with --no-drops to count traffic only")]
    DropsNeedBtf(#[source] PreflightError),
    #[error("reading this process's network namespace")]
    Netns(#[source] std::io::Error),
    #[error("watching the drop event ring buffer")]
    RingBuffer(#[source] std::io::Error),
    /// The sink of sampled drops (the pcapng file) failed.
    #[error("writing the pcap file")]
    Sink(#[source] std::io::Error),
    /// Signals or the ring buffer's readiness could not be waited for.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
