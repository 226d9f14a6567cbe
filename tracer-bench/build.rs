//! Puts the empty eBPF programs the benchmark measures against (`tracer-floor`, built with
//! tracer's own programs by `tracer`'s build script) where `cost` embeds them. The `tracer`
//! package announces the object's path through its `links` metadata.

use std::{env, path::PathBuf};

fn main() {
    let floor = env::var_os("DEP_TRACER_EBPF_FLOOR")
        .map(PathBuf::from)
        .expect(
            "the tracer package's build script names the floor object (links = \"tracer_ebpf\")",
        );
    println!("cargo:rerun-if-changed={}", floor.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("tracer-floor.o");
    std::fs::copy(&floor, &out).unwrap_or_else(|e| panic!("copying {}: {e}", floor.display()));
}
