//! Pasted rulesets read by the real tools: a scratch network namespace of the analysing
//! machine's own, empty, where `nft -f` loads `nft list ruleset` text and
//! `iptables-nft-restore` loads iptables listings, and from which `nft -j list ruleset` and
//! `iptables-nft-save` read them back in the forms the model reads. A line the tools refuse
//! is named with its file and line and left out, and the rest is loaded again, so a
//! malformed or truncated paste still gives what it holds. The namespace is removed when the
//! scratch is dropped; nothing outside it is touched.

use std::{io::Write as _, process::Stdio};

use crate::model::nft::{Family, bounded};

/// Prefix of the scratch namespaces (`tracer_netns::remove_stale` clears those of killed runs).
const PREFIX: &str = "tracer-ev-";
/// Lines left out, one by one, before a listing is given up.
const MAX_RETRIES: usize = 200;

/// A line of a listing to load, with where it came from (`None`: added by the reader).
#[derive(Clone, Debug)]
pub struct Line {
    pub text: String,
    pub at: Option<usize>,
}

/// A scratch network namespace.
pub struct Scratch {
    ns: tracer_netns::NetNs,
}

/// What loading one listing gave.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `FILE:LINE: message` for each line refused.
    pub problems: Vec<String>,
    /// The lines left out, with their original line numbers.
    pub dropped: Vec<Line>,
}

impl Scratch {
    /// Creates the namespace; needs root (CAP_SYS_ADMIN).
    pub fn new() -> Result<Scratch, String> {
        tracer_netns::remove_stale(PREFIX);
        tracer_netns::NetNs::create(PREFIX, "evidence")
            .map(|ns| Scratch { ns })
            .map_err(|e| {
                format!(
                    "reading pasted rules needs a scratch network namespace, which needs root: {e}"
                )
            })
    }

    /// Runs `argv` in the namespace with `input` on stdin: Ok, or its stderr.
    fn feed(&self, argv: &[&str], input: &str) -> Result<(), String> {
        let mut child = self
            .ns
            .command(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {}: {e}", argv[0]))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A tool that stops reading early says why on stderr.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("running {}: {e}", argv[0]))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Runs `argv` in the namespace: its stdout.
    fn read(&self, argv: &[&str]) -> Result<String, String> {
        let out = self
            .ns
            .command(argv)
            .output()
            .map_err(|e| format!("running {}: {e}", argv[0]))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Loads `lines` with `argv` (a tool reading stdin), leaving out each line it refuses (as
    /// its error names it, by `line_of`) until it takes the rest. `file` names the evidence.
    fn load(
        &self,
        argv: &[&str],
        file: &str,
        mut lines: Vec<Line>,
        line_of: fn(&str) -> Option<usize>,
    ) -> Loaded {
        let mut loaded = Loaded::default();
        for _ in 0..MAX_RETRIES {
            let text = text_of(&lines);
            let Err(err) = self.feed(argv, &text) else {
                return loaded;
            };
            let message = err
                .lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with("Try `"))
                .unwrap_or("refused")
                .to_string();
            let Some(n) = line_of(&err).filter(|n| *n >= 1 && *n <= lines.len()) else {
                loaded.problems.push(format!(
                    "{file}: {} refused it: {} (nothing of it used)",
                    argv[0],
                    bounded(message)
                ));
                return loaded;
            };
            let bad = lines.remove(n - 1);
            let place = bad
                .at
                .map_or_else(|| format!("{file} (end)"), |at| format!("{file}:{at}"));
            loaded.problems.push(format!(
                "{place}: {}: {} (left out, the rest is used)",
                argv[0],
                bounded(message.trim().to_string())
            ));
            loaded.dropped.push(bad);
        }
        loaded.problems.push(format!(
            "{file}: more than {MAX_RETRIES} lines refused; the rest is not used"
        ));
        loaded
    }

    /// Loads `nft list ruleset` text, table by table.
    pub fn nft_text(&self, file: &str, blocks: Vec<Vec<Line>>) -> Loaded {
        let mut all = Loaded::default();
        for block in blocks {
            let l = self.load(&["nft", "-f", "-"], file, block, nft_error_line);
            all.problems.extend(l.problems);
            all.dropped.extend(l.dropped);
        }
        all
    }

    /// Loads an `nft -j list ruleset` document.
    pub fn nft_json(&self, file: &str, text: &str) -> Result<(), String> {
        self.feed(&["nft", "-j", "-f", "-"], text)
            .map_err(|e| format!("{file}: nft refused it: {}", bounded(e)))
    }

    /// Loads an iptables listing in `iptables-save` form.
    pub fn iptables(&self, family: Family, file: &str, lines: Vec<Line>) -> Loaded {
        let tool = if family == Family::Ip6 {
            "ip6tables-nft-restore"
        } else {
            "iptables-nft-restore"
        };
        self.load(&[tool, "--noflush"], file, lines, restore_error_line)
    }

    /// Creates ipsets: an `ipset save` listing (`restore` form).
    pub fn ipsets(&self, file: &str, text: &str) -> Result<(), String> {
        self.feed(&["ipset", "restore", "-exist"], text)
            .map_err(|e| format!("{file}: ipset refused it: {}", bounded(e)))
    }

    /// What was loaded: `nft -j list ruleset`, and `iptables-nft-save` of each family.
    pub fn listings(&self) -> (Result<String, String>, Option<String>, Option<String>) {
        (
            self.read(&["nft", "-j", "list", "ruleset"]),
            self.read(&["iptables-nft-save"]).ok(),
            self.read(&["ip6tables-nft-save"]).ok(),
        )
    }
}

/// The lines as one text, each ending in a newline.
pub fn text_of(lines: &[Line]) -> String {
    lines.iter().fold(String::new(), |mut t, l| {
        t.push_str(&l.text);
        t.push('\n');
        t
    })
}

/// The line `nft` names in `/dev/stdin:LINE:COL-COL: Error: ...`.
fn nft_error_line(err: &str) -> Option<usize> {
    err.lines()
        .find_map(|l| l.strip_prefix("/dev/stdin:"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
}

/// The line iptables-restore names: `Error occurred at line: N`, `... at line N`, `line N
/// failed`.
fn restore_error_line(err: &str) -> Option<usize> {
    err.lines().find_map(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.trim_end_matches(':') == "line")
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.trim_end_matches(':').parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_name_their_lines() {
        assert_eq!(
            nft_error_line("/dev/stdin:4:23-23: Error: syntax error, unexpected semicolon"),
            Some(4)
        );
        assert_eq!(
            restore_error_line(
                "iptables-nft-restore v1.8.9 (nf_tables): Chain 'X' does not exist\nError occurred at line: 4\nTry `iptables-nft-restore -h'"
            ),
            Some(4)
        );
        assert_eq!(
            restore_error_line("iptables-nft-restore: COMMIT expected at line 4"),
            Some(4)
        );
    }
}
