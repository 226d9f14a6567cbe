//! What the drop probe reads of the kernel's structures for a drop: the `sk_buff`'s fields,
//! the namespace and index of its device (or the namespace of its socket), by offsets the
//! loader took from the running kernel's BTF. A raw tracepoint program copies them with
//! `bpf_probe_read_kernel`, a window at a time; a BTF tracepoint program loads them directly.

use aya_ebpf::{cty::c_void, helpers::generated::bpf_probe_read_kernel};
use tracer_common::drops::DropScratch;

use super::config;

/// One kernel value at `base + off`.
#[inline(always)]
pub fn read<T>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let size = core::mem::size_of::<T>() as u32;
    // SAFETY: the helper faults safely on a bad address and writes `size` bytes into `v`.
    let ret = unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr().cast::<c_void>(),
            size,
            (base + u64::from(off)) as *const c_void,
        )
    };
    // SAFETY: on success the helper filled `v`.
    (ret == 0).then(|| unsafe { v.assume_init() })
}

/// Copies `len` (at most `N - 8`) bytes of kernel memory at `src` into `buf`.
#[inline(always)]
fn read_into<const N: usize>(buf: &mut [u8; N], src: u64, len: u32) -> Option<()> {
    let len = len.min((N - 8) as u32);
    // SAFETY: the helper faults safely on a bad address; `buf` holds at least `len` bytes.
    let ret = unsafe {
        bpf_probe_read_kernel(buf.as_mut_ptr().cast::<c_void>(), len, src as *const c_void)
    };
    (ret == 0).then_some(())
}

/// The field at `off` of a struct whose bytes from `base` on are copied into `buf`.
#[inline(always)]
fn field<T: Copy, const N: usize>(buf: &[u8; N], off: u32, base: u32) -> T {
    const { assert!(core::mem::size_of::<T>() <= 8) };
    // The loader checked that every field lies inside the window; the mask (N - 8 is a power
    // of two) shows the verifier that the read stays inside the buffer.
    let at = off.wrapping_sub(base) as usize & (N - 9);
    // SAFETY: at + size_of::<T>() <= N - 8 + 8.
    unsafe { buf.as_ptr().add(at).cast::<T>().read_unaligned() }
}

/// What the probe takes from the `sk_buff` and from its device or socket.
pub struct SkbView {
    /// The `struct net` of the device, or of the socket for a packet without a device yet.
    pub net: u64,
    /// 0 for a packet without a device.
    pub ifindex: u32,
    pub len: u32,
    pub head: u64,
    pub tail: u32,
    pub mac_header: u16,
    pub network_header: u16,
    /// Network byte order, as in the `sk_buff`.
    pub protocol: u16,
}

/// The view through `bpf_probe_read_kernel`: one copy of the `sk_buff` fields, one of the
/// device's (or of the socket's namespace). For raw tracepoints, whose `skb` is a number.
#[inline(always)]
pub fn view_copied(skb: u64, s: &mut DropScratch) -> Option<SkbView> {
    let window = config!(skb_window);
    read_into(&mut s.skb, skb + u64::from(window), config!(skb_window_len))?;
    let dev: u64 = field(&s.skb, config!(skb_dev), window);
    // The namespace of the device, or of the socket for packets without one yet.
    let (net, ifindex) = if dev == 0 {
        let sk: u64 = field(&s.skb, config!(skb_sk), window);
        (read::<u64>(sk, config!(sk_net))?, 0)
    } else if config!(dev_window_len) != 0 {
        let base = config!(dev_window);
        read_into(&mut s.dev, dev + u64::from(base), config!(dev_window_len))?;
        (
            field::<u64, _>(&s.dev, config!(dev_nd_net), base),
            field::<u32, _>(&s.dev, config!(dev_ifindex), base),
        )
    } else {
        (
            read::<u64>(dev, config!(dev_nd_net))?,
            read::<u32>(dev, config!(dev_ifindex))?,
        )
    };
    let skb = &s.skb;
    Some(SkbView {
        net,
        ifindex,
        len: field(skb, config!(skb_len), window),
        head: field(skb, config!(skb_head), window),
        tail: field(skb, config!(skb_tail), window),
        mac_header: field(skb, config!(skb_mac_header), window),
        network_header: field(skb, config!(skb_network_header), window),
        protocol: field(skb, config!(skb_protocol), window),
    })
}

/// A field of a BTF-typed kernel object: a plain load the verifier checks against the
/// kernel's BTF and the JIT guards, so a bad address reads 0 instead of faulting.
#[inline(always)]
fn btf_field<T: Copy>(base: u64, off: u32) -> T {
    // SAFETY: only in BTF tracepoint programs, where `base` is a BTF-typed pointer (or a field
    // loaded through one) and `off` a member's offset from BTF: the kernel turns the load
    // into a guarded one.
    unsafe { core::ptr::read_volatile((base + u64::from(off)) as *const T) }
}

/// The view by direct loads, for BTF tracepoints, whose `skb` the verifier knows the type of:
/// no helper call.
#[inline(always)]
pub fn view_direct(skb: u64) -> Option<SkbView> {
    let dev: u64 = btf_field(skb, config!(skb_dev));
    // Pointers loaded from the `sk_buff` may be null, and newer verifiers want them checked
    // before any offset is added, even though the load would read 0.
    let (net, ifindex) = if dev == 0 {
        let sk: u64 = btf_field(skb, config!(skb_sk));
        if sk == 0 {
            return None;
        }
        (btf_field(sk, config!(sk_net)), 0)
    } else {
        (
            btf_field(dev, config!(dev_nd_net)),
            btf_field(dev, config!(dev_ifindex)),
        )
    };
    Some(SkbView {
        net,
        ifindex,
        len: btf_field(skb, config!(skb_len)),
        head: btf_field(skb, config!(skb_head)),
        tail: btf_field(skb, config!(skb_tail)),
        mac_header: btf_field(skb, config!(skb_mac_header)),
        network_header: btf_field(skb, config!(skb_network_header)),
        protocol: btf_field(skb, config!(skb_protocol)),
    })
}
