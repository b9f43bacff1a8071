//! Named steps with timing and a log file each, so a failure says which step
//! failed and which log to read, and `up` can print a per-step breakdown.

use anyhow::{anyhow, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The log a step writes its commands' output to.
#[derive(Clone, Debug)]
pub struct StepLog {
    pub path: PathBuf,
}

impl StepLog {
    pub fn new(name: &str) -> Result<Self> {
        let dir = crate::paths::log_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.log", name.replace([' ', '/'], "-")));
        Ok(Self { path })
    }

    pub fn file(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening log {}", self.path.display()))
    }

    pub fn line(&self, text: &str) {
        if let Ok(mut f) = self.file() {
            let _ = writeln!(f, "{text}");
        }
    }

    /// Runs a command with its output appended to this log; a non-zero exit is an
    /// error naming the command and the log.
    pub fn run(&self, cmd: &mut Command) -> Result<()> {
        let shown = show(cmd);
        self.line(&format!("$ {shown}"));
        let status = cmd
            .stdin(Stdio::null())
            .stdout(self.file()?)
            .stderr(self.file()?)
            .status()
            .with_context(|| format!("starting `{shown}`"))?;
        if !status.success() {
            return Err(anyhow!("`{shown}` exited with {status} (output in {})", self.path.display()));
        }
        Ok(())
    }

    /// Runs a command and returns its stdout; stderr goes to the log.
    pub fn output(&self, cmd: &mut Command) -> Result<String> {
        let shown = show(cmd);
        self.line(&format!("$ {shown}"));
        let out = cmd
            .stdin(Stdio::null())
            .stderr(self.file()?)
            .output()
            .with_context(|| format!("starting `{shown}`"))?;
        if !out.status.success() {
            return Err(anyhow!("`{shown}` exited with {} (output in {})", out.status, self.path.display()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Timings of the steps run so far.
#[derive(Default)]
pub struct Steps {
    pub done: Vec<(String, Duration, &'static str)>,
}

impl Steps {
    /// Runs one step. Its error is wrapped with the step name and its log path.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce(&StepLog) -> Result<Outcome<T>>) -> Result<T> {
        let log = StepLog::new(name)?;
        let start = Instant::now();
        eprintln!("==> {name}");
        let res = f(&log);
        let took = start.elapsed();
        match res {
            Ok(Outcome::Done(v)) => {
                eprintln!("    {name}: done in {:.1}s", took.as_secs_f64());
                self.done.push((name.to_string(), took, "done"));
                Ok(v)
            }
            Ok(Outcome::Skipped(v, why)) => {
                eprintln!("    {name}: {why}");
                self.done.push((name.to_string(), took, "skipped"));
                Ok(v)
            }
            Err(e) => Err(e.context(format!("step `{name}` failed; log: {}", log.path.display()))),
        }
    }

    pub fn summary(&self) -> String {
        let mut s = String::from("step                          time     result\n");
        for (name, took, what) in &self.done {
            s.push_str(&format!("{name:<30}{:>6.1}s  {what}\n", took.as_secs_f64()));
        }
        s
    }
}

/// What a step did: the work, or nothing because it was already there.
pub enum Outcome<T> {
    Done(T),
    Skipped(T, String),
}

impl<T> Outcome<T> {
    pub fn value(&self) -> &T {
        match self {
            Outcome::Done(v) | Outcome::Skipped(v, _) => v,
        }
    }
}

/// Polls `check` every 200 ms until it returns Ok(Some) or `timeout` passes. An `Err`
/// from `check` (e.g. the process died) ends the wait at once.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    wait_for_every(what, timeout, Duration::from_millis(200), check)
}

/// [`wait_for`] with its own interval, for checks that start processes (clusterctl,
/// kubectl) while a workload cluster boots on the same two cores.
pub fn wait_for_every<T>(what: &str, timeout: Duration, interval: Duration, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(anyhow!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(interval);
    }
}

pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
