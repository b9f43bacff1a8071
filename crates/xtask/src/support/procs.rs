//! Daemons the environment starts: detached from the tool (own process group, so
//! they outlive it), output to a log file, found again by pid + command line.

use anyhow::{anyhow, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `bin args..` detached, stdout+stderr appended to `log`. Returns the pid.
pub fn spawn(bin: &Path, args: &[String], envs: &[(&str, String)], log: &Path) -> Result<u32> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(child.id())
}

/// True when `pid` runs and its command line starts with `bin` (guards against pid reuse).
pub fn alive(pid: u32, bin: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie (state Z) is dead for our purposes.
        if let Some(state) = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
        {
            if state == "Z" {
                return false;
            }
        }
    }
    // Right after spawn the parent can see an empty cmdline: exec has closed the
    // close-on-exec pipe `spawn` waits on but not yet mapped the new argv.
    if cmdline.is_empty() {
        return true;
    }
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = String::from_utf8_lossy(argv0);
    argv0 == bin || Path::new(argv0.as_ref()).file_name() == Path::new(bin).file_name()
}

/// What /proc says about a pid, for error messages.
pub fn describe(pid: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_else(|e| e.to_string());
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| e.to_string());
    format!(
        "cmdline: {cmd}; stat: {}",
        stat.chars().take(40).collect::<String>()
    )
}

/// SIGTERM, wait up to `grace`, then SIGKILL; waits until the process is gone.
pub fn stop(pid: u32, bin: &str, grace: Duration) -> Result<()> {
    if !alive(pid, bin) {
        return Ok(());
    }
    signal(pid, "TERM");
    if crate::support::steps::wait_for("process to exit", grace, || {
        Ok((!alive(pid, bin)).then_some(()))
    })
    .is_ok()
    {
        return Ok(());
    }
    signal(pid, "KILL");
    crate::support::steps::wait_for(
        &format!("pid {pid} ({bin}) to exit after SIGKILL"),
        Duration::from_secs(10),
        || Ok((!alive(pid, bin)).then_some(())),
    )
    .map_err(|e| anyhow!("{e}"))
}

/// SIGKILL to a whole process group. Not through `kill(1)`: procps-ng 4.0.2's parses
/// `kill -KILL -<pgid>` wrongly and signals every process it may (seen here).
pub fn kill_group(pgid: u32) {
    use rustix::process::{kill_process_group, Pid, RawPid, Signal};
    if let Ok(pgid) = RawPid::try_from(pgid) {
        if pgid > 1 {
            if let Some(pgid) = Pid::from_raw(pgid) {
                // kill(-pgid, SIGKILL); like before, a failure (group already gone) is ignored.
                let _ = kill_process_group(pgid, Signal::KILL);
            }
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A TCP port on 127.0.0.1 accepts connections.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
}

/// Plain-HTTP GET on 127.0.0.1; returns (status code, body). The one implementation the
/// tests use too (`capd_testenv::http_get`).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    Ok(capd_testenv::http_get(port, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_process_is_alive_until_stopped() {
        let log = std::env::temp_dir().join(format!("procs-test-{}.log", std::process::id()));
        let bin = Path::new("/bin/sleep");
        let pid = spawn(bin, &["30".to_string()], &[], &log).unwrap();
        assert!(alive(pid, "/bin/sleep"), "alive right after spawn");
        // Once exec has mapped the new argv, only the right binary matches.
        crate::support::steps::wait_for("argv to be set", Duration::from_secs(5), || {
            Ok(std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| !c.is_empty())
                .then_some(()))
        })
        .unwrap();
        assert!(
            !alive(pid, "/bin/other"),
            "another binary's name does not match"
        );
        stop(pid, "/bin/sleep", Duration::from_secs(5)).unwrap();
        assert!(!alive(pid, "/bin/sleep"));
        let _ = std::fs::remove_file(log);
    }
}
