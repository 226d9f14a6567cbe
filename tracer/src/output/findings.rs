//! How a diagnosis reads: findings grouped by severity with their evidence and fix for people,
//! one JSON object per finding for scripts (a [`DiagnoseLine`] of the schema). Away from the
//! node, also what each evidence file was taken for, how sure each finding is, and what the
//! inputs left unknown with the commands that would settle it.

use std::io::Write;

use super::schema::{DiagnoseLine, DiagnoseSummary, Problem};
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
            "Diagnosis incomplete: {}, so what depends on it is unknown. In what was read: {} \
             errors, {} warnings, {notes} notes ({} flows checked).",
            what.join(" and "),
            d.errors(),
            d.warnings(),
            d.flows.len()
        )?;
    } else if d.findings.is_empty() {
        writeln!(
            out,
            "No problem found: every flow the role needs is accepted ({} checked).",
            d.flows.len()
        )?;
    } else {
        writeln!(
            out,
            "{} errors, {} warnings, {notes} notes ({} flows checked).",
            d.errors(),
            d.warnings(),
            d.flows.len()
        )?;
    }
    Ok(())
}

fn finding(out: &mut impl Write, f: &Finding) -> std::io::Result<()> {
    writeln!(out, "{:<8}{}", f.severity.as_str().to_uppercase(), f.title)?;
    match f.certainty {
        Some(Certainty::Certain) => writeln!(out, "        sure:  certain")?,
        Some(Certainty::Likely) => writeln!(
            out,
            "        sure:  likely; settle with: {}",
            f.settle.join("; ")
        )?,
        None => {}
    }
    writeln!(out, "        why:   {}", f.explain)?;
    if let Some(zone) = &f.zone {
        let binding = f
            .binding
            .as_ref()
            .map(|b| format!(" (chosen by {b})"))
            .unwrap_or_default();
        writeln!(out, "        zone:  {zone}{binding}")?;
    }
    if let Some(e) = &f.element {
        writeln!(out, "        cause: {e}")?;
    }
    if let Some(r) = &f.rule {
        writeln!(out, "        rule:  {}", rule_line(r))?;
    }
    for (i, cmd) in f.fix.iter().enumerate() {
        writeln!(
            out,
            "        {}{cmd}",
            if i == 0 { "fix:   " } else { "       " }
        )?;
    }
    writeln!(out)
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

/// `1 input`, `2 inputs`.
fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
