//! Shell completions and man pages, generated from the command line's definitions: bash,
//! sourced, completes subcommands and `--profile` values; `man -l` renders the pages.

use std::process::Command;

use crate::harness::{netns::run, tracer::BIN};

/// What bash's completion offers for `words`, the last being completed.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let shell = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _tracer tracer '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
        words[cword - 1],
    );
    run(Command::new("bash").args(["--norc", "-c", &shell]))
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn bash_completes_subcommands_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tracer.bash");
    std::fs::write(
        &script,
        run(Command::new(BIN).args(["completions", "bash"])),
    )
    .unwrap();

    let commands = complete(&script, &["tracer", "wa"]);
    assert!(commands.contains(&"watch".to_string()), "{commands:?}");
    let all = complete(&script, &["tracer", ""]);
    for c in ["watch", "diagnose", "baseline", "completions", "man"] {
        assert!(all.contains(&c.to_string()), "{c} missing from {all:?}");
    }
    let profiles = complete(&script, &["tracer", "watch", "--profile", ""]);
    for p in ["generic", "k0s-calico", "k3s-flannel"] {
        assert!(
            profiles.contains(&p.to_string()),
            "{p} missing from {profiles:?}"
        );
    }
    let k3s = complete(&script, &["tracer", "diagnose", "--profile", "k3"]);
    assert!(
        !k3s.is_empty() && k3s.iter().all(|p| p.starts_with("k3")),
        "{k3s:?}"
    );
    // The other shells get theirs from the same definitions.
    for shell in ["zsh", "fish"] {
        let text = run(Command::new(BIN).args(["completions", shell]));
        assert!(
            text.contains("k0s-calico") && text.contains("watch"),
            "{shell}"
        );
    }
    // A profile outside the catalogs is refused by the parser, naming the known ones.
    let out = Command::new(BIN)
        .args(["ports", "--profile", "k9s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("k0s-calico"), "{err}");
}

/// `man -l FILE` as plain text.
fn man(page: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.1");
    std::fs::write(&file, page).unwrap();
    let text = run(Command::new("man")
        .args(["-P", "cat", "-l"])
        .arg(&file)
        .env("MANWIDTH", "100"));
    // Bold and underline come as overstrikes (`N\x08N`): keep the last of each.
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\x08' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_renders_the_pages_of_tracer_and_its_commands() {
    let page = run(Command::new(BIN).arg("man"));
    let text = man(&page);
    assert!(
        text.contains("tracer - Count and explain cluster traffic"),
        "{text}"
    );
    assert!(
        text.contains("SUBCOMMANDS") && text.contains("tracer-watch(1)"),
        "{text}"
    );
    let watch = man(&run(Command::new(BIN).args(["man", "watch"])));
    assert!(watch.contains("tracer-watch"), "{watch}");
    assert!(
        watch.contains("--profile") && watch.contains("k0s-calico"),
        "{watch}"
    );
    assert!(watch.contains("--output"), "{watch}");
    let out = Command::new(BIN).args(["man", "nothing"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}
