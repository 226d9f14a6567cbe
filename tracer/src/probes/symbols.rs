//! Kernel symbols, to name the function that dropped a packet (`nft_do_chain+0x1c8`).

use std::collections::BTreeMap;

pub struct KernelSymbols {
    by_addr: BTreeMap<u64, String>,
}

impl KernelSymbols {
    /// Reads /proc/kallsyms; `None` when the kernel hides addresses (kptr_restrict) or the
    /// file cannot be read.
    pub fn load() -> Option<Self> {
        let by_addr = aya::util::kernel_symbols().ok()?;
        // With addresses hidden every symbol reads as 0.
        if by_addr.len() < 2 {
            return None;
        }
        Some(KernelSymbols { by_addr })
    }

    /// `function+0xoffset` for an address inside the kernel.
    pub fn resolve(&self, addr: u64) -> Option<String> {
        let (name, off) = self.place(addr)?;
        Some(format!("{name}+{off:#x}"))
    }

    /// The function an address is in.
    pub fn function(&self, addr: u64) -> Option<&str> {
        self.place(addr).map(|(name, _)| name)
    }

    fn place(&self, addr: u64) -> Option<(&str, u64)> {
        let (start, name) = self.by_addr.range(..=addr).next_back()?;
        let off = addr - start;
        // Farther than any function is long: not a kernel text address we know.
        (off < 1 << 20).then_some((name.as_str(), off))
    }
}
