//! `test`: the environment, then every test against it.
//!
//! On a cold machine most of the time is compiling (Go, the workspace, Tilt, the fuzz
//! targets, the previous release the kind suite upgrades from). The compile jobs that `up` does not need start first, in the background at
//! a lower priority, so they use what `up` leaves idle; the Tilt test and the fuzzing
//! run last, when their builds have had the whole test run to finish.

use crate::environment::lifecycle;
use crate::environment::manager::MANAGER;
use crate::support::background::Background;
use crate::support::paths;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The one test that needs Tilt, run after the rest (see the module comment).
const TILT_TEST: &str = "tilt_ci_runs_the_manager_until_ready";

const WORKSPACE_BUILD: &str = "workspace test build";
const TILT_BUILD: &str = "Tilt build";
const FUZZ_BUILD: &str = "fuzz targets build";
const PREVIOUS_BUILD: &str = "previous release build";

fn with_env(cmd: &mut Command, s: &capd_testenv::EnvState) {
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("KUBECONFIG", &s.kubeconfig)
        .env("DOCKER_HOST", &s.docker_host)
        .env(capd_testenv::STATE_DIR_ENV, paths::state_dir())
        .env("PATH", format!("{}:{path}", s.bin_dir.display()));
}

/// `cargo test --workspace --no-fail-fast`; every invocation uses the same package
/// selection, so they share one set of compiled dependencies.
///
/// Incremental compilation is off unless the caller set `CARGO_INCREMENTAL`: one build
/// of the whole workspace's tests gains nothing from it, and its session data grew past
/// 12 GB on these machines, filling the disk that the workload clusters' nodes write to.
fn cargo_test() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(paths::workspace_root())
        .args(["test", "--workspace", "--no-fail-fast"]);
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|| paths::workspace_root().join("target"))
}

/// Generated files must match their generator (CRDs); uses the `crdgen` that the
/// workspace test build made (capd-api's integration tests need it).
fn check_generated() -> Result<()> {
    let root = paths::workspace_root();
    if !root.join("crates/api/src/bin/crdgen.rs").exists() {
        return Ok(());
    }
    eprintln!("==> generated CRDs match `crdgen`");
    let built = target_dir().join("debug/crdgen");
    let mut cmd = if built.is_file() {
        Command::new(built)
    } else {
        let mut c = Command::new("cargo");
        c.args(["run", "-q", "-p", "capd-api", "--bin", "crdgen", "--"]);
        c
    };
    let st = cmd
        .current_dir(&root)
        .args(["--check", "manifests/crds"])
        .status()
        .context("running crdgen")?;
    if !st.success() {
        bail!("manifests/crds differ from what `cargo run -p capd-api --bin crdgen -- manifests/crds` generates; run it and commit");
    }
    Ok(())
}

pub fn test(extra: &[String]) -> Result<()> {
    // With a test filter only the matching tests run: no Tilt run of its own, no fuzzing.
    let full = extra.is_empty();
    let logs = paths::log_dir();
    let mut bg = Background::default();
    let mut build = cargo_test();
    build.arg("--no-run");
    // The workspace build is on the critical path right after `up`: nice 10 keeps it ahead
    // of the other two (nice 19) while still yielding to `up` (nice 0).
    bg.spawn(WORKSPACE_BUILD, 10, &build, logs.join("test-build.log"))?;
    if full {
        let xtask = std::env::current_exe().context("locating the xtask binary")?;
        let mut tilt = Command::new(&xtask);
        tilt.arg("tilt");
        bg.spawn(TILT_BUILD, 19, &tilt, logs.join("tilt-build.log"))?;
        let mut fuzz = fuzz_script();
        fuzz.arg("build");
        bg.spawn(FUZZ_BUILD, 19, &fuzz, logs.join("fuzz-build.log"))?;
        // The kind suite's previous release (it waits for this build if it gets there first).
        let mut previous = Command::new(&xtask);
        previous.arg("previous-release");
        bg.spawn(
            PREVIOUS_BUILD,
            19,
            &previous,
            logs.join("previous-release-build.log"),
        )?;
    }

    let state = lifecycle::up()?;
    // The demo's manager watches every namespace: it would reconcile the tests' objects
    // beside the managers the tests start, and two writers break what tests assert.
    if let Some(m) = state.components.iter().find(|c| c.name == MANAGER) {
        eprintln!(
            "==> stopping the demo's capd-manager (pid {}) so tests run their own",
            m.pid
        );
        crate::support::procs::stop(
            m.pid,
            &state.bin_dir.join(MANAGER).to_string_lossy(),
            std::time::Duration::from_secs(15),
        )?;
    }
    // A failed build is reported again, with its errors, by the `cargo test` below.
    if let Err(e) = bg.wait(WORKSPACE_BUILD) {
        eprintln!("{e:#}");
    }
    check_generated()?;

    let mut counts = Counts::default();
    let mut cmd = cargo_test();
    if full {
        eprintln!("==> cargo test --workspace (all but {TILT_TEST}, which runs last)");
        cmd.args(["--", "--skip", TILT_TEST]);
    } else {
        eprintln!("==> cargo test --workspace -- {}", extra.join(" "));
        cmd.arg("--").args(extra);
    }
    with_env(&mut cmd, &state);
    let mut ok = counts.run(&mut cmd)?;

    let mut fuzzed = Ok(());
    if full {
        // Done by now (the kind suite needed it); a failure was reported by that test too.
        if let Err(e) = bg.wait(PREVIOUS_BUILD) {
            eprintln!("{e:#}");
        }
        fuzzed = bg.wait(FUZZ_BUILD).and_then(|()| fuzz());
        eprintln!("==> cargo test --workspace --test tilt ({TILT_TEST})");
        let tilt = match bg.wait(TILT_BUILD) {
            Ok(()) => {
                let mut cmd = cargo_test();
                cmd.args(["--test", "tilt", "--", "--exact", TILT_TEST]);
                with_env(&mut cmd, &state);
                counts.run(&mut cmd)?
            }
            Err(e) => {
                eprintln!("{e:#}");
                counts.failed += 1;
                false
            }
        };
        ok &= tilt;
    }
    // CI shows the head and the tail of a long output: the panic messages again, last.
    if !counts.panics.is_empty() {
        println!("==> the failures again (the full output is above)");
        for p in &counts.panics {
            println!("{}", p.join("\n"));
        }
    }
    // One plain closing line with the totals, after the fuzzers' output.
    println!("tests: {} passed, {} failed", counts.passed, counts.failed);
    if !ok {
        bail!("cargo test failed; see the output above");
    }
    fuzzed
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    /// Each failed test's panic message, as printed.
    panics: Vec<Vec<String>>,
    /// The panic message being read, if one is.
    reading: Option<Vec<String>>,
}

