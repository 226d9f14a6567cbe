//! Loading the datapath: which programs of which object, the globals the loader sets (the
//! class count, whether ports' protocols carry classes, per-peer counting, the drop probe's
//! configuration), the sizes of the counter tables, and the fallback without per-peer
//! counting where the verifier cannot take it (before 6.2, or a program it finds too large).

use aya::EbpfLoader;
use tracer_common::{
    classes::{CLASS_FLAG_PEER, CLASS_FLAG_VXLAN, CLASS_OTHER},
    counters::{MAX_IFACES, counter_entries},
    drops::{DROP_FLOW_FILTER, DropConfig, DropHook, PEEK_CALL_INSN, drop_inner_program},
    packet::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP},
};

use super::{
    Datapath, INNER_PROGRAMS, Target,
    drop_maps::{
        FLOW_CACHE, FLOW_FILTER, FlowCache, SLOTS, flow_cache_entries, map_flow_filter, map_slots,
        slot_entries,
    },
    hooks,
    peer_maps::{PEER_CACHE, map_peer_cache, peer_cache_entries},
    program_names,
    tables::{fill_classes, fill_stage, fill_targets, load_program, unload_program},
};
use crate::probes::{
    AttachMode, ClassTable, OBJECT, ProbeError, features, features::DropsUnsupported,
};

impl Datapath {
    /// Loads the object, fills the class and interface tables, and loads (verifies) every
    /// program. Nothing is attached yet. The counters have room for `capacity` interfaces (at
    /// least the targets), so that interfaces can be added later ([`Datapath::add_target`]).
    /// With `drops`, the drop probe is configured too.
    ///
    /// Per-peer counting makes the datapath's programs larger than some verifiers take (5.10
    /// gives up at a million instructions): when the kernel refuses them as too large, they are
    /// loaded again without it, and [`Datapath::counts_peers`] says so.
    ///
    /// The drop probe hooks `kfree_skb` as a BTF tracepoint where the kernel takes it, else as
    /// a raw tracepoint ([`DropHook`]); [`Datapath::drop_hook`] says which.
    pub fn load(
        classes: &ClassTable,
        targets: Vec<Target>,
        capacity: usize,
        drops: Option<DropConfig>,
    ) -> Result<Self, ProbeError> {
        Self::load_hooked(classes, targets, capacity, drops, &DropHook::ALL)
    }

    /// [`Datapath::load`] with the drop probe hooked as `hook` or not at all: for the tests
    /// and the benchmark, which compare the hooks.
    pub fn load_with_drop_hook(
        classes: &ClassTable,
        targets: Vec<Target>,
        capacity: usize,
        drops: DropConfig,
        hook: DropHook,
    ) -> Result<Self, ProbeError> {
        Self::load_hooked(classes, targets, capacity, Some(drops), &[hook])
    }

    /// [`Datapath::load`], trying the drop probe's `hooks` in turn.
    fn load_hooked(
        classes: &ClassTable,
        targets: Vec<Target>,
        capacity: usize,
        drops: Option<DropConfig>,
        hooks: &[DropHook],
    ) -> Result<Self, ProbeError> {
        let release = &features::get().release;
        if features::get().skips_peer_counting() {
            log::warn!(
                "kernel {release}: the verifier cannot take per-peer counting; counting without \
                 it (no tracer_overlay_peer_* packets or bytes)"
            );
            return Self::load_with(classes, targets, capacity, (drops, hooks), false);
        }
        match Self::load_with(classes, targets.clone(), capacity, (drops, hooks), true) {
            Err(ProbeError::Rejected { program, reason })
                if reason.contains("(os error 7)") && !program.starts_with("kfree_skb") =>
            {
                log::warn!(
                    "this kernel's verifier finds {program} too large with per-peer counting; \
                     counting without it (no tracer_overlay_peer_* packets or bytes)"
                );
                Self::load_with(classes, targets, capacity, (drops, hooks), false)
            }
            other => other,
        }
    }

