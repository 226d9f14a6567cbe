//! A lab built by the `tracer` binary for a test, removed when the test ends however it ends.

use std::{
    path::Path,
    process::{Command, Output},
};

use super::{require_root, tracer::BIN};

/// A lab that is removed when the test ends, however it ends.
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    pub fn up(scenario: &str, tag: &str) -> Lab {
        require_root();
        let prefix = format!("t{}{tag}", std::process::id() % 100_000);
        let lab = Lab { prefix };
        let out = lab.run(&["up", "--scenario", scenario]);
        assert!(
            out.status.success(),
            "lab up {scenario}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        lab
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let (sub, rest) = args.split_first().unwrap();
        Command::new(BIN)
            .args(["lab", sub, "--prefix", &self.prefix])
            .args(rest)
            .output()
            .unwrap()
    }

    /// Runs a command in a node, whatever its exit status.
    pub fn exec_output(&self, node: &str, argv: &[&str]) -> Output {
        Command::new(BIN)
            .args(["lab", "exec", "--prefix", &self.prefix, node, "--"])
            .args(argv)
            .output()
            .unwrap()
    }

    /// Runs a command in a node; it must succeed.
    pub fn exec(&self, node: &str, argv: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(["lab", "exec", "--prefix", &self.prefix, node, "--"])
            .args(argv)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?} in {node}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn state(&self) -> serde_json::Value {
        let file = Path::new("/var/lib/tracer-lab")
            .join(&self.prefix)
            .join("state.json");
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
    }

    /// `lab check`: must report every flow as the scenario intends; returns its output.
    pub fn check(&self) -> String {
        let out = self.run(&["check"]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "lab check:\n{stdout}{}",
            text(&out.stderr)
        );
        stdout
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
