//! The programs `cargo xtask bench` measures tracer's programs against. The empty ones say
//! what running any program at all costs: `floor` (XDP) and `floor_tc` are the floors of the
//! XDP and tc rows of the cost section; `floor_drop`, an empty raw tracepoint program on
//! `kfree_skb`, is the floor of the drop probe in a drop storm. The `*_upto_*` programs are
//! tracer's own classifiers built from tracer's own sources, cut short after each part (the
//! interface lookup, the parse, the `gso_segs` read, the class lookup; the counter is the rest),
//! so that the bench can tell what each part costs. A separate object: tracer itself never
//! loads it.
#![no_std]
#![no_main]
#![allow(
    dead_code,
    reason = "tracer's datapath sources, of which these programs use a part"
)]

mod datapath;
mod maps;
mod overlay;
mod peers;
mod readers;
mod words;

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{classifier, raw_tracepoint, xdp},
    programs::{RawTracePointContext, TcContext, XdpContext},
};
use datapath::{UPTO_CLASS, UPTO_IFACE, UPTO_PARSE, UPTO_SEGS, observe_skb, observe_xdp};
use tracer_common::counters::DIR_INGRESS;

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

#[classifier]
pub fn tc_upto_iface(ctx: TcContext) -> i32 {
    observe_skb::<UPTO_IFACE>(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tc_upto_parse(ctx: TcContext) -> i32 {
    observe_skb::<UPTO_PARSE>(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tc_upto_segs(ctx: TcContext) -> i32 {
    observe_skb::<UPTO_SEGS>(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tc_upto_class(ctx: TcContext) -> i32 {
    observe_skb::<UPTO_CLASS>(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

#[xdp]
pub fn xdp_upto_iface(ctx: XdpContext) -> u32 {
    observe_xdp::<UPTO_IFACE>(&ctx);
    XDP_PASS
}

#[xdp]
pub fn xdp_upto_parse(ctx: XdpContext) -> u32 {
    observe_xdp::<UPTO_PARSE>(&ctx);
    XDP_PASS
}

#[xdp]
pub fn xdp_upto_class(ctx: XdpContext) -> u32 {
    observe_xdp::<UPTO_CLASS>(&ctx);
    XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
