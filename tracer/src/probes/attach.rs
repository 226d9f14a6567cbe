//! Where each interface's ingress program goes. On virtual devices (veth, bridges, VXLAN) tc
//! is the cheap hook: native XDP on veth forces GSO packets to be segmented and cost about
//! 70% of the throughput in our measurements (`cargo xtask bench`); generic XDP and tc
//! cost a few percent at most, but generic XDP sees GSO super-packets and so counts them as
//! one packet each. On physical NICs with driver support, native XDP runs before the stack
//! allocates anything. Egress is always tc: XDP has no egress hook.

use std::fmt;

/// What the user asked for with `--attach`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// tc on virtual devices, native XDP on physical NICs that support it (tc otherwise).
    Auto,
    /// tc (TCX) on ingress and egress everywhere.
    Tc,
    /// Native (driver) XDP on ingress; fails on devices without driver support.
    Xdp,
    /// Generic (SKB-mode) XDP on ingress: works everywhere, but counts a GSO super-packet as
    /// one packet (bytes stay exact).
    XdpGeneric,
}

/// The ingress hook an interface ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Tc,
    XdpNative,
    XdpGeneric,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Tc => "tc",
            Hook::XdpNative => "xdp",
            Hook::XdpGeneric => "xdp-generic",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hooks to try for an interface's ingress, best first.
pub fn ingress_plan(mode: AttachMode, is_virtual: bool) -> &'static [Hook] {
    match mode {
        AttachMode::Tc => &[Hook::Tc],
        AttachMode::Xdp => &[Hook::XdpNative],
        AttachMode::XdpGeneric => &[Hook::XdpGeneric],
        AttachMode::Auto if is_virtual => &[Hook::Tc],
        AttachMode::Auto => &[Hook::XdpNative, Hook::Tc],
    }
}

/// A sentence for an attach failure, from the errno the kernel gave.
pub fn explain(hook: Hook, errno: Option<i32>) -> Option<&'static str> {
    match (hook, errno?) {
        (Hook::XdpNative, libc::EOPNOTSUPP | libc::EINVAL) => {
            Some("the driver has no native XDP support; use --attach tc or --attach xdp-generic")
        }
        (Hook::XdpNative | Hook::XdpGeneric, libc::EBUSY | libc::EEXIST) => Some(
            "another XDP program is already attached to this interface (tracer never replaces one); use --attach tc",
        ),
        (_, libc::EPERM) => Some("not permitted: run as root or with CAP_BPF and CAP_NET_ADMIN"),
        (_, libc::ENODEV | libc::ENXIO) => Some("the interface disappeared"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_tc_on_virtual_devices_and_xdp_on_nics() {
        assert_eq!(ingress_plan(AttachMode::Auto, true), &[Hook::Tc]);
        assert_eq!(
            ingress_plan(AttachMode::Auto, false),
            &[Hook::XdpNative, Hook::Tc]
        );
        assert_eq!(ingress_plan(AttachMode::Xdp, true), &[Hook::XdpNative]);
    }
}
