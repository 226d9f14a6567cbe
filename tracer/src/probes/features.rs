//! What the running kernel offers the probes, found out once per process: from its BTF (the
//! arguments of the `skb:kfree_skb` tracepoint, the drop-reason enum, the TCX attach types)
//! and by asking the kernel to load tiny programs and maps (helpers, the ring buffer). The
//! loader picks its program variants and hooks from this, not from a version number (the one
//! exception is a verifier's known limit, [`Features::skips_peer_counting`]), and
//! [`Features::notes`] says in a sentence each what a missing feature costs and what still
//! works.

use std::{path::Path, sync::OnceLock};

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};
use tracer_common::drops::{DropHook, drop_program};

use super::btf::{Btf, VMLINUX};

/// Set to 1 to act as if the kernel had no TCX, so the netlink tc path (and its cleanup after
/// a killed run) can be exercised on a kernel that has TCX. For tests.
pub const NO_TCX_ENV: &str = "TRACER_NO_TCX";

/// What the running kernel offers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each flag is a kernel feature that exists or not, independently of the others"
)]
pub struct Features {
    /// `uname -r`.
    pub release: String,
    /// `/sys/kernel/btf/vmlinux` exists and parses.
    pub btf: bool,
    /// tc programs attach as TCX links (6.6+), which the kernel removes with the process.
    /// Without TCX they are netlink filters under a clsact qdisc, which outlive a killed run.
    pub tcx: bool,
    /// The arguments of `skb:kfree_skb` as raw tracepoint programs see them (skb first), from
    /// BTF; empty without BTF.
    pub kfree_skb_args: Vec<String>,
    /// `enum skb_drop_reason` exists and the tracepoint passes it (5.17+).
    pub drop_reasons: bool,
    /// `bpf_probe_read_kernel` from raw tracepoints (5.5+).
    pub probe_read_kernel: bool,
    /// BPF ring buffers (5.8+).
    pub ringbuf: bool,
    /// The BTF id of `bpf_rdonly_cast` (6.2+), which lets the drop probe read packets in
    /// place; `None` without it.
    pub rdonly_cast: Option<u32>,
}

/// Why drops cannot be watched on this kernel.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DropsUnsupported {
    #[error(
        "this kernel has no BTF type information ({VMLINUX}; CONFIG_DEBUG_INFO_BTF=y), which the drop probe reads the kernel's structures by"
    )]
    NoBtf,
    #[error("the kfree_skb tracepoint of this kernel has arguments tracer does not know: ({0})")]
    UnknownTracepoint(String),
    #[error(
        "this kernel lacks bpf_probe_read_kernel (5.5+), which the drop probe reads packets with"
    )]
    NoProbeReadKernel,
    #[error(
        "this kernel has no BPF ring buffer (5.8+), which the drop probe sends its samples through"
    )]
    NoRingBuf,
}

static FEATURES: OnceLock<Features> = OnceLock::new();

/// The running kernel's features, probed on first use.
pub fn get() -> &'static Features {
    FEATURES.get_or_init(Features::probe)
}

/// Whether a kernel release (`5.10.0-32-amd64`) is older than `major.minor`; false when it
/// cannot be read.
fn release_below(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let num = |p: Option<&str>| p.and_then(|p| p.parse::<u32>().ok());
    match (num(parts.next()), num(parts.next())) {
        (Some(a), Some(b)) => (a, b) < (major, minor),
        _ => false,
    }
}

impl Features {
    /// Whether the loader counts without per-peer counting here without trying it: the
    /// verifiers of 5.10 and 6.1 are known to give up on the tc program with it (a million
    /// instructions: minutes of work on 5.10 under emulation, 30 s on 6.1). A verifier's
    /// limit is no feature a tiny program can probe, hence the release. Kernels from 6.2 on
    /// try, and fall back the same way if refused.
    pub fn skips_peer_counting(&self) -> bool {
        release_below(&self.release, (6, 2))
    }

