//! Processes a test starts: killed when dropped, with their log kept for the failure message.

use anyhow::{bail, Context, Result};
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
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("opening {}", log.display()))?;
        let shown = crate::cmd::show(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}: `{shown}`"))?;
        Ok(Self { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has exited (with the tail of its log).
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait().context("waiting on child")? {
            bail!("{} exited with {st}; log {}:\n{}", self.name, self.log.display(), self.log_tail(30));
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
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).stderr(Stdio::null()).status();
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

/// A free TCP port on 127.0.0.1 (the OS picks it).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr().context("local address")?.port())
}

/// A plain HTTP GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("no status line")?;
    Ok((code, out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()))
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
