//! What `--iface` asks for: interface names (`eth0`, `flannel.1`) and shell-style globs
//! (`veth*`, `cali*`, `tap?`, `eth[01]`), matched against names as interfaces appear.

/// The `--iface` values, as given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patterns(Vec<String>);

impl Patterns {
    pub fn new(values: &[String]) -> Self {
        Patterns(values.to_vec())
    }

    /// No `--iface`: every interface that is up at the start.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Some value is a glob, which may match interfaces that do not exist yet.
    pub fn has_glob(&self) -> bool {
        self.0.iter().any(|p| is_glob(p))
    }

    /// The plain names, each of which must exist at the start.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter(|p| !is_glob(p)).map(String::as_str)
    }

    /// Whether an interface called `name` is to be watched.
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Shell-style matching of a whole name: `*` any run, `?` one character, `[abc]`, `[a-z]`
/// and `[!a]` one of a set. An unclosed `[` is a literal.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was and what it has taken so far, to take one more on a mismatch.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => match set(&p[pi..], s[si]) {
                Some((hit, len)) => hit.then_some(pi + len),
                None => (s[si] == b'[').then_some(pi + 1),
            },
            Some(c) => (*c == s[si]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                si += 1;
            }
            (None, Some((sp, ss))) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Whether `c` is in the set `p` starts with (`[...]`), and the set's length; `None` when
/// the set is not closed.
fn set(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|hi| *hi != b']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        glob(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(m("veth*", "veth0"));
        assert!(m("veth*", "veth"));
        assert!(!m("veth*", "xveth0"));
        assert!(m("cali*", "cali1a2b3c"));
        assert!(m("*", "eth0"));
        assert!(m("e*0", "eth0"));
        assert!(!m("e*0", "eth01"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(m("tap?", "tap1"));
        assert!(!m("tap?", "tap12"));
        assert!(m("eth[01]", "eth1"));
        assert!(!m("eth[01]", "eth2"));
        assert!(m("eth[0-3]", "eth2"));
        assert!(m("eth[!0]", "eth1"));
        assert!(!m("eth[!0]", "eth0"));
        assert!(m("a[", "a["));
        assert!(m("flannel.1", "flannel.1"));
        assert!(!m("flannel.1", "flannel.10"));
    }

    #[test]
    fn names_and_globs() {
        let p = Patterns::new(&["eth0".into(), "veth*".into()]);
        assert!(p.has_glob());
        assert_eq!(p.names().collect::<Vec<_>>(), ["eth0"]);
        assert!(p.matches("eth0") && p.matches("veth9") && !p.matches("eth1"));
        assert!(!Patterns::new(&["eth0".into()]).has_glob());
    }
}
