//! The lines of `tracer diagnose --output json`.

use serde::{Deserialize, Serialize};

use super::{EvidenceReport, Finding, FlowCheck, Unknown};

/// One line of `tracer diagnose --output json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(
    clippy::large_enum_variant,
    reason = "the variants are what readers match on; a diagnosis prints a few dozen lines, so boxing the finding would save nothing that matters"
)]
pub enum DiagnoseLine {
    /// With `--evidence`: what a file was taken for, and what of it was used.
    Evidence(EvidenceReport),
    Problem(Problem),
    /// Away from the node: something the inputs do not settle, and the commands that would.
    Unknown(Unknown),
    /// Printed with `--all`.
    Flow(FlowCheck),
    Finding(Finding),
    Summary(DiagnoseSummary),
}

/// A file or command that could not be read, with where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub message: String,
}

/// What was diagnosed, and how many findings of each severity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnoseSummary {
    pub profile: String,
    /// The role names joined by `+`.
    pub roles: String,
    pub errors: usize,
    pub warnings: usize,
    /// Flows evaluated.
    pub flows: usize,
    /// Every input was read and nothing was left unknown. When false, the `problem` and
    /// `unknown` lines say what was not, and no finding can be taken to mean that the node is
    /// fine.
    #[serde(default)]
    pub complete: bool,
}