    /// Probes the running kernel. Needs the privileges to load BPF programs for the helper and
    /// map probes (without them those read as missing).
    pub fn probe() -> Features {
        let btf = Btf::from_file(Path::new(VMLINUX)).ok();
        let mut features = match &btf {
            Some(btf) => Features::from_btf(btf),
            None => Features {
                release: String::new(),
                btf: false,
                tcx: false,
                kfree_skb_args: Vec::new(),
                drop_reasons: false,
                probe_read_kernel: false,
                ringbuf: false,
                rdonly_cast: None,
            },
        };
        features.release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
        if btf.is_none() {
            // No BTF to read the TCX enum from: TCX came in 6.6, and every kernel with TCX that
            // tracer supports has BTF, so the version is only the fallback of a fallback.
            features.tcx = aya::util::KernelVersion::current()
                .is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0));
        }
        if std::env::var_os(NO_TCX_ENV).is_some_and(|v| v == "1") {
            features.tcx = false;
        }
        features.probe_read_kernel = is_helper_supported(
            ProgramType::RawTracePoint,
            BpfHelper::BPF_FUNC_probe_read_kernel,
        )
        .unwrap_or(false);
        features.ringbuf = is_map_supported(MapType::RingBuf).unwrap_or(false);
        features
    }

    /// What BTF says; helpers and maps are left unprobed (false).
    pub fn from_btf(btf: &Btf) -> Features {
        let tcx = btf
            .enum_values("bpf_attach_type")
            .is_ok_and(|v| v.iter().any(|(name, _)| name == "BPF_TCX_INGRESS"));
        let kfree_skb_args = super::drops::kfree_skb_args(btf).unwrap_or_default();
        let drop_reasons = btf.enum_values("skb_drop_reason").is_ok()
            && kfree_skb_args.iter().any(|a| a == "reason");
        Features {
            release: String::new(),
            btf: true,
            tcx,
            kfree_skb_args,
            drop_reasons,
            probe_read_kernel: false,
            ringbuf: false,
            rdonly_cast: btf.func_id("bpf_rdonly_cast").ok(),
        }
    }

    /// The drop probe's entry program for this kernel and `hook`, or why there is none.
    pub fn drop_program(&self, hook: DropHook) -> Result<&'static str, DropsUnsupported> {
        if !self.btf {
            return Err(DropsUnsupported::NoBtf);
        }
        let args = &self.kfree_skb_args;
        let program = (args.first().map(String::as_str) == Some("skb")
            && args.iter().any(|a| a == "location"))
        .then(|| drop_program(args.len() as u32, hook))
        .flatten()
        .ok_or_else(|| DropsUnsupported::UnknownTracepoint(args.join(", ")))?;
        if !self.probe_read_kernel {
            return Err(DropsUnsupported::NoProbeReadKernel);
        }
        if !self.ringbuf {
            return Err(DropsUnsupported::NoRingBuf);
        }
        Ok(program)
    }

    /// Sentences for what this kernel lacks and what tracer does instead, for a run that uses
    /// tc hooks (`tc`) and watches drops (`drops`).
    pub fn notes(&self, tc: bool, drops: bool) -> Vec<String> {
        let mut notes = Vec::new();
        if tc && !self.tcx {
            notes.push(format!(
                "kernel {}: no TCX (6.6+), so tc programs attach as netlink filters (priority {} and {}, handle {:#x}); a killed tracer leaves them behind, and the next run or `tracer cleanup` removes them",
                self.release,
                super::tc::INGRESS_PRIORITY,
                super::tc::EGRESS_PRIORITY,
                super::tc::HANDLE,
            ));
        }
        if drops && !self.drop_reasons {
            notes.push(format!(
                "kernel {}: no drop reasons (they came with 5.17); drops are still counted exactly per interface, class and flow, with the kernel function that dropped them, under reason NOT_SPECIFIED",
                self.release
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(release_below("5.10.0-32-amd64", (6, 2)));
        assert!(release_below("6.1.0-50-amd64", (6, 2)));
        assert!(!release_below("6.2.0", (6, 2)));
        assert!(!release_below("6.12.117+deb13-amd64", (6, 2)));
        assert!(!release_below("6.18.0", (6, 2)));
        assert!(!release_below("", (6, 2)));
    }

    fn kernel(args: &[&str]) -> Features {
        Features {
            release: "test".into(),
            btf: true,
            tcx: true,
            kfree_skb_args: args.iter().map(std::string::ToString::to_string).collect(),
            drop_reasons: args.contains(&"reason"),
            probe_read_kernel: true,
            ringbuf: true,
            rdonly_cast: None,
        }
    }

    #[test]
    fn the_drop_program_follows_the_tracepoint_arguments() {
        let of = |args: &[&str]| kernel(args).drop_program(DropHook::Raw);
        assert_eq!(of(&["skb", "location"]), Ok("kfree_skb_2"));
        assert_eq!(of(&["skb", "location", "reason"]), Ok("kfree_skb_3"));
        assert_eq!(
            of(&["skb", "location", "reason", "rx_sk"]),
            Ok("kfree_skb_4")
        );
        assert_eq!(
            kernel(&["skb", "location", "reason"]).drop_program(DropHook::Btf),
            Ok("kfree_skb_btf_3")
        );
        assert!(matches!(
            of(&["skb", "location", "reason", "rx_sk", "more"]),
            Err(DropsUnsupported::UnknownTracepoint(_))
        ));
        assert!(matches!(
            of(&["location", "skb"]),
            Err(DropsUnsupported::UnknownTracepoint(_))
        ));
        let mut no_ring = kernel(&["skb", "location"]);
        no_ring.ringbuf = false;
        assert_eq!(
            no_ring.drop_program(DropHook::Btf),
            Err(DropsUnsupported::NoRingBuf)
        );
    }

    #[test]
    fn notes_name_what_is_missing_only_when_it_matters() {
        let mut old = kernel(&["skb", "location"]);
        old.tcx = false;
        let notes = old.notes(true, true);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("no TCX") && notes[0].contains("tracer cleanup"));
        assert!(notes[1].contains("5.17") && notes[1].contains("NOT_SPECIFIED"));
        assert!(old.notes(false, false).is_empty());
        assert!(
            kernel(&["skb", "location", "reason"])
                .notes(true, true)
                .is_empty()
        );
    }

    #[test]
    fn the_running_kernel_is_read_from_its_btf() {
        let btf = Btf::from_file(Path::new(VMLINUX)).expect("this kernel has BTF");
        let f = Features::from_btf(&btf);
        assert!(f.btf);
        assert_eq!(f.kfree_skb_args.first().map(String::as_str), Some("skb"));
        // Every kernel of the matrix with reasons passes them as the third argument.
        assert_eq!(f.drop_reasons, f.kfree_skb_args.len() >= 3);
    }
}
