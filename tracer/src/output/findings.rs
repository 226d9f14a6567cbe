//! How a diagnosis reads: findings grouped by severity with their evidence and fix for people,
//! one JSON object per finding for scripts (a [`DiagnoseLine`] of the schema). Away from the
//! node, also what each evidence file was taken for, how sure each finding is, and what the
//! inputs left unknown with the commands that would settle it.

use std::io::Write;

use super::{
    schema::{DiagnoseLine, DiagnoseSummary, Problem},
    words::plural,
};
use crate::{
    findings::{Certainty, Diagnosis, Finding, RuleInfo, Severity},
    model::evidence::EvidenceReport,
};

/// What diagnose looked at, for the header and the summary.
pub struct Context {
    pub profile: String,
    pub profile_reason: String,
    pub roles: String,
    pub roles_reason: String,
    /// One line each: firewalld state, ruleset size...
    pub sources: Vec<String>,
    /// Files or commands that could not be read, with where.
    pub problems: Vec<String>,
    /// What each evidence file was taken for (`--evidence`).
    pub evidence: Vec<EvidenceReport>,
}

/// A rule as `family table chain #handle: text`; a chain's policy (handle 0) has no handle.
pub(super) fn rule_line(r: &RuleInfo) -> String {
    if let Some(tool) = &r.backend {
        let number = if r.handle == 0 {
            String::new()
        } else {
            format!(" rule {}", r.handle)
        };
        return format!(
            "{tool} -t {} chain {}{number}: {}",
            r.table, r.chain, r.text
        );
    }
    if let (Some(saved), Some(position)) = (&r.saved, r.position) {
        let tool = if r.family == "ip6" {
            "ip6tables-nft"
        } else {
            "iptables-nft"
        };
        return format!(
            "{tool} -t {} chain {} rule {position}: {saved} (nft handle {})",
            r.table, r.chain, r.handle
        );
    }
    let handle = if r.handle == 0 {
        String::new()
    } else {
        format!(" #{}", r.handle)
    };
    format!("{} {} {}{handle}: {}", r.family, r.table, r.chain, r.text)
}

pub fn text(
    out: &mut impl Write,
    ctx: &Context,
    d: &Diagnosis,
    all_flows: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "tracer diagnose: profile {} ({}), role {} ({})",
        ctx.profile, ctx.profile_reason, ctx.roles, ctx.roles_reason
    )?;
    for s in &ctx.sources {
        writeln!(out, "  {s}")?;
    }
    for e in &ctx.evidence {
        writeln!(out, "  evidence {}: {}", e.file, e.form)?;
        for u in &e.used {
            writeln!(out, "    used: {u}")?;
        }
        for u in &e.unused {
            writeln!(out, "    not used: {u}")?;
        }
    }
    for p in &ctx.problems {
        writeln!(out, "  could not read: {p}")?;
    }
    writeln!(out)?;
    if all_flows {
        for fl in &d.flows {
            let rule = fl
                .rule
                .as_ref()
                .map(|r| format!("  [{}]", rule_line(r)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<10} {}{rule}",
                fl.verdict.split(' ').next().unwrap_or(""),
                fl.name
            )?;
        }
        writeln!(out)?;
    }
    for f in &d.findings {
        finding(out, f)?;
    }
    let notes = d
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Info)
        .count();
    if !d.unknowns.is_empty() {
        writeln!(out, "UNKNOWN (the inputs do not settle these)")?;
        for u in &d.unknowns {
            writeln!(out, "  - {}: {}", u.what, u.why)?;
            if !u.settle.is_empty() {
                writeln!(out, "    settle: {}", u.settle.join("; "))?;
            }
        }
        writeln!(out)?;
    }
    let unread = ctx.problems.len();
    if unread > 0 || !d.unknowns.is_empty() {
        // Partial inputs never read as a healthy node.
        let mut what = Vec::new();
        if unread > 0 {
            what.push(format!(
                "{} could not be read (\"could not read\" above)",
                plural(unread, "input")
            ));
        }
        if !d.unknowns.is_empty() {
            what.push(format!(
                "{} unknown (above)",
                plural(d.unknowns.len(), "part")
            ));
        }
        writeln!(
            out,
            "Diagnosis incomplete: {}, so what depends on it is unknown. In what was read: {}, \
             {}, {} ({} checked).",
            what.join(" and "),
            plural(d.errors(), "error"),
            plural(d.warnings(), "warning"),
            plural(notes, "note"),
            plural(d.flows.len(), "flow")
        )?;
    } else if d.findings.is_empty() {
        writeln!(
            out,
            "No problem found: every flow the role needs is accepted ({} checked).",
            plural(d.flows.len(), "flow")
        )?;
    } else {
        writeln!(
            out,
            "{}, {}, {} ({} checked).",
            plural(d.errors(), "error"),
            plural(d.warnings(), "warning"),
            plural(notes, "note"),
            plural(d.flows.len(), "flow")
        )?;
    }
    Ok(())
}

