//! Installing what the build and the tests need, on Debian 12: the eBPF toolchain (Debian's
//! rustc-web with its precompiled BPF `core`, LLVM 22, bpf-linker built against it) and the real
//! components the tests and the lab run (firewalld, nftables, BIRD, iperf3, Prometheus...), and
//! the kernel matrix's QEMU, virtme-ng and kernels ([`crate::vm::setup`]), and a venv of tools
//! from PyPI (the Kubernetes schema validator, zig for the glibc 2.28 release build).
//! Quick when everything is present; never starts a service on the host.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::sh;

/// Debian packages, with what needs them.
const PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "compiles the eBPF programs (ships a BPF core)"),
    (
        "libstd-rust-web-dev-bpf",
        "precompiled core for bpfel-unknown-none",
    ),
    ("llvm-22-dev", "bpf-linker links with LLVM 22"),
    ("libpolly-22-dev", "bpf-linker links with LLVM 22"),
    ("libzstd-dev", "bpf-linker links with LLVM 22"),
    ("iproute2", "network namespaces, veth, VXLAN"),
    ("nftables", "firewall rules in tests"),
    ("iptables", "iptables legacy and nft modes"),
    ("ipset", "ipsets that iptables rules match in tests"),
    ("firewalld", "real firewalld in the lab"),
    ("dbus", "private D-Bus for firewalld in the lab"),
    ("bird2", "BGP in the lab"),
    ("iperf3", "throughput benchmark"),
    ("iputils-ping", "lab connectivity checks"),
    ("tcpdump", "the benchmark's peer"),
    (
        "bpftrace",
        "the benchmark's peer on kfree_skb (drop observers, section 4b)",
    ),
    ("tshark", "reads the pcapng the tracer writes"),
    ("bpftool", "checks what is attached"),
    ("prometheus", "scrapes the metrics endpoint in tests"),
    ("ethtool", "interface offload settings in the lab"),
    ("procps", "sysctl"),
    ("qemu-system-x86", "boots the kernel matrix's guests"),
    (
        "kmod",
        "depmod for the matrix's kernels, modprobe in their guests",
    ),
    ("busybox-static", "virtme-ng's initramfs"),
    ("python3-venv", "virtme-ng's venv"),
    ("file", "virtme-ng reads a kernel image's release with it"),
    (
        "tmux",
        "a real terminal for the tests of watch's full-screen view",
    ),
    ("man-db", "renders the man page tracer man writes, in tests"),
    (
        "golang-go",
        "builds tests/cni-pod, which sets pods up through go-cni as containerd does",
    ),
    (
        "golang-github-containerd-go-cni-dev",
        "go-cni and libcni sources for tests/cni-pod (offline GOPATH build)",
    ),
    (
        "containernetworking-plugins",
        "the bridge, host-local and loopback CNI plugins tests/cni-pod runs",
    ),
];

const BPF_LINKER_VERSION: &str = "0.13.0";

/// A venv of tools from PyPI, outside the repository and the target dirs.
pub const TOOLS_VENV: &str = "/var/lib/tracer-tools/venv";
/// Pinned: the Kubernetes schemas bundled with kubernetes-validate (1.25 to 1.37) check
/// deploy/kubernetes in the tests; zig and cargo-zigbuild link the release binary against
/// glibc 2.28 (RHEL 8), `cargo xtask release`.
const TOOLS: &[&str] = &[
    "kubernetes-validate==1.37.0",
    "ziglang==0.17.0",
    "cargo-zigbuild==0.24.0",
];

pub fn run() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    ensure_bpf_linker()?;
    ensure_tools_venv()?;
    crate::vm::setup()?;
    eprintln!("xtask: setup complete");
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("xtask: installing {}", packages.join(" "));
    // Package scripts must not start firewalld, BIRD or Prometheus on this host: a
    // policy-rc.d that refuses every start stays in place for the install.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(
            policy,
            "#!/bin/sh\n# written by cargo xtask setup for the duration of an install\nexit 101\n",
        )
        .context("writing /usr/sbin/policy-rc.d (setup needs root)")?;
        set_executable(policy)?;
    }
    let result = (|| {
        sh(Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        sh(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    })();
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    result
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn ensure_tools_venv() -> Result<()> {
    let venv = Path::new(TOOLS_VENV);
    let stamp = venv.join(".tracer-tools");
    let wanted = TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    eprintln!("xtask: installing {} into {TOOLS_VENV}", TOOLS.join(" "));
    sh(Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--clear"])
        .arg(venv))?;
    sh(Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(TOOLS))?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

fn cargo_bin() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    home.join("bin")
}

fn ensure_bpf_linker() -> Result<()> {
    let linker = cargo_bin().join("bpf-linker");
    let version = Command::new(&linker)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if version
        .as_deref()
        .is_some_and(|v| v.contains(BPF_LINKER_VERSION))
    {
        return Ok(());
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)");
    // Without LLVM_PREFIX its build script looks for LLVM in /usr and fails to link.
    sh(crate::cargo()
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--no-default-features",
            "--features",
            "llvm-22",
        ])
        .env("LLVM_PREFIX", "/usr/lib/llvm-22"))?;
    if !linker.exists() {
        bail!(
            "bpf-linker was installed but {} does not exist",
            linker.display()
        );
    }
    Ok(())
}
