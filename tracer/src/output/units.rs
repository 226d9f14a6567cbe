//! Human-readable numbers: SI prefixes, as network tools print rates and sizes.

/// `1.5 k`, `12.0 M`... for a value and a unit.
pub fn si(value: f64, unit: &str) -> String {
    const PREFIXES: [&str; 5] = ["", "k", "M", "G", "T"];
    let mut v = value;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < PREFIXES.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {}{unit}", PREFIXES[i])
    }
}

#[cfg(test)]
mod tests {
    use super::si;

    #[test]
    fn prefixes() {
        assert_eq!(si(999.0, "B"), "999 B");
        assert_eq!(si(1500.0, "B"), "1.5 kB");
        assert_eq!(si(12_000_000.0, "bit/s"), "12.0 Mbit/s");
    }
}
