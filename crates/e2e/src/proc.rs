//! Processes a test starts: killed when dropped, with their log kept for the failure message.

use anyhow::{bail, Context, Result};
use capd_testenv::http_get;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process with its output in `log`; SIGTERM, then SIGKILL, when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let shown = crate::cmd::show(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: `{shown}`"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has exited (with the tail of its log).
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait().context("waiting on child")? {
            bail!(
                "{} exited with {st}; log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(30)
            );
        }
        Ok(())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        crate::cmd::tail(&self.log_text(), n)
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status if it exited in time.
    pub fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Waits until GET `path` on 127.0.0.1:`port` answers 200, while `proc` keeps running.
pub async fn wait_http_ok(proc: &mut Proc, port: u16, path: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        proc.check_running()?;
        let seen = match http_get(port, path) {
            Ok((200, _)) => return Ok(()),
            other => format!("{other:?}"),
        };
        if start.elapsed() > timeout {
            bail!(
                "{} did not answer 200 on 127.0.0.1:{port}{path} within {timeout:?} (last: {seen}); log {}:\n{}",
                proc.name,
                proc.log.display(),
                proc.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `capd-manager` as `cargo xtask demo` runs it, limited to namespace `ns` (its Lease there
/// too), against the test environment; returns once its /readyz answers 200.
pub async fn start_manager_in(env: &capd_testenv::TestEnv, ns: &str) -> Result<Proc> {
    let (health, metrics) = (capd_testenv::free_port()?, capd_testenv::free_port()?);
    let mut cmd = Command::new(crate::artifacts::manager_binary()?);
    cmd.args(["--namespace", ns, "--leader-election-namespace", ns])
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg(format!("--diagnostics-address=127.0.0.1:{metrics}"))
        .args(capd_testenv::support::local_manager_flags(
            &env.state.pki_dir,
        )?)
        .env("KUBECONFIG", &env.state.kubeconfig)
        .env("DOCKER_HOST", env.docker_host())
        .env("RUST_LOG", "info,capd_controllers=debug");
    let mut manager = Proc::spawn(
        "capd-manager",
        cmd,
        &env.state.log_dir.join(format!("manager-{ns}.log")),
    )?;
    wait_http_ok(&mut manager, health, "/readyz", Duration::from_secs(60)).await?;
    Ok(manager)
}
