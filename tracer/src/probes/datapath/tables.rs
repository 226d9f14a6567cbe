//! Filling the loaded object: the class tables, the watched interfaces, and the program arrays
//! that second stages are tail-called through; and loading (verifying) programs by name.

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, ProgramArray},
};
use tracer_common::{
    classes::PortClasses,
    counters::{IFACE_ARRAY_LEN, IFACE_NO_L2, IfaceSlot},
};

use super::{Target, missing, rejection};
use crate::probes::{ClassTable, ProbeError};

pub(super) fn fill_classes(ebpf: &mut Ebpf, classes: &ClassTable) -> Result<(), ProbeError> {
    let map_err = |map| move |source| ProbeError::Map { map, source };
    let mut ports: Array<&mut MapData, PortClasses> = Array::try_from(
        ebpf.map_mut("PORT_CLASSES")
            .expect("object defines PORT_CLASSES"),
    )
    .map_err(map_err("PORT_CLASSES"))?;
    // The array starts zeroed (class `other`): only classed ports need writing.
    for (port, value) in classes.ports().iter().enumerate() {
        if *value != PortClasses::default() {
            ports
                .set(port as u32, value, 0)
                .map_err(map_err("PORT_CLASSES"))?;
        }
    }
    let mut protos: Array<&mut MapData, u8> = Array::try_from(
        ebpf.map_mut("PROTO_CLASSES")
            .expect("object defines PROTO_CLASSES"),
    )
    .map_err(map_err("PROTO_CLASSES"))?;
    for (proto, class) in classes.protos().iter().enumerate() {
        if *class != 0 {
            protos
                .set(proto as u32, class, 0)
                .map_err(map_err("PROTO_CLASSES"))?;
        }
    }
    let mut flags: Array<&mut MapData, u8> = Array::try_from(
        ebpf.map_mut("CLASS_FLAGS")
            .expect("object defines CLASS_FLAGS"),
    )
    .map_err(map_err("CLASS_FLAGS"))?;
    for (class, f) in classes.flags().iter().enumerate() {
        if *f != 0 {
            flags
                .set(class as u32, f, 0)
                .map_err(map_err("CLASS_FLAGS"))?;
        }
    }
    Ok(())
}

/// Loads (verifies) one program of the object, whatever its type.
pub(super) fn load_program(ebpf: &mut Ebpf, name: &'static str) -> Result<(), ProbeError> {
    let prog = ebpf.program_mut(name).ok_or_else(|| missing(name))?;
    let loaded = match prog {
        aya::programs::Program::Xdp(p) => p.load(),
        aya::programs::Program::SchedClassifier(p) => p.load(),
        aya::programs::Program::RawTracePoint(p) => p.load(),
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

/// Puts loaded programs into a program array at their stage indexes, for tail calls.
pub(super) fn fill_stages(
    ebpf: &mut Ebpf,
    map: &'static str,
    stages: &[(u32, &'static str)],
) -> Result<(), ProbeError> {
    let mut fds = Vec::new();
    for (index, name) in stages {
        let rejected = |reason: String| ProbeError::Rejected {
            program: name,
            reason,
        };
        let prog = ebpf.program(name).ok_or_else(|| missing(name))?;
        let fd = prog.fd().map_err(|e| rejected(e.to_string()))?;
        let fd = fd.try_clone().map_err(|e| rejected(e.to_string()))?;
        fds.push((*index, fd));
    }
    let mut array: ProgramArray<&mut MapData> = ProgramArray::try_from(
        ebpf.map_mut(map)
            .expect("object defines its program arrays"),
    )
    .map_err(|source| ProbeError::Map { map, source })?;
    for (index, fd) in &fds {
        array
            .set(*index, fd, 0)
            .map_err(|source| ProbeError::Map { map, source })?;
    }
    Ok(())
}

pub(super) fn fill_targets(ebpf: &mut Ebpf, targets: &[Target]) -> Result<(), ProbeError> {
    let map_err = |map| move |source| ProbeError::Map { map, source };
    let slots = targets.iter().enumerate().map(|(i, t)| {
        let flags = if t.has_l2 { 0 } else { IFACE_NO_L2 };
        (
            t.index,
            IfaceSlot {
                slot: i as u16 + 1,
                flags,
            },
        )
    });
    for (index, slot) in slots {
        if index < IFACE_ARRAY_LEN {
            let mut low: Array<&mut MapData, IfaceSlot> =
                Array::try_from(ebpf.map_mut("IFACES").expect("object defines IFACES"))
                    .map_err(map_err("IFACES"))?;
            low.set(index, slot, 0).map_err(map_err("IFACES"))?;
        } else {
            let mut high: HashMap<&mut MapData, u32, IfaceSlot> = HashMap::try_from(
                ebpf.map_mut("IFACES_HIGH")
                    .expect("object defines IFACES_HIGH"),
            )
            .map_err(map_err("IFACES_HIGH"))?;
            high.insert(index, slot, 0)
                .map_err(map_err("IFACES_HIGH"))?;
        }
    }
    Ok(())
}
