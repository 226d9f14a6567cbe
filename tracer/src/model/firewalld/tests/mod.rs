//! Tests of the firewalld model: files ([`parse`]), zone questions ([`select`]) and the zone
//! resolver on evaluations of the three nftables layouts ([`dispatch`]). Roots are
//! temporary directories with the fixture's `etc/firewalld` and a symlink to the host's stock
//! `/usr/lib/firewalld`, the layout of a lab node. The runtime read over D-Bus from a real
//! firewalld is the integration test `firewalld_runtime`.

mod dispatch;
mod judge;
mod parse;
mod select;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{Permanent, read_permanent};

/// The host's stock configuration, read-only.
const STOCK: &str = "/usr/lib/firewalld";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/model/firewalld/fixtures")
}

/// A root with the stock files and an empty `etc/firewalld/{zones,services}`.
fn stock_root() -> TempDir {
    assert!(
        Path::new(STOCK).join("zones/public.xml").exists(),
        "{STOCK} is missing: these tests need the firewalld package (apt-get install firewalld)"
    );
    let t = tempfile::Builder::new()
        .prefix("hbfwd-")
        .tempdir()
        .expect("create temp dir");
    fs::create_dir_all(t.path().join("usr/lib")).expect("mkdir usr/lib");
    std::os::unix::fs::symlink(STOCK, t.path().join("usr/lib/firewalld")).expect("symlink stock");
    for sub in ["zones", "services"] {
        fs::create_dir_all(t.path().join("etc/firewalld").join(sub)).expect("mkdir etc");
    }
    t
}

/// A root with the fixture `name`'s `etc/firewalld` over the stock files.
fn fixture_root(name: &str) -> TempDir {
    let t = stock_root();
    copy_tree(
        &fixtures().join(name).join("etc/firewalld"),
        &t.path().join("etc/firewalld"),
    );
    t
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("list {}: {e}", from.display())) {
        let e = e.expect("dir entry");
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap_or_else(|err| panic!("copy {:?}: {err}", e.path()));
        }
    }
}

/// Writes `ROOT/REL`, creating directories.
fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

/// Reads `root` and fails with the problems listed when there are any.
fn read_clean(root: &Path) -> Permanent {
    let p = read_permanent(root);
    assert!(
        p.problems.is_empty(),
        "unexpected problems reading {}:\n{}",
        root.display(),
        problems_text(&p)
    );
    p
}

fn problems_text(p: &Permanent) -> String {
    p.problems.iter().fold(String::new(), |mut text, x| {
        let _ = writeln!(text, "  {x}");
        text
    })
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}
