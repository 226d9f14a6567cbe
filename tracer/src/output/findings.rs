//! How a diagnosis reads: findings grouped by severity with their evidence and fix for people,
//! one JSON object per finding for scripts (a [`DiagnoseLine`] of the schema).

use std::io::Write;

use super::schema::{DiagnoseLine, DiagnoseSummary, Problem};
use crate::findings::{Diagnosis, Finding, RuleInfo, Severity};

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
    let unread = ctx.problems.len();
    if unread > 0 {
        // Partial inputs never read as a healthy node.
        writeln!(
            out,
            "Diagnosis incomplete: {} could not be read (\"could not read\" above), so what \
             depends on it is unknown. In what was read: {} errors, {} warnings, {notes} notes \
             ({} flows checked).",
            plural(unread, "input"),
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
    for p in &ctx.problems {
        line(out, &DiagnoseLine::Problem(Problem { message: p.clone() }))?;
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
            complete: ctx.problems.is_empty(),
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
