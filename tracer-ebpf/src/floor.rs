//! The empty programs `cargo xtask bench` measures tracer's programs against: what running
//! any program at all costs. `floor` (XDP) and `floor_tc` are the floors of the XDP and tc
//! rows of the cost section; `floor_drop`, an empty raw tracepoint program on `kfree_skb`,
//! is the floor of the drop probe in a drop storm. A separate object: tracer itself never
//! loads it.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{classifier, raw_tracepoint, xdp},
    programs::{RawTracePointContext, TcContext, XdpContext},
};

#[xdp]
pub fn floor(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[classifier]
pub fn floor_tc(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn floor_drop(_ctx: RawTracePointContext) -> i32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
