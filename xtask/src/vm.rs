//! The kernel matrix: the integration tests that exercise the kernel programs, run again inside
//! QEMU guests booted on the kernels cluster nodes run (Debian's 5.10, 6.1 and 6.12), beside the
//! host's own run. `setup` puts what that needs under [`CACHE`] without touching the host's
//! kernels or package state: a virtme-ng venv, and each kernel unpacked from Debian's archive
//! through a private apt sources list and state directory. `run` boots each kernel with
//! virtme-ng (the host's root filesystem, read-only, is the guest's; the kernel's modules are
//! bound to /lib/modules/<release> by virtme-ng), runs the chosen tests there and collects what
//! they printed in `target/kmatrix/<release>/`.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{root_dir, sh};

/// Where the matrix keeps its venv, apt state and kernels. Not under /var/cache or /tmp: the
/// guest gets fresh tmpfs there, and it must see the kernels' modules.
pub const CACHE: &str = "/var/lib/tracer-kmatrix";
/// virtme-ng from PyPI, pinned: its guest init and command line are what this file drives.
const VIRTME_NG: &str = "virtme-ng==1.42";
const MIRROR: &str = "http://deb.debian.org/debian";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A kernel of the matrix: its series and the Debian suite whose `linux-image-amd64` it is.
pub struct Kernel {
    pub series: &'static str,
    pub suite: &'static str,
}

/// Debian 11, 12 and 13: the kernels of k0s and k3s nodes on Debian, and close to Ubuntu 22.04
/// (5.15) and RHEL 9 (5.14) in what they offer BPF.
pub const MATRIX: &[Kernel] = &[
    Kernel {
        series: "5.10",
        suite: "bullseye",
    },
    Kernel {
        series: "6.1",
        suite: "bookworm",
    },
    Kernel {
        series: "6.12",
        suite: "trixie",
    },
];

/// The tests run in each guest (test-name filters): the kernel-program layer under
/// BPF_PROG_TEST_RUN and the namespace end-to-end runs of watch, drops and cleanup. The rest
/// of the suite (diagnose, lab, baseline, metrics) exercises user space and runs on the host.
pub const GUEST_TESTS: &[&str] = &[
    "kernel::",
    "datapath::each_program_counts_each_hand_built_frame_in_its_class",
    "datapath::ten_thousand_random_and_truncated_frames_all_pass_and_add_up",
    "datapath::overlay_packets_are_counted_by_their_inner_class_too",
    "watch::counts_every_class_exactly_in_both_directions",
    "watch::kill_9_leaves_nothing_attached_or_loaded",
    "drops::nft_drops_are_counted_exactly_with_reason_flow_and_pcap",
    "drops::vxlan_drops_carry_the_inner_flow",
    "drops::the_flow_filter_agrees_with_the_flow_table",
    "drops::every_drop_hook_sees_the_same_drops_alike",
    "cleanup::",
    "peers::each_program_counts_overlay_and_bgp_packets_for_their_far_end",
];

/// A guest that runs longer than this is stopped and counts as failed.
const GUEST_TIMEOUT: Duration = Duration::from_mins(20);

fn cache(rel: &str) -> PathBuf {
    Path::new(CACHE).join(rel)
}

