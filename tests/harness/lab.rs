//! A lab built by the `tracer` binary for a test, removed when the test ends however it ends.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use tracer_lab::state::State;

use super::{require_root, tracer::BIN};

/// A lab that is removed when the test ends, however it ends.
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    /// The lab named for this test process and `tag`, not built yet (see [`Lab::up`]); it is
    /// taken down when dropped all the same.
    pub fn named(tag: &str) -> Lab {
        Lab {
            prefix: format!("t{}{tag}", std::process::id() % 100_000),
        }
    }

    pub fn up(scenario: &str, tag: &str) -> Lab {
        require_root();
        let lab = Lab::named(tag);
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
        let mut args = vec!["exec", node, "--"];
        args.extend_from_slice(argv);
        self.run(&args)
    }

    /// Runs a command in a node; it must succeed.
    pub fn exec(&self, node: &str, argv: &[&str]) -> String {
        let out = self.exec_output(node, argv);
        assert!(
            out.status.success(),
            "{argv:?} in {node}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The lab's directory: its state and every node's files.
    pub fn dir(&self) -> PathBuf {
        tracer_lab::state::lab_dir(&self.prefix)
    }

    /// A node's files (see `tracer_lab::node_dir`).
    pub fn node_dir(&self, node: &str) -> PathBuf {
        tracer_lab::node_dir(&self.prefix, node)
    }

    /// The lab's state.json; it must exist and be readable.
    pub fn state(&self) -> State {
        State::load(&self.prefix)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .unwrap_or_else(|| panic!("lab {} has no state.json", self.prefix))
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
