//! `tracer diagnose --output json` read back through the schema: the lines, and each kind of
//! line among them.

use tracer::schema::{DiagnoseLine, DiagnoseSummary, EvidenceReport, Finding, Unknown};

use super::lab::text;

/// The JSON lines a `--output json` run printed; panics naming a line that is not one of
/// diagnose's lines.
pub fn json_lines(stdout: &[u8]) -> Vec<DiagnoseLine> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The finding lines among `lines`.
pub fn findings(lines: &[DiagnoseLine]) -> Vec<Finding> {
    lines
        .iter()
        .filter_map(|l| match l {
            DiagnoseLine::Finding(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// The messages of the problem lines.
pub fn problems(lines: &[DiagnoseLine]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| match l {
            DiagnoseLine::Problem(p) => Some(p.message.clone()),
            _ => None,
        })
        .collect()
}

/// The unknown lines.
pub fn unknowns(lines: &[DiagnoseLine]) -> Vec<Unknown> {
    lines
        .iter()
        .filter_map(|l| match l {
            DiagnoseLine::Unknown(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

/// The evidence lines.
pub fn reports(lines: &[DiagnoseLine]) -> Vec<EvidenceReport> {
    lines
        .iter()
        .filter_map(|l| match l {
            DiagnoseLine::Evidence(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The last line, the summary.
pub fn summary(lines: &[DiagnoseLine]) -> DiagnoseSummary {
    match lines.last() {
        Some(DiagnoseLine::Summary(s)) => s.clone(),
        last => panic!("the last line is no summary: {last:?}"),
    }
}
