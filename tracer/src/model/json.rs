//! Where a JSON document fails to parse: serde_json's message with its location taken out, so
//! that the error types that read JSON files can put the location in front of it.

/// The line, column and message of a serde_json error; the message without serde_json's
/// trailing " at line L column C".
pub(crate) fn located(e: &serde_json::Error) -> (usize, usize, String) {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    (e.line(), e.column(), message)
}