    fn load_with(
        classes: &ClassTable,
        targets: Vec<Target>,
        capacity: usize,
        (drops, hooks): (Option<DropConfig>, &[DropHook]),
        peers: bool,
    ) -> Result<Self, ProbeError> {
        let capacity = capacity.max(targets.len());
        if capacity > MAX_IFACES as usize {
            return Err(ProbeError::TooManyInterfaces(capacity));
        }
        let features = features::get();
        // Whether this kernel can watch drops at all, before anything is loaded.
        if drops.is_some() {
            features
                .drop_program(DropHook::Raw)
                .map_err(ProbeError::DropsUnsupported)?;
        }
        let programs: Vec<&'static str> = program_names().collect();
        // Reading packets in place calls a kernel function, whose id the object cannot know.
        let peek = drops
            .filter(|cfg| cfg.peek_type != 0)
            .and(features.rdonly_cast)
            .map(|id| ObjectCopy::with_peek_calls(OBJECT, id));
        let object = peek.as_ref().map_or(OBJECT, ObjectCopy::bytes);
        let mut datapath = Self::load_object(
            object,
            &programs,
            classes,
            (targets, capacity),
            drops,
            peers,
        )?;
        if drops.is_some() {
            let hooks: Vec<DropHook> = hooks
                .iter()
                .copied()
                .filter(|&h| h != DropHook::BtfPeek || peek.is_some())
                .collect();
            let (name, hook) = load_drop_probe(&mut datapath.ebpf, &hooks)?;
            datapath.drop_program = Some((name, hook));
            datapath.programs.push(name);
            datapath.programs.push(drop_inner_program(hook));
        }
        Ok(datapath)
    }

