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
        let dir = crate::support::paths::log_dir();
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
            return Err(anyhow!(
                "`{shown}` exited with {status} (output in {})",
                self.path.display()
            ));
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
            return Err(anyhow!(
                "`{shown}` exited with {} (output in {})",
                out.status,
                self.path.display()
            ));
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
    pub fn run<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&StepLog) -> Result<Outcome<T>>,
    ) -> Result<T> {
        let log = StepLog::new(name)?;
        let start = Instant::now();
        eprintln!("==> {name}");
        let alive = heartbeat(name, &log, start);
        let res = f(&log);
        drop(alive);
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

/// How often a running step says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Prints every [`HEARTBEAT`] that step `name` still runs, with its elapsed time and the
/// newest line of its log (what is being built or downloaded, `[i/n]` where counted),
/// until the returned sender is dropped. Plain lines: they read the same in CI logs.
fn heartbeat(name: &str, log: &StepLog, start: Instant) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (name, path) = (name.to_string(), log.path.clone());
    std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(HEARTBEAT) {
            let secs = start.elapsed().as_secs();
            let last = last_line(&path)
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            eprintln!("    ... {name}, {}m{:02}s{last}", secs / 60, secs % 60);
        }
    });
    tx
}

/// The newest non-empty line of a log that is not a command echo (`$ ...`, long and
/// the same for minutes), shortened for one terminal line.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("$ "))?;
    Some(shorten(line, 140))
}

fn shorten(line: &str, max: usize) -> String {
    if line.chars().count() <= max {
        return line.to_string();
    }
    let head: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{head}…")
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
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    wait_for_every(what, timeout, Duration::from_millis(200), check)
}

/// [`wait_for`] with its own interval, for checks that start processes (clusterctl,
/// kubectl) while a workload cluster boots on the same two cores.
pub fn wait_for_every<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_of_a_log_is_the_newest_non_empty_one_shortened() {
        let dir = std::env::temp_dir().join(format!("capd-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.log");
        std::fs::write(
            &p,
            format!("first\n$ go build -o kubelet\n{}\n\n", "y".repeat(300)),
        )
        .unwrap();
        let l = last_line(&p).unwrap();
        assert_eq!(l.chars().count(), 140);
        assert!(l.starts_with("yyy") && l.ends_with('…'));
        std::fs::write(
            &p,
            "a\n[2/7] building kubelet\n$ go build -o kubelet k8s.io/kubernetes/cmd/kubelet\n",
        )
        .unwrap();
        assert_eq!(last_line(&p).as_deref(), Some("[2/7] building kubelet"));
        assert_eq!(last_line(&dir.join("missing.log")), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
