//! `test` and `demo`.

use crate::{paths, up};
use anyhow::{bail, Context, Result};
use std::process::Command;

fn with_env(cmd: &mut Command, s: &capd_testenv::EnvState) {
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("KUBECONFIG", &s.kubeconfig)
        .env("DOCKER_HOST", &s.docker_host)
        .env(capd_testenv::STATE_DIR_ENV, paths::state_dir())
        .env("PATH", format!("{}:{path}", s.bin_dir.display()));
}

/// Generated files must match their generator (CRDs).
fn check_generated() -> Result<()> {
    let root = paths::workspace_root();
    if !root.join("crates/api/src/bin/crdgen.rs").exists() {
        return Ok(());
    }
    eprintln!("==> generated CRDs match `crdgen`");
    let st = Command::new("cargo")
        .current_dir(&root)
        .args(["run", "-q", "-p", "capd-api", "--bin", "crdgen", "--", "--check", "manifests/crds"])
        .status()
        .context("running crdgen")?;
    if !st.success() {
        bail!("manifests/crds differ from what `cargo run -p capd-api --bin crdgen -- manifests/crds` generates; run it and commit");
    }
    Ok(())
}

pub fn test(extra: &[String]) -> Result<()> {
    let state = up::up()?;
    // The demo's manager watches every namespace: it would reconcile the tests' objects
    // beside the managers the tests start, and two writers break what tests assert.
    if let Some(m) = state.components.iter().find(|c| c.name == crate::demo::MANAGER) {
        eprintln!("==> stopping the demo's capd-manager (pid {}) so tests run their own", m.pid);
        crate::procs::stop(m.pid, &state.bin_dir.join(crate::demo::MANAGER).to_string_lossy(), std::time::Duration::from_secs(15))?;
    }
    check_generated()?;
    eprintln!("==> cargo test --workspace");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(paths::workspace_root()).args(["test", "--workspace", "--no-fail-fast"]);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    with_env(&mut cmd, &state);
    let (st, passed, failed) = run_counting(&mut cmd)?;
    let fuzzed = if st.success() { fuzz() } else { Ok(()) };
    // One plain closing line with the totals, after the fuzzers' output.
    println!("tests: {passed} passed, {failed} failed");
    if !st.success() {
        bail!("cargo test failed ({st})");
    }
    fuzzed
}

/// Runs `cargo test`, echoing its output, and adds up its `test result:` lines.
fn run_counting(cmd: &mut Command) -> Result<(std::process::ExitStatus, u64, u64)> {
    use std::io::{BufRead, Write};
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().context("running cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in std::io::BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            let _ = writeln!(stdout, "{line}");
            if let Some((p, f)) = test_result_counts(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    Ok((child.wait()?, passed, failed))
}

/// `test result: ok. 8 passed; 1 failed; ...` → (8, 1).
fn test_result_counts(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let num = |word: &str| -> Option<u64> {
        let words: Vec<&str> = rest.split(|c: char| c == ';' || c == '.' || c.is_whitespace()).filter(|w| !w.is_empty()).collect();
        words.windows(2).find(|w| w[1] == word).and_then(|w| w[0].parse().ok())
    };
    Some((num("passed")?, num("failed")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_test_result_lines() {
        assert_eq!(test_result_counts("test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured"), Some((8, 0)));
        assert_eq!(test_result_counts("test result: FAILED. 5 passed; 1 failed; 0 ignored"), Some((5, 1)));
        assert_eq!(test_result_counts("running 3 tests"), None);
    }
}

/// Bounded fuzzing of the bootstrap-data parsers (cargo-fuzz on nightly).
fn fuzz() -> Result<()> {
    let script = paths::workspace_root().join(".ci/fuzz-bootstrap.sh");
    if !script.exists() {
        return Ok(());
    }
    eprintln!("==> fuzzing the bootstrap parsers (bounded)");
    // 30 s per target keeps the whole test command inside CI's budget; run the script
    // directly with a larger FUZZ_SECONDS for a longer campaign.
    let seconds = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "30".into());
    let st = Command::new("bash")
        .arg(&script)
        .env("FUZZ_SECONDS", seconds)
        .current_dir(paths::workspace_root())
        .status()
        .context("running the fuzz script")?;
    if !st.success() {
        bail!("fuzzing found a crash or could not run ({st}); see the output above");
    }
    Ok(())
}
