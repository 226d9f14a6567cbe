//! The event budgets: per CPU, at most `events_per_cpu` events a second over all flows, and
//! at most `events_per_flow` for each flow. Both live in per-CPU memory (the CPU's in its
//! probe state, the flow's in its per-CPU count), so taking from a budget is a plain add.
//!
//! Knowing when a second has passed needs the clock, and `bpf_ktime_get_ns` costs a drop more
//! than the rest of the budget does. So the window looks at the clock only when jiffies (a
//! load, once the kernel inlines `bpf_jiffies64`) have moved by `CHECK_JIFFIES` since it last
//! did: a few hundred times a second at most, whatever the drop rate, and a window lasts a
//! second and at most `CHECK_JIFFIES` ticks more. A drop that the budgets hold back reads no
//! clock at all; only an event that is sent reads it, for its timestamp.

use aya_ebpf::helpers::generated::{bpf_jiffies64, bpf_ktime_get_ns};
use tracer_common::drops::{DropEvent, FlowCount, STAT_EVENTS_LOST, STAT_EVENTS_SUPPRESSED};

use super::{DROP_EVENTS, config, state};

const CHECK_JIFFIES: u64 = 4;
const SECOND_NS: u64 = 1_000_000_000;

/// Sends `ev` if this CPU's budget and its flow's (`flow`, when the flow table holds it)
/// allow one more event in this window, copying its packet from `uncopied` first (0: copied
/// already); counts it as held back otherwise.
#[inline(always)]
pub fn offer(ev: &mut DropEvent, flow: Option<*mut FlowCount>, uncopied: u64) {
    let Some(w) = state() else {
        return;
    };
    let per_cpu: u32 = config!(events_per_cpu);
    let per_flow: u32 = config!(events_per_flow);
    // SAFETY: the helpers take no arguments.
    let jiffies = unsafe { bpf_jiffies64() };
    if jiffies >= w.window_check_at {
        // SAFETY: as above.
        let now = unsafe { bpf_ktime_get_ns() };
        if now.wrapping_sub(w.window_start_ns) >= SECOND_NS {
            w.window_start_ns = now;
            w.window_number = w.window_number.wrapping_add(1);
            w.window_events = 0;
        }
        w.window_check_at = jiffies + CHECK_JIFFIES;
    }
    if w.window_events >= per_cpu {
        w.stats[STAT_EVENTS_SUPPRESSED as usize] += 1;
        return;
    }
    if let Some(f) = flow {
        // SAFETY: this CPU's count of the flow (in the cache or the table), valid for the run
        // and written by no other run.
        let f = unsafe { &mut *f };
        if f.window != w.window_number {
            f.window = w.window_number;
            f.events = 0;
        }
        if f.events >= per_flow {
            w.stats[STAT_EVENTS_SUPPRESSED as usize] += 1;
            return;
        }
        f.events += 1;
    }
    w.window_events += 1;
    if uncopied != 0 {
        super::fill(ev, uncopied);
    }
    // SAFETY: as above.
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    if DROP_EVENTS.output::<DropEvent>(&*ev, 0).is_err() {
        w.stats[STAT_EVENTS_LOST as usize] += 1;
    }
}