/// Installs virtme-ng into its venv and downloads and unpacks the matrix's kernels.
pub fn setup() -> Result<()> {
    fs::create_dir_all(CACHE).with_context(|| format!("creating {CACHE}"))?;
    let vng = cache("venv/bin/vng");
    let pinned = cache("venv/.virtme-ng");
    if !vng.exists() || fs::read_to_string(&pinned).ok().as_deref() != Some(VIRTME_NG) {
        eprintln!("xtask: installing {VIRTME_NG} into {CACHE}/venv");
        sh(Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--clear"])
            .arg(cache("venv")))?;
        sh(Command::new(cache("venv/bin/pip")).args(["install", "-q", VIRTME_NG]))?;
        fs::write(&pinned, VIRTME_NG)?;
    }
    let ready = |k: &Kernel| {
        let link = cache(&format!("kernels/{}", k.series));
        link.join(".unpacked").exists() && fresh(&link)
    };
    if MATRIX.iter().all(ready) {
        return Ok(());
    }
    let apt = Apt::new()?;
    for k in MATRIX {
        let link = cache(&format!("kernels/{}", k.series));
        let package = apt.image_of(k.suite)?;
        let release = package
            .strip_prefix("linux-image-")
            .context("unexpected kernel package name")?
            .to_string();
        let dir = cache(&format!("kernels/{release}"));
        if !dir.join(".unpacked").exists() {
            eprintln!("xtask: downloading {package} ({} {})", k.suite, k.series);
            let debs = cache("debs");
            fs::create_dir_all(&debs)?;
            sh(apt
                .command("apt-get")
                .arg("download")
                .arg(&package)
                .current_dir(&debs))?;
            let deb = fs::read_dir(&debs)?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&format!("{package}_")))
                })
                .with_context(|| format!("{package} was not downloaded"))?;
            let _ = fs::remove_dir_all(&dir);
            // dpkg-deb makes the directory it unpacks into, but not its parents.
            fs::create_dir_all(cache("kernels"))?;
            sh(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
            // The packages leave modules.dep to their postinst: build it here, once.
            let base = if dir.join("lib/modules").exists() {
                dir.clone()
            } else {
                dir.join("usr")
            };
            sh(Command::new("depmod")
                .arg("-a")
                .arg("-b")
                .arg(&base)
                .arg(&release))?;
            fs::write(dir.join(".unpacked"), &package)?;
            let _ = fs::remove_file(&deb);
        }
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&release, &link)?;
    }
    Ok(())
}

/// Kernels are looked up again in the archive after a week (Debian's point releases).
fn fresh(path: &Path) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() < Duration::from_hours(168))
}

/// apt-get and apt-cache reading Debian's suites through a private sources list and state
/// directory, so the host's apt configuration and package state stay as they are.
struct Apt {
    options: Vec<String>,
}

impl Apt {
    fn new() -> Result<Apt> {
        let dir = cache("apt");
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let sources = MATRIX.iter().fold(String::new(), |mut out, k| {
            let _ = writeln!(out, "deb [signed-by={KEYRING}] {MIRROR} {} main", k.suite);
            out
        });
        let list = dir.join("sources.list");
        fs::write(&list, sources)?;
        let d = dir.display();
        let apt = Apt {
            options: [
                format!("Dir::Etc::sourcelist={}", list.display()),
                "Dir::Etc::sourceparts=-".into(),
                format!("Dir::State::Lists={d}/lists"),
                format!("Dir::Cache={d}/cache"),
                "Dir::State::status=/dev/null".into(),
                "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
                "APT::Sandbox::User=root".into(),
            ]
            .into_iter()
            .flat_map(|o| ["-o".to_string(), o])
            .collect(),
        };
        sh(apt.command("apt-get").args(["update", "-q"]))?;
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(&self.options);
        cmd
    }

    /// The versioned image package `linux-image-amd64` of `suite` depends on.
    fn image_of(&self, suite: &str) -> Result<String> {
        let out = self
            .command("apt-cache")
            .args(["show", &format!("linux-image-amd64/{suite}")])
            .output()
            .context("running apt-cache")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("Depends: "))
            .and_then(|d| d.split([' ', ',']).next())
            .map(str::to_string)
            .with_context(|| format!("no linux-image-amd64 in {suite}"))
    }
}

