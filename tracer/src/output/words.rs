//! Counts and articles as a sentence says them: "1 error", "2 errors", "an agent node". Every
//! output that puts a number or a name into prose goes through here.

/// `1 input`, `2 inputs`, `0 inputs`.
pub fn plural(n: usize, what: &str) -> String {
    count(n as u64, what, &format!("{what}s"))
}

/// `n` and the word for that many: `1 flow`, `3 flows`; for words whose plural is not `s`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `a` or `an` before `word`, by its first letter: `an agent`, `a worker`, `an error`.
pub fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_lowercase()) {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_articles_read_as_english() {
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(0, "error"), "0 errors");
        assert_eq!(plural(2, "warning"), "2 warnings");
        assert_eq!(count(1, "class", "classes"), "1 class");
        assert_eq!(count(3, "class", "classes"), "3 classes");
        assert_eq!(format!("{} agent node", article("agent")), "an agent node");
        assert_eq!(
            format!("{} worker node", article("worker")),
            "a worker node"
        );
        assert_eq!(article("Error"), "an");
    }
}