/// A finding's evidence and fix as labelled lines (`why`, then [`evidence_lines`]): the same
/// in diagnose, the watch log and the view's details.
pub(super) fn finding_lines(f: &Finding) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    match f.certainty {
        Some(Certainty::Certain) => lines.push(("sure", "certain".to_string())),
        Some(Certainty::Likely) => lines.push((
            "sure",
            format!("likely; settle with: {}", f.settle.join("; ")),
        )),
        None => {}
    }
    lines.push(("why", f.explain.clone()));
    lines.extend(evidence_lines(
        f.zone.as_deref(),
        f.binding.as_deref(),
        f.element.as_deref(),
        f.rule.as_ref(),
        &f.fix,
    ));
    lines
}

/// The chain of evidence of a finding or a drop's cause as labelled lines: `zone` (and the
/// binding that chose it), `cause` (the element), `rule`, then one `fix` per command.
pub(super) fn evidence_lines(
    zone: Option<&str>,
    binding: Option<&str>,
    element: Option<&str>,
    rule: Option<&RuleInfo>,
    fix: &[String],
) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    if let Some(zone) = zone {
        let binding = binding
            .map(|b| format!(" (chosen by {b})"))
            .unwrap_or_default();
        lines.push(("zone", format!("{zone}{binding}")));
    }
    if let Some(e) = element {
        lines.push(("cause", e.to_string()));
    }
    if let Some(r) = rule {
        lines.push(("rule", rule_line(r)));
    }
    lines.extend(fix.iter().map(|cmd| ("fix", cmd.clone())));
    lines
}

/// A finding as diagnose prints it: severity and title, then its labelled lines indented.
pub(super) fn finding(out: &mut impl Write, f: &Finding) -> std::io::Result<()> {
    writeln!(out, "{:<8}{}", f.severity.as_str().to_uppercase(), f.title)?;
    labelled(out, "        ", &finding_lines(f))?;
    writeln!(out)
}

/// `label: text` lines under `indent`, a repeated label (the fix's second command) blank.
pub(super) fn labelled(
    out: &mut impl Write,
    indent: &str,
    lines: &[(&str, String)],
) -> std::io::Result<()> {
    let mut last = "";
    for (label, text) in lines {
        if *label == last {
            writeln!(out, "{indent}       {text}")?;
        } else {
            writeln!(out, "{indent}{:<7}{text}", format!("{label}:"))?;
        }
        last = label;
    }
    Ok(())
}

fn line(out: &mut impl Write, line: &DiagnoseLine) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

pub fn json(
    out: &mut impl Write,
    ctx: &Context,
    d: &Diagnosis,
    all_flows: bool,
) -> std::io::Result<()> {
    for e in &ctx.evidence {
        line(out, &DiagnoseLine::Evidence(e.clone()))?;
    }
    for p in &ctx.problems {
        line(out, &DiagnoseLine::Problem(Problem { message: p.clone() }))?;
    }
    for u in &d.unknowns {
        line(out, &DiagnoseLine::Unknown(u.clone()))?;
    }
    if all_flows {
        for fl in &d.flows {
            line(out, &DiagnoseLine::Flow(fl.clone()))?;
        }
    }
    for f in &d.findings {
        line(out, &DiagnoseLine::Finding(f.clone()))?;
    }
    line(
        out,
        &DiagnoseLine::Summary(DiagnoseSummary {
            profile: ctx.profile.clone(),
            roles: ctx.roles.clone(),
            errors: d.errors(),
            warnings: d.warnings(),
            flows: d.flows.len(),
            complete: ctx.problems.is_empty() && d.unknowns.is_empty(),
        }),
    )
}