/// How QEMU runs the guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// KVM where the host's KVM runs ordinary guest kernels (kvm_intel, kvm_amd); TCG otherwise.
/// A nested KVM such as kvm_pvm runs only kernels built for it: Debian's hang right after
/// decompressing. TRACER_VM_ACCEL=kvm|tcg decides instead.
pub fn accel() -> (Accel, String) {
    match std::env::var("TRACER_VM_ACCEL").as_deref() {
        Ok("kvm") => return (Accel::Kvm, "TRACER_VM_ACCEL=kvm".into()),
        Ok("tcg") => return (Accel::Tcg, "TRACER_VM_ACCEL=tcg".into()),
        _ => {}
    }
    let module = ["kvm_intel", "kvm_amd"]
        .into_iter()
        .find(|m| Path::new("/sys/module").join(m).exists());
    match (Path::new("/dev/kvm").exists(), module) {
        (true, Some(m)) => (Accel::Kvm, format!("/dev/kvm with {m}")),
        (true, None) => (
            Accel::Tcg,
            "/dev/kvm is not kvm_intel or kvm_amd (here a nested KVM that cannot boot Debian's kernels): TCG".into(),
        ),
        (false, _) => (Accel::Tcg, "no /dev/kvm: TCG".into()),
    }
}

/// What one guest run gave.
pub struct Outcome {
    pub series: &'static str,
    pub release: String,
    pub secs: f64,
    pub passed: usize,
    pub failed: Vec<String>,
    /// The kernel's features as the tests' `kernel::` test printed them.
    pub features: String,
    /// What tests said they checked instead, for a feature the kernel lacks.
    pub notes: Vec<String>,
}

