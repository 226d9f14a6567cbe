//! The empty programs `cargo xtask bench` measures tracer's programs against: what running
//! any program at all costs. `floor` (XDP) is the floor of every row; `floor_tc` shows what
//! the kernel's skb test run adds around a tc program. A separate object: tracer itself
//! never loads it.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

#[xdp]
pub fn floor(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[classifier]
pub fn floor_tc(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
