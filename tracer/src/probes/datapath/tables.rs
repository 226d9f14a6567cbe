//! Filling the loaded object: the class tables, the watched interfaces, and the program arrays
//! that second stages are tail-called through; and loading (verifying) programs by name.

use aya::{
    Ebpf, Pod,
    maps::{Array, HashMap, MapData, ProgramArray},
};
use tracer_common::counters::{IFACE_ARRAY_LEN, IFACE_NO_L2, IfaceSlot, STAGE_INNER};

use super::{Target, map_err, missing, open_map_mut, rejection};
use crate::probes::{ClassTable, ProbeError};

pub(super) fn fill_classes(ebpf: &mut Ebpf, classes: &ClassTable) -> Result<(), ProbeError> {
    fill_array(ebpf, "PORT_CLASSES", classes.ports())?;
    fill_array(ebpf, "PROTO_CLASSES", classes.protos())
}

/// Writes `values` into the array map `name`, entry `i` from `values[i]`. The array starts
/// zeroed (class `other`, no flags): only the entries that differ from the default are written.
fn fill_array<T: Pod + Default + PartialEq>(
    ebpf: &mut Ebpf,
    name: &'static str,
    values: &[T],
) -> Result<(), ProbeError> {
    let mut array: Array<&mut MapData, T> = open_map_mut(ebpf, name)?;
    let zero = T::default();
    for (i, value) in values.iter().enumerate() {
        if *value != zero {
            array.set(i as u32, value, 0).map_err(map_err(name))?;
        }
    }
    Ok(())
}

/// Loads (verifies) one program of the object, whatever its type; a BTF tracepoint program
/// (on `kfree_skb`, the only one) against `kernel_btf`, the running kernel's, parsed once by
/// the caller.
pub(super) fn load_program(
    ebpf: &mut Ebpf,
    name: &'static str,
    kernel_btf: Option<&aya::Btf>,
) -> Result<(), ProbeError> {
    let prog = ebpf.program_mut(name).ok_or_else(|| missing(name))?;
    let loaded = match (prog, kernel_btf) {
        (aya::programs::Program::Xdp(p), _) => p.load(),
        (aya::programs::Program::SchedClassifier(p), _) => p.load(),
        (aya::programs::Program::RawTracePoint(p), _) => p.load(),
        (aya::programs::Program::BtfTracePoint(p), Some(btf)) => p.load("kfree_skb", btf),
        (aya::programs::Program::BtfTracePoint(_), None) => {
            return Err(ProbeError::Rejected {
                program: name,
                reason: "a BTF tracepoint program needs the kernel's BTF to load".into(),
            });
        }
        _ => {
            return Err(ProbeError::Rejected {
                program: name,
                reason: "of an unexpected type".into(),
            });
        }
    };
    loaded.map_err(|e| ProbeError::Rejected {
        program: name,
        reason: rejection(&e),
    })
}

/// Unloads program `name` if it is loaded, so that it holds nothing of the kernel's.
pub(super) fn unload_program(ebpf: &mut Ebpf, name: &'static str) {
    if let Some(prog) = ebpf.program_mut(name) {
        // Not loaded is the only error, and then there is nothing to undo.
        let _ = match prog {
            aya::programs::Program::BtfTracePoint(p) => p.unload(),
            aya::programs::Program::RawTracePoint(p) => p.unload(),
            _ => Ok(()),
        };
    }
}

/// Puts the loaded program `program` into the program array `map` at `STAGE_INNER`, for the
/// entry program's tail call.
pub(super) fn fill_stage(
    ebpf: &mut Ebpf,
    map: &'static str,
    program: &'static str,
) -> Result<(), ProbeError> {
    let rejected = |reason: String| ProbeError::Rejected { program, reason };
    let prog = ebpf.program(program).ok_or_else(|| missing(program))?;
    let fd = prog.fd().map_err(|e| rejected(e.to_string()))?;
    let fd = fd.try_clone().map_err(|e| rejected(e.to_string()))?;
    let mut array: ProgramArray<&mut MapData> = open_map_mut(ebpf, map)?;
    array.set(STAGE_INNER, &fd, 0).map_err(map_err(map))
}

pub(super) fn fill_targets(ebpf: &mut Ebpf, targets: &[Target]) -> Result<(), ProbeError> {
    let (low, high): (Vec<_>, Vec<_>) = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let flags = if t.has_l2 { 0 } else { IFACE_NO_L2 };
            (
                t.index,
                IfaceSlot {
                    slot: i as u16 + 1,
                    flags,
                },
            )
        })
        .partition(|(index, _)| *index < IFACE_ARRAY_LEN);
    if !low.is_empty() {
        let mut array: Array<&mut MapData, IfaceSlot> = open_map_mut(ebpf, "IFACES")?;
        for (index, slot) in low {
            array.set(index, slot, 0).map_err(map_err("IFACES"))?;
        }
    }
    if !high.is_empty() {
        let mut hash: HashMap<&mut MapData, u32, IfaceSlot> = open_map_mut(ebpf, "IFACES_HIGH")?;
        for (index, slot) in high {
            hash.insert(index, slot, 0)
                .map_err(map_err("IFACES_HIGH"))?;
        }
    }
    Ok(())
}
