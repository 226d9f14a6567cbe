//! From catalog components to the class tables: one class per component name, ports filled
//! so that a narrower range inside a wider one keeps its own class (kubelet's 10250 inside
//! Longhorn's 10000-30000), and every other overlap reported as a conflict.

use tracer_common::classes::{CLASS_FLAG_PEER, CLASS_FLAG_VXLAN};

use super::{CatalogError, Component, OverlayKind};
use crate::probes::ClassTable;

struct Entry<'a> {
    proto: u8,
    lo: u16,
    hi: u16,
    class: u8,
    component: &'a Component,
}

/// Builds the class table of `components`, or says which two entries cannot both hold.
pub fn class_table(components: &[Component]) -> Result<ClassTable, CatalogError> {
    let mut table = ClassTable::new();
    let mut entries: Vec<Entry> = Vec::new();
    for c in components {
        let class = table
            .add_class(&c.name)
            .ok_or(CatalogError::TooManyClasses {
                max: tracer_common::classes::MAX_CLASSES - 2,
            })?;
        if c.overlay
            .as_ref()
            .is_some_and(|o| o.kind == OverlayKind::Vxlan)
        {
            table.set_flags(class, CLASS_FLAG_VXLAN);
        }
        // Overlay packets and BGP sessions go between nodes: counted per peer as well.
        if c.overlay.is_some() || c.peering {
            table.set_flags(class, CLASS_FLAG_PEER);
        }
        for proto in &c.protocols {
            if !proto.has_ports() {
                let n = proto.number();
                if let Some(other) = entries
                    .iter()
                    .find(|e| e.proto == n && e.lo == 0 && e.class != class)
                {
                    return Err(conflict(c, other.component, &proto.to_string()));
                }
                entries.push(Entry {
                    proto: n,
                    lo: 0,
                    hi: 0,
                    class,
                    component: c,
                });
                continue;
            }
            for r in &c.ports {
                let e = Entry {
                    proto: proto.number(),
                    lo: r.lo,
                    hi: r.hi,
                    class,
                    component: c,
                };
                for other in entries.iter().filter(|o| o.proto == e.proto && o.lo != 0) {
                    let overlap = e.lo <= other.hi && other.lo <= e.hi;
                    let nested = (e.lo >= other.lo && e.hi <= other.hi)
                        || (other.lo >= e.lo && other.hi <= e.hi);
                    let same_range = e.lo == other.lo && e.hi == other.hi;
                    if overlap && other.class != class && (!nested || same_range) {
                        return Err(conflict(c, other.component, &format!("{r}/{proto}")));
                    }
                }
                entries.push(e);
            }
        }
    }
    // Wider ranges first, so narrower ones overwrite the ports they carve out.
    entries.sort_by_key(|e| std::cmp::Reverse(u32::from(e.hi) - u32::from(e.lo)));
    for e in &entries {
        if e.lo == 0 {
            table.set_protocol(e.proto, e.class);
        } else {
            table.set_ports(e.proto, e.lo, e.hi, e.class);
        }
    }
    Ok(table)
}

fn conflict(a: &Component, b: &Component, what: &str) -> CatalogError {
    CatalogError::Overlap {
        what: what.to_string(),
        a: a.name.clone(),
        a_origin: a.origin.clone(),
        b: b.name.clone(),
        b_origin: b.origin.clone(),
    }
}