    /// Loads `programs` of `object` (tracer's, or another built from its datapath sources),
    /// fills the class and interface tables and the program arrays of the second stages it
    /// loads, and sets the drop probe's configuration when there is one; the counters have
    /// room for `capacity` interfaces; `peers` turns per-peer counting on.
    fn load_object(
        object: &[u8],
        programs: &[&'static str],
        classes: &ClassTable,
        (targets, capacity): (Vec<Target>, usize),
        drops: Option<DropConfig>,
        peers: bool,
    ) -> Result<Self, ProbeError> {
        let n_classes = classes.len();
        let entries = counter_entries(capacity.max(1) as u32, n_classes);
        let port_protocols = u32::from(
            [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP]
                .iter()
                .any(|&p| classes.protos()[usize::from(p)] != CLASS_OTHER),
        );
        let count_peers = u32::from(peers);
        let vxlan_classes = classes.flagged(CLASS_FLAG_VXLAN);
        let peer_classes = classes.flagged(CLASS_FLAG_PEER);
        let cpus = possible_cpus()?;
        let mut loader = EbpfLoader::new();
        loader
            .override_global("N_CLASSES", &n_classes, true)
            .override_global("PORT_PROTOCOL_CLASSES", &port_protocols, true)
            .override_global("COUNT_PEERS", &count_peers, true)
            .override_global("VXLAN_CLASSES", &vxlan_classes, true)
            .override_global("PEER_CLASSES", &peer_classes, true)
            .map_max_entries("COUNTERS", entries)
            .map_max_entries("INNER_COUNTERS", entries)
            .map_max_entries(PEER_CACHE, peer_cache_entries(cpus) as u32);
        if let Some(cfg) = &drops {
            loader
                .override_global("DROP_CONFIG", cfg, true)
                .map_max_entries(FLOW_CACHE, flow_cache_entries(cpus) as u32)
                .map_max_entries(FLOW_FILTER, DROP_FLOW_FILTER)
                .map_max_entries(SLOTS, slot_entries(cpus) as u32);
        }
        let mut ebpf = loader.load(object).map_err(ProbeError::Load)?;
        // The programs' rare diagnostics go through aya-log. The logger owns the log map's
        // descriptor, so it must outlive the program loads below.
        let logger = aya_log::EbpfLogger::init(&mut ebpf)
            .map_err(|e| log::debug!("eBPF log channel unavailable: {e}"))
            .ok();
        let peer_cache = map_peer_cache(&ebpf, cpus)?;
        // Without the drop probe its slots, flow cache and filter keep their placeholder sizes.
        let (drop_slots, flow_cache, flow_filter) = match drops {
            Some(_) => (
                map_slots(&ebpf, cpus)?,
                FlowCache::map(&ebpf, cpus)?,
                map_flow_filter(&ebpf)?,
            ),
            None => (None, None, None),
        };
        fill_classes(&mut ebpf, classes)?;
        fill_targets(&mut ebpf, &targets)?;
        for name in programs {
            load_program(&mut ebpf, name, None)?;
        }
        for (map, program) in INNER_PROGRAMS {
            if programs.contains(program) {
                fill_stage(&mut ebpf, map, program)?;
            }
        }
        let mut targets: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
        targets.resize(capacity, None);
        Ok(Datapath {
            ebpf,
            hooks: vec![None; targets.len()],
            links: (0..targets.len()).map(|_| Vec::new()).collect(),
            targets,
            n_classes,
            drop_program: None,
            programs: programs.to_vec(),
            leaving: Vec::new(),
            mode: AttachMode::Auto,
            peers,
            peer_cache,
            drop_slots,
            flow_cache,
            flow_filter,
            logger,
            clsact: hooks::ClsactGuard::default(),
        })
    }

    /// Whether the programs count per peer (see [`Datapath::load`]).
    pub fn counts_peers(&self) -> bool {
        self.peers
    }

    /// Loads the datapath watching only loopback (index 1 in a fresh namespace), without the
    /// drop probe: where BPF_PROG_TEST_RUN delivers packets, for tests and measurements.
    pub fn load_loopback(classes: &ClassTable) -> Result<Self, ProbeError> {
        Self::load(classes, vec![loopback()], 1, None)
    }

    /// Loads `programs` of `object`, an object built from the datapath's own sources (the
    /// benchmark's programs that stop after each part), watching only loopback like
    /// [`Datapath::load_loopback`], for [`Datapath::test_run_program`].
    pub fn load_loopback_object(
        object: &[u8],
        programs: &[&'static str],
        classes: &ClassTable,
    ) -> Result<Self, ProbeError> {
        Self::load_object(object, programs, classes, (vec![loopback()], 1), None, true)
    }
}

/// The CPUs the kernel may bring up, as per-CPU maps count them.
pub(super) fn possible_cpus() -> Result<usize, ProbeError> {
    aya::util::nr_cpus().map_err(|(_, io_error)| ProbeError::Map {
        map: "COUNTERS",
        source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "nr_cpus",
            io_error,
        }),
    })
}

/// Loopback, index 1 in a fresh namespace: where BPF_PROG_TEST_RUN delivers packets.
fn loopback() -> Target {
    Target {
        name: "lo".into(),
        index: 1,
        has_l2: true,
        is_virtual: true,
    }
}

