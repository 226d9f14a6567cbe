//! tc programs on kernels without TCX (before 6.6): netlink filters under a clsact qdisc,
//! which the kernel keeps after the process that attached them is gone. tracer attaches its
//! filters at a priority and handle of its own, so that what an earlier, killed run left can be
//! told apart from everything else: a filter is tracer's leftover only when it sits at tracer's
//! priority with tracer's handle, runs a BPF program with the name of tracer's program for that
//! direction, and no live process holds that program. Others' filters are never touched, and a
//! live tracer's filters are reported, not removed.

mod netlink;

use std::{io, path::Path};

use super::Program;

/// Ingress filters go first (lowest priority number), so they see packets before programs that
/// drop or redirect them; egress filters go last, to see what leaves.
pub const INGRESS_PRIORITY: u16 = 1;
pub const EGRESS_PRIORITY: u16 = 0xffff;
/// The filter handle tracer uses at those priorities ("trace").
pub const HANDLE: u32 = 0x7ace;

/// Where tracer puts one direction's filter, and the program it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub direction: &'static str,
    pub parent: u32,
    pub priority: u16,
    pub program: Program,
}

pub const INGRESS: Slot = Slot {
    direction: "ingress",
    parent: netlink::PARENT_INGRESS,
    priority: INGRESS_PRIORITY,
    program: Program::TcIngress,
};
pub const EGRESS: Slot = Slot {
    direction: "egress",
    parent: netlink::PARENT_EGRESS,
    priority: EGRESS_PRIORITY,
    program: Program::TcEgress,
};

/// A filter in tracer's slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub iface: String,
    pub ifindex: u32,
    pub slot: Slot,
    pub prog_id: u32,
    /// Processes holding the program: a running tracer. Empty for a leftover.
    pub holders: Vec<u32>,
}

impl Found {
    pub fn is_leftover(&self) -> bool {
        self.holders.is_empty()
    }
}

/// What [`clean`] did on one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Leftover filters removed.
    pub removed: Vec<Found>,
    /// Filters of tracers still running, left alone.
    pub live: Vec<Found>,
    /// The clsact qdisc was removed: only tracer's leftovers were on it.
    pub qdisc_removed: bool,
}

/// tracer's filters on an interface, in both directions.
pub fn find(iface: &str, ifindex: u32) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for slot in [INGRESS, EGRESS] {
        for f in netlink::filters(ifindex, slot.parent)? {
            let ours = f.kind == "bpf"
                && f.priority == slot.priority
                && f.handle == HANDLE
                && f.bpf_name.as_deref() == Some(slot.program.name());
            if let (true, Some(prog_id)) = (ours, f.prog_id) {
                found.push(Found {
                    iface: iface.to_string(),
                    ifindex,
                    slot,
                    prog_id,
                    holders: holders(Path::new("/proc"), prog_id),
                });
            }
        }
    }
    Ok(found)
}

/// Removes what an earlier run left on an interface: tracer's filters no live process holds,
/// then the clsact qdisc if nothing else is left on it.
pub fn clean(iface: &str, ifindex: u32) -> io::Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    for f in find(iface, ifindex)? {
        if f.is_leftover() {
            netlink::delete_filter(ifindex, f.slot.parent, f.slot.priority, HANDLE)?;
            cleaned.removed.push(f);
        } else {
            cleaned.live.push(f);
        }
    }
    if !cleaned.removed.is_empty() && is_empty(ifindex)? {
        netlink::delete_clsact(ifindex)?;
        cleaned.qdisc_removed = true;
    }
    Ok(cleaned)
}

/// No filter at all on either clsact hook of the interface.
pub fn is_empty(ifindex: u32) -> io::Result<bool> {
    Ok(netlink::filters(ifindex, INGRESS.parent)?.is_empty()
        && netlink::filters(ifindex, EGRESS.parent)?.is_empty())
}

/// Removes the interface's clsact qdisc if no filter is left on it.
pub fn remove_empty_clsact(ifindex: u32) -> io::Result<bool> {
    if !is_empty(ifindex)? {
        return Ok(false);
    }
    match netlink::delete_clsact(ifindex) {
        Ok(()) => Ok(true),
        // Gone already (with its interface, say).
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOENT | libc::ENODEV)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The processes with a descriptor of BPF program `prog_id` open, from `/proc/*/fdinfo`.
fn holders(proc: &Path, prog_id: u32) -> Vec<u32> {
    let want = format!("prog_id:\t{prog_id}");
    let Ok(procs) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fdinfo")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_to_string(fd.path())
                .is_ok_and(|info| info.lines().any(|l| l.trim_end() == want))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_held_by_the_processes_whose_fdinfo_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let fdinfo = |pid: &str, fd: &str, text: &str| {
            let d = dir.path().join(pid).join("fdinfo");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(fd), text).unwrap();
        };
        fdinfo("10", "3", "pos:\t0\nprog_type:\t3\nprog_id:\t42\n");
        fdinfo("11", "4", "pos:\t0\nprog_id:\t421\n");
        fdinfo("12", "5", "pos:\t0\nflags:\t02\n");
        fdinfo("self", "5", "prog_id:\t42\n");
        assert_eq!(holders(dir.path(), 42), vec![10]);
        assert!(holders(dir.path(), 7).is_empty());
    }
}
