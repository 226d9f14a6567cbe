//! The order of the pipeline's stages, checked: no module of a stage names a later stage
//! through a `crate::` path. Each stage is one folder of `src/`; the test reads their sources
//! as text (a `use crate::{a::.., b::..}` group counts every stage it names).

use std::path::Path;

/// The stages in pipeline order: each may use the ones before it, never one after. `sys`,
/// the system calls, comes first: every stage may use it, it uses none.
pub(crate) const ORDER: [&str; 8] = [
    "sys", "probes", "events", "model", "findings", "session", "output", "cli",
];

/// The first path segment after each `crate::` in `text`, and every first segment of a
/// `crate::{...}` group.
fn crate_refs(text: &str) -> Vec<&str> {
    let ident = |s: &str| -> usize {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(&rest[..ident(rest)]);
            continue;
        };
        // Each item of the group, up to its comma at depth 1 or the group's closing brace.
        let mut depth = 1;
        let mut item = group;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if (c == ',' && depth == 1) || depth == 0 {
                let first = item.trim_start();
                if ident(first) > 0 {
                    out.push(&first[..ident(first)]);
                }
                item = &group[i + 1..];
            }
            if depth == 0 {
                break;
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_stage_reaches_forward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut forward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().to_str().unwrap();
        let stage = rel.split(['/', '.']).next().unwrap();
        let Some(pos) = ORDER.iter().position(|s| *s == stage) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in crate_refs(&text) {
            let later = ORDER
                .iter()
                .position(|s| *s == used)
                .is_some_and(|u| u > pos);
            if later {
                forward.push(format!("{rel} uses {used}"));
            }
        }
    }
    assert!(forward.is_empty(), "stages reaching forward: {forward:#?}");
    // Every stage is a folder of src/.
    for stage in ORDER {
        assert!(src.join(stage).is_dir(), "{stage}");
    }
}

#[test]
fn groups_count_every_stage_they_name() {
    let text =
        "use crate::{\n    events::{A, B},\n    model::x,\n};\nfn f() { crate::output::print(); }";
    assert_eq!(crate_refs(text), ["events", "model", "output"]);
}