/// Boots every kernel of the matrix in turn and runs [`GUEST_TESTS`] of `tests` (the
/// integration test binary) in it.
pub fn run(tests: &Path) -> Result<Vec<Outcome>> {
    let (accel, why) = accel();
    eprintln!("xtask: kernel matrix under QEMU, {accel:?} ({why})");
    let out_root = root_dir().join("target/kmatrix");
    let mut outcomes = Vec::new();
    for k in MATRIX {
        let link = cache(&format!("kernels/{}", k.series));
        let release = fs::read_link(&link)
            .with_context(|| format!("kernel {} is not set up: run cargo xtask setup", k.series))?
            .to_string_lossy()
            .into_owned();
        let dir = cache(&format!("kernels/{release}"));
        let image = dir.join(format!("boot/vmlinuz-{release}"));
        let out = out_root.join(&release);
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out)?;
        let script = guest_script(tests, &out);
        fs::write(out.join("run.sh"), script)?;
        eprintln!("xtask: booting {release} ({})", k.suite);
        let start = Instant::now();
        let mut vng = Command::new("timeout");
        vng.args(["--kill-after=10", &GUEST_TIMEOUT.as_secs().to_string()])
            .arg(cache("venv/bin/vng"))
            .arg("--run")
            .arg(&image)
            .args(["--user", "root", "--memory", "2G", "--cpus", "2"])
            .args(if accel == Accel::Tcg {
                &["--disable-kvm"][..]
            } else {
                &[]
            })
            .arg("--rwdir")
            .arg(&out)
            .arg("--exec")
            .arg(format!("sh {}", out.join("run.sh").display()))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    cache("venv/bin").display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdout(fs::File::create(out.join("console.log"))?)
            .stderr(fs::File::create(out.join("vng.log"))?);
        let status = vng.status().context("starting vng")?;
        let secs = start.elapsed().as_secs_f64();
        let log = fs::read_to_string(out.join("tests.log")).unwrap_or_default();
        let outcome = outcome(k.series, &release, secs, &log);
        eprintln!(
            "xtask: {release}: {} passed, {} failed in {secs:.0} s{}",
            outcome.passed,
            outcome.failed.len(),
            if fs::read_to_string(out.join("status")).is_err() {
                format!(
                    " (the guest gave no result: vng {status}; see {})",
                    out.display()
                )
            } else {
                String::new()
            }
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The guest's command: run the tests from the package directory, as `cargo test` does, with
/// everything they print kept in the shared output directory.
fn guest_script(tests: &Path, out: &Path) -> String {
    let filters: Vec<String> = GUEST_TESTS.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "#!/bin/sh\n\
         export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin RUST_BACKTRACE=1\n\
         export TRACER_TEST_ATTACH_SECS=300\n\
         cd {pkg}\n\
         uname -r > {out}/release\n\
         {tests} --test-threads 1 --nocapture {filters} > {out}/tests.log 2>&1\n\
         echo $? > {out}/status\n",
        pkg = root_dir().join("tracer").display(),
        out = out.display(),
        tests = tests.display(),
        filters = filters.join(" "),
    )
}

fn outcome(series: &'static str, release: &str, secs: f64, log: &str) -> Outcome {
    // With --nocapture a test's output splits its "test NAME ... ok" line: read the totals
    // from libtest's closing line and the failed tests from its list of failures.
    let count = |line: &str, what: &str| {
        line.split(';')
            .find_map(|part| part.trim().strip_suffix(what))
            .and_then(|n| n.trim().rsplit(' ').next()?.parse::<usize>().ok())
    };
    let result = log.lines().rev().find(|l| l.starts_with("test result: "));
    let passed = result.and_then(|l| count(l, "passed")).unwrap_or(0);
    let mut failed: Vec<String> = log
        .split("\nfailures:\n")
        .nth(2)
        .map(|list| {
            list.lines()
                .take_while(|l| l.starts_with("    "))
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if failed.is_empty() && result.is_none_or(|l| !l.contains(" ok.")) {
        failed.push(match result {
            None => "(the test run did not finish)".into(),
            Some(l) => l.to_string(),
        });
    }
    let features = log
        .lines()
        .find_map(|l| l.split_once("FEATURES ").map(|(_, f)| f.to_string()))
        .unwrap_or_default();
    let notes = log
        .lines()
        .filter(|l| l.contains("kernel ") && (l.contains("has no") || l.contains("has TCX")))
        .map(|l| l.rsplit(" ... ").next().unwrap_or(l).to_string())
        .collect();
    Outcome {
        series,
        release: release.to_string(),
        secs,
        passed,
        failed,
        features,
        notes,
    }
}

/// The matrix as a table, for the terminal and for the README.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut t = String::from(
        "| kernel | Debian | features tracer found | tests in the guest | time |\n|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let suite = MATRIX
            .iter()
            .find(|k| k.series == o.series)
            .map_or("", |k| k.suite);
        let result = if o.failed.is_empty() {
            format!("{} passed", o.passed)
        } else {
            format!("{} passed, FAILED: {}", o.passed, o.failed.join(", "))
        };
        let _ = writeln!(
            t,
            "| {} | {suite} | {} | {result} | {:.0} s |",
            o.release, o.features, o.secs
        );
    }
    t
}

/// Fails unless every guest passed every test.
pub fn check(outcomes: &[Outcome]) -> Result<()> {
    let bad: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.failed.is_empty())
        .map(|o| format!("{}: {}", o.release, o.failed.join(", ")))
        .collect();
    if !bad.is_empty() {
        bail!(
            "kernel matrix failed: {} (logs in target/kmatrix/<release>/tests.log)",
            bad.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_read_from_libtest_output_split_by_test_output() {
        let log = "running 3 tests\n\
            test a::one ... note from a test\nok\n\
            test b::two ... \nthread 'b::two' panicked at x.rs:1:1:\nboom\nFAILED\n\
            test kernel::f ... FEATURES TCX: no; drop reasons: no\nok\n\
            \nfailures:\n\n---- b::two stdout ----\nboom\n\
            \nfailures:\n    b::two\n\n\
            test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 9 filtered out; finished in 3.00s\n";
        let o = outcome("6.1", "6.1.0-50-amd64", 1.0, log);
        assert_eq!(
            (o.passed, o.failed.clone()),
            (2, vec!["b::two".to_string()])
        );
        assert_eq!(o.features, "TCX: no; drop reasons: no");
        let ok = "test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out\n";
        let o = outcome("6.1", "r", 1.0, ok);
        assert_eq!((o.passed, o.failed.len()), (8, 0));
        let o = outcome("6.1", "r", 1.0, "running 3 tests\ntest a ... ");
        assert_eq!(o.failed, ["(the test run did not finish)"]);
    }
}
