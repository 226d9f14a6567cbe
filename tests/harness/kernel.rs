//! What the kernel under test offers, for tests whose expectations depend on it. A test that
//! expects less on an older kernel says so on stderr (once per test), so a run on 5.10 shows
//! what was checked instead of passing silently.

use tracer::probes::{drops::NOT_SPECIFIED, features};

/// The running kernel's features, as tracer probes them.
pub fn features() -> &'static features::Features {
    features::get()
}

/// The reason the drop probe reports for drops the kernel names `reason`: that name where the
/// kernel has drop reasons (5.17+), NOT_SPECIFIED before.
pub fn drop_reason(test: &str, reason: &'static str) -> &'static str {
    if features().drop_reasons {
        return reason;
    }
    eprintln!(
        "{test}: kernel {} has no drop reasons (5.17+): expecting the drops under {NOT_SPECIFIED}, located by the function that dropped them, instead of {reason}",
        features().release
    );
    NOT_SPECIFIED
}
