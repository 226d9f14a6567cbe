//! Where a JSON document fails to parse: serde_json's message with its location put in front
//! of it, as `origin:line:column: message`. Rulesets use it, and so can any reader of JSON
//! files that wants its errors to point at the line.

/// A JSON document that does not parse, or does not have the shape its reader expects.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct JsonError {
    /// The file or command the text came from.
    pub origin: String,
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column of the error.
    pub column: usize,
    /// What is wrong there: serde_json's message without its trailing " at line L column C".
    pub message: String,
}

impl JsonError {
    pub fn new(origin: &str, e: &serde_json::Error) -> Self {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        JsonError {
            origin: crate::bounded(origin.to_string()),
            line: e.line(),
            // serde_json says column 0 at the very start of a line (an end of input right
            // after a newline); the first column is 1.
            column: e.column().max(1),
            // serde_json quotes the offending value, which can be of any size.
            message: crate::bounded(text.strip_suffix(&suffix).unwrap_or(&text).to_string()),
        }
    }
}
