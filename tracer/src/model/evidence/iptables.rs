//! iptables listings as people paste them, made ready for `iptables-nft-restore`:
//! `iptables-save` (any variant) as it is, `iptables -S` with its table guessed from its
//! built-in chains, `iptables -L` translated back ([`super::listl`]). Each line keeps the line
//! of the paste it came from. A line that is not one, an address that is a host name (it would
//! be resolved on the analysing machine, never the node) or a table cut off before its
//! `COMMIT` is named with its file and line, and the rest goes on.

use super::scratch::Line;
use crate::model::{
    nft::{Family, Hook, bounded},
    view::RuleGap,
};

/// A listing in `iptables-save` form, with what was left out of it.
#[derive(Debug, Default)]
pub struct Restore {
    pub lines: Vec<Line>,
    pub problems: Vec<String>,
    pub gaps: Vec<RuleGap>,
    /// What the form leaves out or assumes, for the report.
    pub notes: Vec<String>,
}

/// The hook of an iptables built-in chain.
pub fn builtin_hook(chain: &str) -> Option<Hook> {
    Some(match chain {
        "INPUT" => Hook::Input,
        "FORWARD" => Hook::Forward,
        "OUTPUT" => Hook::Output,
        "PREROUTING" => Hook::Prerouting,
        "POSTROUTING" => Hook::Postrouting,
        _ => return None,
    })
}

impl Restore {
    /// A rule of `chain` in `table` that is not loaded: a gap the verdicts may have met.
    pub fn gap(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        place: String,
        why: String,
        settle: &str,
    ) {
        self.gaps.push(RuleGap {
            family,
            table: table.to_string(),
            chain: chain.to_string(),
            base_hook: builtin_hook(chain),
            place,
            why,
            settle: settle.to_string(),
        });
    }
}

/// An address argument iptables would resolve by name: not an address, a prefix or a netmask.
fn is_hostname(value: &str) -> bool {
    value.split(',').any(|v| {
        let addr = v.split('/').next().unwrap_or(v);
        addr.parse::<std::net::IpAddr>().is_err()
    })
}

/// The command that lists a family's rules whole.
pub fn save_command(family: Family) -> &'static str {
    if family == Family::Ip6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    }
}

/// Checks `iptables-save` lines (`(text, line)`), as read or as converted from another form.
pub fn checked(file: &str, family: Family, lines: Vec<(String, usize)>) -> Restore {
    let mut out = Restore::default();
    let mut table: Option<(String, usize)> = None;
    let mut last = 0;
    for (text, at) in lines {
        let line = text.trim();
        last = at;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = format!("{file}:{at}");
        if let Some(name) = line.strip_prefix('*') {
            if let Some((open, from)) = table.take() {
                out.problems.push(bounded(format!(
                    "{place}: table {name} starts before table {open} (line {from}) has its COMMIT; the rules of {open} up to here are used"
                )));
                out.lines.push(Line {
                    text: "COMMIT".into(),
                    at: None,
                });
            }
            table = Some((name.trim().to_string(), at));
            out.lines.push(Line {
                text: line.into(),
                at: Some(at),
            });
            continue;
        }
        let Some((tname, _)) = &table else {
            out.problems.push(format!(
                "{place}: outside any table (no *TABLE line before it): {}",
                bounded(line.to_string())
            ));
            continue;
        };
        let tname = tname.clone();
        if line == "COMMIT" {
            table = None;
            out.lines.push(Line {
                text: line.into(),
                at: Some(at),
            });
        } else if line.starts_with(':') {
            out.lines.push(Line {
                text: line.into(),
                at: Some(at),
            });
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let chain = words.first().copied().unwrap_or("");
            let host = words.windows(2).find_map(|w| match w {
                [flag @ ("-s" | "-d" | "--source" | "--destination"), value]
                    if is_hostname(value) =>
                {
                    Some((*flag, *value))
                }
                _ => None,
            });
            if let Some((flag, value)) = host {
                let why = bounded(format!(
                    "{flag} {value} is a host name: not resolved away from the node"
                ));
                out.problems
                    .push(format!("{place}: {why}; the rule is left out"));
                out.gap(family, &tname, chain, place, why, save_command(family));
                continue;
            }
            out.lines.push(Line {
                text: line.into(),
                at: Some(at),
            });
        } else {
            out.problems.push(format!(
                "{place}: not an iptables-save line: {}",
                bounded(line.to_string())
            ));
        }
    }
    if let Some((open, from)) = table {
        out.problems.push(bounded(format!(
            "{file}:{last}: the listing ends inside table {open} (line {from}) without its COMMIT: truncated? Its rules up to here are used"
        )));
        out.lines.push(Line {
            text: "COMMIT".into(),
            at: None,
        });
    }
    out
}

