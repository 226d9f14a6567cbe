//! Entry points of tracer's kernel programs. Each is a thin wrapper: the work is in
//! [`datapath`], and whatever happens there the packet continues unchanged — the tracer
//! observes, it never decides.
#![no_std]
#![no_main]
// The atomic add of the flow filter: the BPF target's atomics have no read-modify-write methods.
#![feature(core_intrinsics)]
#![allow(internal_features)]
// The call of `bpf_rdonly_cast`, written out as an instruction (readers::peek).
#![feature(asm_experimental_arch)]

mod datapath;
mod drops;
mod maps;
mod overlay;
mod peers;
mod readers;
mod words;

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{btf_tracepoint, classifier, raw_tracepoint, xdp},
    programs::{BtfTracePointContext, RawTracePointContext, TcContext, XdpContext},
};
use tracer_common::counters::{DIR_EGRESS, DIR_INGRESS};

/// tc (TCX) ingress. Returning TC_ACT_UNSPEC (TCX_NEXT) lets any program after ours run.
#[classifier]
pub fn tc_ingress(ctx: TcContext) -> i32 {
    datapath::observe_skb::<{ datapath::UPTO_ALL }>(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

/// tc (TCX) egress.
#[classifier]
pub fn tc_egress(ctx: TcContext) -> i32 {
    datapath::observe_skb::<{ datapath::UPTO_ALL }>(&ctx, DIR_EGRESS);
    TC_ACT_UNSPEC
}

/// XDP ingress, for physical NICs where XDP is the cheaper hook.
#[xdp]
pub fn xdp_ingress(ctx: XdpContext) -> u32 {
    datapath::observe_xdp::<{ datapath::UPTO_ALL }>(&ctx);
    XDP_PASS
}

/// The tc programs' second stage: the inner frame of an overlay packet. Reached by tail call.
#[classifier]
pub fn tc_inner(ctx: TcContext) -> i32 {
    datapath::observe_skb_inner(&ctx);
    TC_ACT_UNSPEC
}

/// The XDP program's second stage. Reached by tail call.
#[xdp]
pub fn xdp_inner(ctx: XdpContext) -> u32 {
    datapath::observe_xdp_inner(&ctx);
    XDP_PASS
}

/// Every packet the kernel frees as dropped, in any namespace; the probe keeps its own. One
/// program per argument count of the tracepoint (`tracer_common::drops::drop_program`): the
/// loader loads the one the running kernel's BTF calls for.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn kfree_skb_2(ctx: RawTracePointContext) -> i32 {
    drops::observe::<2, { drops::RAW }, _>(&ctx);
    0
}

/// `kfree_skb` with a `reason` argument (5.17 to 6.9).
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn kfree_skb_3(ctx: RawTracePointContext) -> i32 {
    drops::observe::<3, { drops::RAW }, _>(&ctx);
    0
}

/// `kfree_skb` with `reason` and `rx_sk` (6.10 on).
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn kfree_skb_4(ctx: RawTracePointContext) -> i32 {
    drops::observe::<4, { drops::RAW }, _>(&ctx);
    0
}

/// The drop probe's second stage, reached by tail call for VXLAN packets. Never attached.
#[raw_tracepoint(tracepoint = "kfree_skb")]
pub fn kfree_skb_inner(_ctx: RawTracePointContext) -> i32 {
    // Everything this stage needs is in the per-CPU scratch entry the entry stage filled.
    drops::observe_inner();
    0
}

/// The same probe as a BTF tracepoint, one program per argument count: the kernel knows the
/// type of its `skb`, so the probe reads the `sk_buff`, device and socket by plain loads
/// instead of helper calls. The loader prefers these where the kernel takes them.
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf_2(ctx: BtfTracePointContext) -> i32 {
    drops::observe::<2, { drops::BTF }, _>(&ctx);
    0
}

/// `kfree_skb` with a `reason` argument, as a BTF tracepoint.
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf_3(ctx: BtfTracePointContext) -> i32 {
    drops::observe::<3, { drops::BTF }, _>(&ctx);
    0
}

/// `kfree_skb` with `reason` and `rx_sk`, as a BTF tracepoint.
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf_4(ctx: BtfTracePointContext) -> i32 {
    drops::observe::<4, { drops::BTF }, _>(&ctx);
    0
}

/// The BTF tracepoint probe reading packets in place (`bpf_rdonly_cast`, 6.2+, when the
/// tracepoint has a reason): no copy of the packet unless an event or an inner frame needs it.
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_peek_3(ctx: BtfTracePointContext) -> i32 {
    drops::observe::<3, { drops::PEEK }, _>(&ctx);
    0
}

/// The same with `rx_sk` (6.10 on).
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_peek_4(ctx: BtfTracePointContext) -> i32 {
    drops::observe::<4, { drops::PEEK }, _>(&ctx);
    0
}

/// The second stage of the BTF tracepoint programs: a tail call stays within one program type
/// and attach point. Never attached.
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb_btf_inner(_ctx: BtfTracePointContext) -> i32 {
    drops::observe_inner();
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
