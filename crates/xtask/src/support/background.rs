//! Preparation jobs that `test` runs beside `up` and the test suites at a lower CPU
//! priority (nice), so on a cold machine they use the CPU that the Go builds' link
//! steps, the image downloads and the suites' waiting on containers leave idle,
//! instead of adding their whole build time to the run.

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct Job {
    name: &'static str,
    child: Child,
    log: PathBuf,
    started: Instant,
}

/// Running jobs; any still running when this is dropped (a failed `up`, an early
/// error) are killed with their whole process group.
#[derive(Default)]
pub struct Background {
    jobs: Vec<Job>,
}

impl Background {
    /// Starts `cmd` under `nice -n <niceness>` in its own process group, output to `log`.
    pub fn spawn(
        &mut self,
        name: &'static str,
        niceness: u8,
        cmd: &Command,
        log: PathBuf,
    ) -> Result<()> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut nice = Command::new("nice");
        nice.arg("-n")
            .arg(niceness.to_string())
            .arg(cmd.get_program())
            .args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            nice.current_dir(dir);
        }
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => nice.env(k, v),
                None => nice.env_remove(k),
            };
        }
        let child = nice
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the background job `{name}`"))?;
        eprintln!(
            "==> started in the background (nice {niceness}): {name}; log {}",
            log.display()
        );
        self.jobs.push(Job {
            name,
            child,
            log,
            started: Instant::now(),
        });
        Ok(())
    }

    /// Waits for the job `name` (if it was started) and fails with its log's tail if it failed.
    pub fn wait(&mut self, name: &str) -> Result<()> {
        let Some(i) = self.jobs.iter().position(|j| j.name == name) else {
            return Ok(());
        };
        let mut job = self.jobs.remove(i);
        let status = match job.child.try_wait()? {
            // Ended some time ago: when exactly is unknown, so no duration is claimed.
            Some(status) => {
                eprintln!("==> background job `{name}` had ended ({status})");
                status
            }
            None => {
                eprintln!(
                    "==> waiting for the background job `{name}` (log {})",
                    job.log.display()
                );
                let status = job.child.wait()?;
                eprintln!(
                    "==> background job `{name}` ended {:.0} s after its start ({status})",
                    job.started.elapsed().as_secs_f64()
                );
                status
            }
        };
        if !status.success() {
            let text = std::fs::read_to_string(&job.log).unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "background job `{name}` failed ({status}); log {}:\n{}",
                job.log.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for job in &mut self.jobs {
            if let Ok(None) = job.child.try_wait() {
                // The job leads its own process group: end its children (go, rustc) too.
                crate::support::procs::kill_group(job.child.id());
                let _ = job.child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("capd-rs-bg-{}-{name}.log", std::process::id()))
    }

    #[test]
    fn waits_for_a_job_and_reports_its_failure_with_the_log() {
        let mut bg = Background::default();
        let mut ok = Command::new("sh");
        ok.args(["-c", "echo built"]);
        bg.spawn("ok", 19, &ok, log("ok")).unwrap();
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo 'error: no linker'; exit 3"]);
        bg.spawn("bad", 19, &bad, log("bad")).unwrap();
        bg.wait("ok").unwrap();
        assert_eq!(std::fs::read_to_string(log("ok")).unwrap(), "built\n");
        let err = format!("{:#}", bg.wait("bad").unwrap_err());
        assert!(
            err.contains("`bad` failed") && err.contains("error: no linker"),
            "{err}"
        );
        // A job that was never started (or already waited for) is not waited for.
        bg.wait("ok").unwrap();
    }

    #[test]
    fn jobs_still_running_are_killed_with_their_children_on_drop() {
        let pidfile = log("pid");
        let mut cmd = Command::new("sh");
        // The grandchild `sleep` must go too, not only the shell.
        cmd.args([
            "-c",
            &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
        ]);
        let mut bg = Background::default();
        bg.spawn("sleeper", 19, &cmd, log("sleeper")).unwrap();
        let pid = crate::support::steps::wait_for(
            "the pid file",
            std::time::Duration::from_secs(10),
            || {
                Ok(std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok()))
            },
        )
        .unwrap();
        assert!(crate::support::procs::alive(pid, "sleep"));
        drop(bg);
        crate::support::steps::wait_for(
            "sleep to be gone",
            std::time::Duration::from_secs(10),
            || Ok((!crate::support::procs::alive(pid, "sleep")).then_some(())),
        )
        .unwrap();
    }
}
