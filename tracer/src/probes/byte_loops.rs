//! A guard on the kernel programs' object: no program calls `memset`, `memcpy`, `memmove`,
//! `memcmp` or `bcmp`. LLVM's BPF backend emits those as calls to loops over single bytes, and
//! one such call (zeroing the drop probe's 96-byte flow key) once cost the probe more
//! instructions than all the rest of its work. Zero, copy and compare a word at a time
//! instead (`tracer-ebpf/src/words.rs`).

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

const BYTE_LOOPS: [&str; 5] = ["memset", "memcpy", "memmove", "memcmp", "bcmp"];

#[test]
fn no_kernel_program_calls_a_byte_at_a_time_builtin() {
    let file = object::File::parse(super::OBJECT).expect("the embedded eBPF object is ELF");
    let mut calls = Vec::new();
    for section in file.sections() {
        let name = section.name().unwrap_or_default().to_string();
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(index) = reloc.target() else {
                continue;
            };
            let Ok(symbol) = file.symbol_by_index(index) else {
                continue;
            };
            let target = symbol.name().unwrap_or_default();
            if BYTE_LOOPS.contains(&target) {
                calls.push(format!("{name}+{offset:#x} calls {target}"));
            }
        }
    }
    assert!(calls.is_empty(), "{calls:#?}");
}
