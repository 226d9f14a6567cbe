//! Checks made before touching the kernel, so a missing privilege or kernel feature is one
//! sentence that says what to do instead of an EPERM from deep inside a map creation.

use std::path::Path;

use super::btf::VMLINUX;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "tracer needs root, or the capabilities CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (missing: {missing}); run it with sudo"
    )]
    Privileges { missing: String },
    #[error(
        "this kernel has no BTF type information ({VMLINUX} is missing); it needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error("this kernel has no BPF support (the bpf() system call is not available)")]
    NoBpf,
}

/// The effective capability set of this process.
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Fails unless the process may load and attach BPF programs.
pub fn privileges() -> Result<(), PreflightError> {
    let caps = effective_caps();
    let has = |cap: u32| caps & (1 << cap) != 0;
    let mut missing = Vec::new();
    // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON on kernels before 5.8.
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_PERFMON");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::Privileges {
            missing: missing.join(", "),
        })
    }
}

/// Fails when the kernel exposes no BTF.
pub fn btf() -> Result<(), PreflightError> {
    if Path::new(VMLINUX).exists() {
        Ok(())
    } else {
        Err(PreflightError::NoBtf)
    }
}

/// Fails when the bpf() system call does not exist.
pub fn bpf_syscall() -> Result<(), PreflightError> {
    if crate::sys::bpf::syscall_exists() {
        Ok(())
    } else {
        Err(PreflightError::NoBpf)
    }
}
