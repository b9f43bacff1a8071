//! Runs a bootstrap plan inside a node container, exactly once even across manager
//! restarts: every action is wrapped so the node records, in
//! `/run/cluster-api/capd-rs/steps/`, when it started (`N.started`) and how it ended
//! (`N.done` holds the exit code). A restarted manager skips finished actions and
//! waits for one still running (a `docker exec` outlives the client that started it),
//! instead of running anything twice.

use capd_bootstrap::{Action, Plan};
use capd_runtime::{ContainerRuntime, ExecRequest};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const STEPS_DIR: &str = "/run/cluster-api/capd-rs/steps";
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Why a bootstrap failed, for the `BootstrapCompleted=False/Failed` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub description: String,
    pub command: String,
    pub exit_code: Option<i64>,
    pub output_tail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}`", self.description, self.command)?;
        if let Some(code) = self.exit_code {
            write!(f, " exited with {code}")?;
        }
        if !self.output_tail.is_empty() {
            write!(f, ": {}", self.output_tail)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed { ran: usize, skipped: usize },
    Failed(Failure),
}

/// The argv that runs `action` as step `index` and records its start and exit code.
pub fn wrapped(index: usize, action: &Action) -> Vec<String> {
    let script = format!(
        "mkdir -p {STEPS_DIR} && : > {STEPS_DIR}/{index}.started && \"$@\"; rc=$?; echo $rc > {STEPS_DIR}/{index}.done; exit $rc"
    );
    let mut argv = vec!["/bin/sh".to_string(), "-c".to_string(), script, "capd-step".to_string()];
    argv.extend(action.argv.iter().cloned());
    argv
}

/// Parses `name content` lines of the steps directory into (index → exit code or None
/// when only started).
pub fn parse_markers(listing: &str) -> BTreeMap<usize, Option<i64>> {
    let mut out: BTreeMap<usize, Option<i64>> = BTreeMap::new();
    for line in listing.lines() {
        let mut parts = line.splitn(2, ' ');
        let (Some(file), content) = (parts.next(), parts.next().unwrap_or("").trim()) else { continue };
        if let Some(i) = file.strip_suffix(".done").and_then(|n| n.parse().ok()) {
            out.insert(i, content.parse().ok().or(Some(-1)));
        } else if let Some(i) = file.strip_suffix(".started").and_then(|n| n.parse::<usize>().ok()) {
            out.entry(i).or_insert(None);
        }
    }
    out
}

async fn markers(rt: &dyn ContainerRuntime, node: &str) -> Result<BTreeMap<usize, Option<i64>>, capd_runtime::Error> {
    let script = format!("cd {STEPS_DIR} 2>/dev/null || exit 0; for f in *; do [ -f \"$f\" ] && printf '%s %s\\n' \"$f\" \"$(cat \"$f\")\"; done; true");
    let out = rt.exec(node, ExecRequest::new(["/bin/sh", "-c", &script])).await?;
    Ok(parse_markers(&out.stdout_lossy()))
}

/// Runs (or resumes) `plan` in `node` within `timeout`. Engine errors are returned
/// as errors (the reconcile retries); a failing command is an `Outcome::Failed`.
pub async fn run(rt: &dyn ContainerRuntime, node: &str, plan: &Plan, timeout: Duration) -> Result<Outcome, capd_runtime::Error> {
    let deadline = Instant::now() + timeout;
    let done = markers(rt, node).await?;
    let (mut ran, mut skipped) = (0, 0);
    for (i, action) in plan.actions.iter().enumerate() {
        let command = action.command_line();
        let mut state = done.get(&i).copied();
        // Started by an earlier manager and maybe still running: wait for its end.
        while state == Some(None) {
            if Instant::now() > deadline {
                return Ok(Outcome::Failed(timed_out(action, timeout)));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            state = markers(rt, node).await?.get(&i).copied();
        }
        if let Some(Some(code)) = state {
            if code == 0 {
                skipped += 1;
                continue;
            }
            return Ok(Outcome::Failed(Failure {
                description: action.description.clone(),
                command,
                exit_code: Some(code),
                output_tail: "(failed in an earlier attempt; output not kept)".into(),
            }));
        }
        let mut attempt = 0;
        loop {
            let mut req = ExecRequest::new(wrapped(i, action));
            if let Some(stdin) = &action.stdin {
                req = req.stdin(stdin.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let out = match tokio::time::timeout(left, rt.exec(node, req)).await {
                Ok(r) => r?,
                Err(_) => return Ok(Outcome::Failed(timed_out(action, timeout))),
            };
            if out.success() {
                ran += 1;
                break;
            }
            if attempt >= action.retries || Instant::now() + RETRY_DELAY > deadline {
                // stdout first: the tail kept is the end of stderr, where the error is
                // (kubeadm prints its progress on stdout and the failure on stderr).
                let text = format!("{}{}", out.stdout_lossy(), out.stderr_lossy());
                return Ok(Outcome::Failed(Failure {
                    description: action.description.clone(),
                    command,
                    exit_code: Some(out.exit_code),
                    output_tail: capd_runtime::output_tail(&text, 10, 1024),
                }));
            }
            attempt += 1;
            tracing::info!(node, step = i, attempt, "bootstrap step failed; retrying");
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }
    Ok(Outcome::Completed { ran, skipped })
}

fn timed_out(action: &Action, timeout: Duration) -> Failure {
    Failure {
        description: action.description.clone(),
        command: action.command_line(),
        exit_code: None,
        output_tail: format!("bootstrap did not finish within bootstrapTimeout ({}s)", timeout.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_started_and_done() {
        let m = parse_markers("0.started \n0.done 0\n1.started \n2.done 3\n2.started \njunk\n");
        assert_eq!(m.get(&0), Some(&Some(0)));
        assert_eq!(m.get(&1), Some(&None));
        assert_eq!(m.get(&2), Some(&Some(3)));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn wrapper_keeps_argv_verbatim_after_the_script() {
        let a = Action {
            argv: vec!["echo".into(), "a b".into(), "$HOME".into()],
            stdin: None,
            retries: 0,
            description: "runcmd[0]".into(),
            kind: capd_bootstrap::ActionKind::RunCommand { index: 0, kubeadm: false },
        };
        let w = wrapped(7, &a);
        assert_eq!(&w[..2], ["/bin/sh", "-c"]);
        assert!(w[2].contains("/7.started") && w[2].contains("/7.done") && w[2].contains("\"$@\""));
        assert_eq!(&w[3..], ["capd-step", "echo", "a b", "$HOME"]);
    }
}
