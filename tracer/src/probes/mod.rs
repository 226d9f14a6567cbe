//! Kernel probes, the first stage of the pipeline: load tracer's eBPF object, fill its class
//! and interface tables, attach its programs, and read back what they count. Nothing here
//! knows about catalogs or output formats; it speaks in class numbers and interface slots.

mod attach;
pub mod btf;
#[cfg(test)]
mod byte_loops;
mod classes;
mod datapath;
pub mod drops;
pub mod features;
pub mod preflight;
pub mod symbols;
pub mod tc;

pub use attach::{AttachMode, Hook};
pub use classes::ClassTable;
pub use datapath::{CounterRow, Datapath, DropStats, PeerRow, Program, Target};

/// The compiled kernel programs, built by `build.rs` from `tracer-ebpf`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("loading tracer's eBPF object: {0}")]
    Load(#[source] aya::EbpfError),
    #[error("the kernel rejected program {program}: {reason}")]
    Rejected {
        program: &'static str,
        reason: String,
    },
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("{iface}: attaching {hook}: {reason}")]
    Attach {
        iface: String,
        hook: Hook,
        reason: String,
    },
    #[error("test run of {program}: {source}")]
    TestRun {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("attaching the drop probe to the kfree_skb tracepoint: {0}")]
    DropProbe(String),
    #[error("drops cannot be watched here ({0}); run with --no-drops to count traffic only")]
    DropsUnsupported(#[source] features::DropsUnsupported),
    #[error("reading the kernel's {what} from BTF: {reason}")]
    KernelFacts { what: &'static str, reason: String },
    #[error("{0} interfaces requested; one tracer watches at most {max}", max = tracer_common::counters::MAX_IFACES)]
    TooManyInterfaces(usize),
    #[error("{iface}: every one of the {capacity} interface slots is taken; raise --max-ifaces")]
    NoFreeSlot { iface: String, capacity: usize },
}