/// Loads the drop probe's entry program and second stage with the first of `hooks` the kernel
/// takes: a BTF tracepoint reads the kernel's structures by plain loads, a raw tracepoint
/// through helper calls (three a drop more). Returns the entry program and its hook.
fn load_drop_probe(
    ebpf: &mut aya::Ebpf,
    hooks: &[DropHook],
) -> Result<(&'static str, DropHook), ProbeError> {
    let mut refused: Option<ProbeError> = None;
    // The kernel's BTF, for the BTF tracepoint programs: read once (or failed once), only if
    // one is tried.
    let mut kernel_btf: Option<Result<aya::Btf, String>> = None;
    for &hook in hooks {
        let entry = match features::get().drop_program(hook) {
            Ok(entry) => entry,
            // Reading in place needs a tracepoint with a reason (5.17+); the others load.
            Err(DropsUnsupported::UnknownTracepoint(_)) if hook == DropHook::BtfPeek => continue,
            Err(e) => return Err(ProbeError::DropsUnsupported(e)),
        };
        let inner = drop_inner_program(hook);
        let btf = if hook == DropHook::Raw {
            None
        } else {
            match kernel_btf
                .get_or_insert_with(|| aya::Btf::from_sys_fs().map_err(|e| e.to_string()))
            {
                Ok(btf) => Some(&*btf),
                Err(e) => {
                    refused = Some(ProbeError::DropProbe(format!(
                        "reading the kernel's BTF: {e}"
                    )));
                    continue;
                }
            }
        };
        let loaded = load_program(ebpf, entry, btf)
            .and_then(|()| load_program(ebpf, inner, btf))
            .and_then(|()| fill_stage(ebpf, drop_stages(hook), inner));
        match loaded {
            Ok(()) => {
                match &refused {
                    Some(e) => log::info!(
                        "the drop probe runs as a {}: the kernel refused a cheaper hook: {e}",
                        hook.name()
                    ),
                    None => log::info!("the drop probe runs as a {}", hook.name()),
                }
                return Ok((entry, hook));
            }
            Err(e) => {
                // Each hook has its own stage array (its first program fixes its type), and
                // what did load of this one is unloaded again.
                unload_program(ebpf, entry);
                unload_program(ebpf, inner);
                refused = Some(e);
            }
        }
    }
    Err(refused.unwrap_or(ProbeError::DropProbe("no hook to load it with".into())))
}

/// The drop probe's program array of second stages for `hook`.
fn drop_stages(hook: DropHook) -> &'static str {
    match hook {
        DropHook::BtfPeek | DropHook::Btf => "DROP_STAGES_BTF",
        DropHook::Raw => "DROP_STAGES",
    }
}

/// A copy of an eBPF object, 8-aligned as ELF parsing wants it.
struct ObjectCopy {
    words: Vec<u64>,
    len: usize,
}

impl ObjectCopy {
    /// `object` with the target of every call of `bpf_rdonly_cast` ([`PEEK_CALL_INSN`]) set
    /// to `id`, the function's BTF id in the running kernel.
    fn with_peek_calls(object: &[u8], id: u32) -> Self {
        // Instructions are 8-aligned in the file (their sections are, and they in them), and
        // the object is little-endian, like the BPF target.
        let target = u64::from(id) << 32 | (PEEK_CALL_INSN & 0xffff_ffff);
        let words = object
            .chunks(8)
            .map(|chunk| {
                let mut bytes = [0u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                match u64::from_le_bytes(bytes) {
                    PEEK_CALL_INSN => u64::from_ne_bytes(target.to_le_bytes()),
                    _ => u64::from_ne_bytes(bytes),
                }
            })
            .collect();
        ObjectCopy {
            words,
            len: object.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes of the vector's memory, which holds at least that many; u8 has
        // no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calls_of_bpf_rdonly_cast_change_when_the_object_is_patched() {
        let id = 0x0001_2345;
        let patched = ObjectCopy::with_peek_calls(OBJECT, id);
        let patched = patched.bytes();
        assert_eq!(patched.len(), OBJECT.len());
        let calls = PEEK_CALL_INSN.to_le_bytes();
        let mut target = calls;
        target[4..].copy_from_slice(&id.to_le_bytes());
        let mut changed = 0;
        for (old, new) in OBJECT.chunks(8).zip(patched.chunks(8)) {
            if old == calls {
                assert_eq!(new, target);
                changed += 1;
            } else {
                assert_eq!(old, new);
            }
        }
        // The programs that read packets in place call it for every read of the packet.
        assert!(changed > 10, "{changed} calls of bpf_rdonly_cast patched");
    }
}
