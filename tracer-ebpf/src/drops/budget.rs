//! The event budgets: per CPU, at most `events_per_cpu` events a second over all flows, and
//! at most `events_per_flow` for each flow. Both live in per-CPU memory (the flow's in its
//! per-CPU count), so taking from a budget is a plain add.
//!
//! Knowing when a second has passed needs the clock, and `bpf_ktime_get_ns` costs a drop more
//! than the rest of the budget does. So the window looks at the clock only when jiffies (a
//! load, once the kernel inlines `bpf_jiffies64`) have moved by `CHECK_JIFFIES` since it last
//! did: a few hundred times a second at most, whatever the drop rate, and a window lasts a
//! second and at most `CHECK_JIFFIES` ticks more. A drop that the budgets hold back reads no
//! clock at all; only an event that is sent reads it, for its timestamp.

use aya_ebpf::{
    helpers::generated::{bpf_jiffies64, bpf_ktime_get_ns},
    macros::map,
    maps::PerCpuArray,
};
use tracer_common::drops::{DropEvent, FlowCount, STAT_EVENTS_LOST, STAT_EVENTS_SUPPRESSED};

use super::{DROP_EVENTS, config, stat};

/// This CPU's event window.
#[repr(C)]
pub struct Window {
    /// When the window started (`bpf_ktime_get_ns`).
    start_ns: u64,
    /// The jiffies at which to look at the clock again.
    check_at: u64,
    /// Counts the windows, so that a flow's budget knows when it is a new one.
    number: u32,
    /// Events sent in this window.
    events: u32,
}

#[map]
static EVENT_WINDOW: PerCpuArray<Window> = PerCpuArray::with_max_entries(1, 0);

const CHECK_JIFFIES: u64 = 4;
const SECOND_NS: u64 = 1_000_000_000;

/// Sends `ev` if this CPU's budget and its flow's (`flow`, when the flow table holds it)
/// allow one more event in this window; counts it as held back otherwise.
#[inline(always)]
pub fn offer(ev: &mut DropEvent, flow: Option<*mut FlowCount>) {
    let Some(w) = EVENT_WINDOW.get_ptr_mut(0) else {
        return;
    };
    let per_cpu: u32 = config!(events_per_cpu);
    let per_flow: u32 = config!(events_per_flow);
    // SAFETY: per-CPU map values, valid for the program's run, written by no other run; the
    // helpers take no arguments.
    unsafe {
        let jiffies = bpf_jiffies64();
        if jiffies >= (*w).check_at {
            let now = bpf_ktime_get_ns();
            if now.wrapping_sub((*w).start_ns) >= SECOND_NS {
                (*w).start_ns = now;
                (*w).number = (*w).number.wrapping_add(1);
                (*w).events = 0;
            }
            (*w).check_at = jiffies + CHECK_JIFFIES;
        }
        if (*w).events >= per_cpu {
            stat(STAT_EVENTS_SUPPRESSED);
            return;
        }
        if let Some(f) = flow {
            if (*f).window != (*w).number {
                (*f).window = (*w).number;
                (*f).events = 0;
            }
            if (*f).events >= per_flow {
                stat(STAT_EVENTS_SUPPRESSED);
                return;
            }
            (*f).events += 1;
        }
        (*w).events += 1;
        ev.ts_ns = bpf_ktime_get_ns();
    }
    if DROP_EVENTS.output::<DropEvent>(&*ev, 0).is_err() {
        stat(STAT_EVENTS_LOST);
    }
}