/// [`checked`] for a listing converted from another form, whose `*TABLE` line (at line 0)
/// and closing `COMMIT` (at `last`) are the reader's own, not the paste's.
pub fn checked_own(
    file: &str,
    family: Family,
    lines: Vec<(String, usize)>,
    last: usize,
) -> Restore {
    let mut out = checked(file, family, lines);
    for l in &mut out.lines {
        if l.at == Some(0) || (l.text == "COMMIT" && l.at == Some(last)) {
            l.at = None;
        }
    }
    out
}

/// `iptables-save` output (any variant).
pub fn from_save(file: &str, family: Family, text: &str) -> Restore {
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (l.to_string(), i + 1))
        .collect();
    checked(file, family, lines)
}

/// The table an `iptables -S` listing is of, from its built-in chains (it prints one table,
/// `filter` unless `-t` said otherwise).
fn table_of_s(text: &str) -> &'static str {
    let has = |c: &str| {
        text.lines()
            .any(|l| l.trim() == format!("-P {c} ACCEPT") || l.trim() == format!("-P {c} DROP"))
    };
    match (
        has("FORWARD"),
        has("PREROUTING"),
        has("POSTROUTING"),
        has("INPUT"),
    ) {
        (true, true, _, _) => "mangle",
        (true, false, _, _) => "filter",
        (false, _, true, _) => "nat",
        (false, true, false, _) => "raw",
        _ => "filter",
    }
}

/// `iptables -S` output: its `-P` lines become chain declarations with their policy, `-N`
/// lines chains, `-A` lines stay.
pub fn from_s(file: &str, family: Family, text: &str) -> Restore {
    let table = table_of_s(text);
    let mut lines = vec![(format!("*{table}"), 0)];
    let mut rules = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            ["-P", chain, policy] => lines.push((format!(":{chain} {policy} [0:0]"), i + 1)),
            ["-N", chain] => lines.push((format!(":{chain} - [0:0]"), i + 1)),
            ["-A", ..] => rules.push((l.to_string(), i + 1)),
            [] => {}
            _ if l.starts_with('#') => {}
            _ => bad.push(format!(
                "{file}:{}: not an iptables -S line: {}",
                i + 1,
                bounded(l.to_string())
            )),
        }
    }
    let last = text.lines().count();
    lines.extend(rules);
    lines.push(("COMMIT".into(), last));
    let mut out = checked_own(file, family, lines, last);
    out.problems.splice(0..0, bad);
    out.notes.push(format!(
        "read as table {table} (iptables -S prints one table; told by its built-in chains)"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_listings_are_checked_line_by_line() {
        let text = "# Generated by iptables-nft-save v1.8.9 (nf_tables)\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A INPUT -s node1.example.com -j ACCEPT\nthis is not a rule\n-A INPUT -p udp --dport 4789 -j ACCEPT\n";
        let r = from_save("paste.txt", Family::Ip, text);
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "*filter",
                ":INPUT ACCEPT [0:0]",
                ":FORWARD DROP [0:0]",
                "-A INPUT -p udp --dport 4789 -j ACCEPT",
                "COMMIT"
            ]
        );
        assert!(
            r.problems[0].starts_with("paste.txt:5: -s node1.example.com is a host name"),
            "{:?}",
            r.problems
        );
        assert!(
            r.problems[1].starts_with("paste.txt:6: not an iptables-save line"),
            "{:?}",
            r.problems
        );
        assert!(
            r.problems[2].starts_with("paste.txt:7: the listing ends inside table filter"),
            "{:?}",
            r.problems
        );
        assert_eq!(r.gaps.len(), 1);
        assert_eq!(r.gaps[0].base_hook, Some(Hook::Input));
    }

    #[test]
    fn dash_s_becomes_a_save_listing() {
        let r = from_s(
            "s.txt",
            Family::Ip,
            "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N KUBE-ROUTER-INPUT\n-A INPUT -j KUBE-ROUTER-INPUT\n",
        );
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "*filter",
                ":INPUT ACCEPT [0:0]",
                ":FORWARD DROP [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                ":KUBE-ROUTER-INPUT - [0:0]",
                "-A INPUT -j KUBE-ROUTER-INPUT",
                "COMMIT"
            ]
        );
        assert_eq!(r.lines[5].at, Some(5));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }
}
