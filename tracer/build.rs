//! Builds the kernel programs (`tracer-ebpf`) and leaves the object where `probes` embeds it,
//! so building `tracer` can never ship a stale or missing eBPF object.
//!
//! The programs are compiled by Debian's `rustc-web` (`/usr/bin/rustc`), which ships a
//! precompiled `core` for `bpfel-unknown-none`, and linked by `bpf-linker` built against the
//! same LLVM. `cargo xtask setup` installs both.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const TARGET: &str = "bpfel-unknown-none";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap();
    for dir in ["tracer-ebpf", "tracer-common"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    // The BPF target's code generation flags live in .cargo/config.toml.
    for file in ["Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    println!("cargo:rerun-if-env-changed=TRACER_BPF_RUSTC");

    let rustc = env::var_os("TRACER_BPF_RUSTC")
        .map_or_else(|| PathBuf::from("/usr/bin/rustc"), PathBuf::from);
    if !rustc.exists() {
        fail(&format!(
            "{} not found: the eBPF programs are built with Debian's rustc-web and its BPF core",
            rustc.display()
        ));
    }
    let Some(linker) = find_bpf_linker() else {
        fail("bpf-linker not found in PATH or ~/.cargo/bin");
    };

    // A target directory of its own: the outer cargo holds the lock on target/<profile>.
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("bpf");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The outer build's environment (clippy's RUSTC_WORKSPACE_WRAPPER, RUSTFLAGS for the
    // host, the jobserver, CARGO_* of this package) must not leak into the BPF build.
    cmd.env_clear();
    for keep in ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "TMPDIR"] {
        if let Some(v) = env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("RUSTC", &rustc)
        // aya-ebpf uses #![feature]; Debian's rustc is a stable compiler.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &linker)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            "tracer-ebpf",
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    let status = cmd
        .status()
        .unwrap_or_else(|e| fail(&format!("could not run cargo for the eBPF build: {e}")));
    if !status.success() {
        fail("building tracer-ebpf failed (its errors are above)");
    }
    let objects = target_dir.join(TARGET).join("release");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let object = objects.join("tracer-ebpf");
    std::fs::copy(&object, out_dir.join("tracer-ebpf.o"))
        .unwrap_or_else(|e| fail(&format!("copying {}: {e}", object.display())));
    // The empty programs the benchmark measures tracer's against: built in the same run, and
    // named to the crates that depend on this one (`links` metadata, DEP_TRACER_EBPF_FLOOR).
    println!("cargo:floor={}", objects.join("tracer-floor").display());
}

fn find_bpf_linker() -> Option<PathBuf> {
    let in_path = env::var_os("PATH")
        .map(|p| {
            env::split_paths(&p)
                .map(|d| d.join("bpf-linker"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    in_path
        .into_iter()
        .chain(cargo_home.map(|h| h.join("bin").join("bpf-linker")))
        .find(|p| p.is_file())
}

fn fail(what: &str) -> ! {
    eprintln!("error: {what}\nhint: run `cargo xtask setup` to install the eBPF toolchain");
    std::process::exit(1);
}