/// Lines kept of one panic message (a kind suite's error can carry a whole describe).
const PANIC_LINES: usize = 80;

impl Counts {
    /// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
    fn run(&mut self, cmd: &mut Command) -> Result<bool> {
        use std::io::{BufRead, Write};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("running cargo test")?;
        if let Some(out) = child.stdout.take() {
            let mut stdout = std::io::stdout();
            for line in std::io::BufReader::new(out).lines() {
                let line = line.unwrap_or_default();
                let _ = writeln!(stdout, "{line}");
                if let Some((p, f)) = test_result_counts(&line) {
                    self.passed += p;
                    self.failed += f;
                }
                self.read_panic(&line);
            }
        }
        Ok(child.wait()?.success())
    }
}

/// `test result: ok. 8 passed; 1 failed; ...` → (8, 1).
fn test_result_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num = |word: &str| -> Option<u64> {
        let words: Vec<&str> = rest
            .split(|c: char| c == ';' || c == '.' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .find(|w| w[1] == word)
            .and_then(|w| w[0].parse().ok())
    };
    Some((num("passed")?, num("failed")?))
}

impl Counts {
    /// Keeps a panic message: from `thread '...' panicked at` to the blank line (or the
    /// backtrace note, or the next test's output) that ends it.
    fn read_panic(&mut self, line: &str) {
        if line.starts_with("thread '") && line.contains(" panicked at ") {
            if let Some(done) = self.reading.replace(Vec::new()) {
                self.panics.push(done);
            }
        }
        let Some(lines) = self.reading.as_mut() else {
            return;
        };
        let end = line.trim().is_empty()
            || line.starts_with("note: run with `RUST_BACKTRACE")
            || line.starts_with("stack backtrace:")
            || line.starts_with("---- ")
            || line.starts_with("failures:");
        if end {
            if let Some(done) = self.reading.take() {
                self.panics.push(done);
            }
        } else if lines.len() < PANIC_LINES {
            lines.push(line.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_panic_message() {
        let out = "running 2 tests\n---- a stdout ----\n==> step\nthread 'a' (12) panicked at x.rs:1:2:\nstep failed: boom\n  because\nstack backtrace:\n   0: x\n\nnote: run with `RUST_BACKTRACE=1`\n---- b stdout ----\nthread 'b' panicked at y.rs:3:4:\nother\nfailures:\n";
        let mut c = Counts::default();
        for line in out.lines() {
            c.read_panic(line);
        }
        assert_eq!(
            c.panics,
            vec![
                vec![
                    "thread 'a' (12) panicked at x.rs:1:2:",
                    "step failed: boom",
                    "  because"
                ],
                vec!["thread 'b' panicked at y.rs:3:4:", "other"],
            ]
        );
    }

    #[test]
    fn reads_cargo_test_result_lines() {
        assert_eq!(
            test_result_counts("test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured"),
            Some((8, 0))
        );
        assert_eq!(
            test_result_counts("test result: FAILED. 5 passed; 1 failed; 0 ignored"),
            Some((5, 1))
        );
        assert_eq!(test_result_counts("running 3 tests"), None);
    }
}

/// Bounded fuzzing of the bootstrap-data parsers (cargo-fuzz on nightly).
fn fuzz() -> Result<()> {
    eprintln!("==> fuzzing the bootstrap parsers (bounded)");
    // 30 s per target keeps the whole test command inside CI's budget; run the script
    // directly with a larger FUZZ_SECONDS for a longer campaign.
    let seconds = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "30".into());
    let st = fuzz_script()
        .env("FUZZ_SECONDS", seconds)
        .status()
        .context("running the fuzz script")?;
    if !st.success() {
        bail!("fuzzing found a crash or could not run ({st}); see the output above");
    }
    Ok(())
}

/// `.ci/fuzz-bootstrap.sh`, which installs cargo-fuzz (pinned, cached) and fuzzes.
fn fuzz_script() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(paths::workspace_root().join(".ci/fuzz-bootstrap.sh"))
        .current_dir(paths::workspace_root());
    cmd
}
