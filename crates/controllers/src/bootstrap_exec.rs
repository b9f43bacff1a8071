//! Runs a bootstrap plan inside a node container, exactly once even across manager
//! and container restarts: every action is wrapped so the node records, in
//! [`STEPS_DIR`], when it started (`N.started`) and how it ended (`N.done` holds the
//! exit code). A restarted manager skips finished actions and waits for one still
//! running (a `docker exec` outlives the client that started it), instead of running
//! anything twice.

use capd_bootstrap::{Action, Plan};
use capd_runtime::{ContainerRuntime, ExecRequest};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Under /var, the node container's volume: /run is a tmpfs, emptied when the engine
/// restarts the container, and a restart mid-bootstrap would then run it all again
/// (a second `kubeadm init`). CAPD's own sentinel stays in /run, where CAPD writes it.
pub const STEPS_DIR: &str = "/var/lib/capd-rs/bootstrap/steps";

/// Where earlier releases kept the markers. Still read, as a fallback to [`STEPS_DIR`]:
/// a node an earlier manager was bootstrapping must resume there, not start over.
pub const LEGACY_STEPS_DIR: &str = "/run/cluster-api/capd-rs/steps";
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
    let mut argv = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        script,
        "capd-step".to_string(),
    ];
    argv.extend(action.argv.iter().cloned());
    argv
}

/// Parses `path content` lines of the marker files in [`STEPS_DIR`] and
/// [`LEGACY_STEPS_DIR`] into (index → exit code, or None when only started). A step
/// recorded in both places counts as recorded in [`STEPS_DIR`].
pub fn parse_markers(listing: &str) -> BTreeMap<usize, Option<i64>> {
    let (mut current, mut legacy) = (BTreeMap::new(), BTreeMap::new());
    for line in listing.lines() {
        let (path, content) = line.split_once(' ').unwrap_or((line, ""));
        let Some((dir, file)) = path.rsplit_once('/') else {
            continue;
        };
        let into = match dir {
            STEPS_DIR => &mut current,
            LEGACY_STEPS_DIR => &mut legacy,
            _ => continue,
        };
        if let Some(i) = file.strip_suffix(".done").and_then(|n| n.parse().ok()) {
            into.insert(i, content.trim().parse().ok().or(Some(-1)));
        } else if let Some(i) = file
            .strip_suffix(".started")
            .and_then(|n| n.parse::<usize>().ok())
        {
            into.entry(i).or_insert(None);
        }
    }
    for (i, state) in legacy {
        current.entry(i).or_insert(state);
    }
    current
}

/// The shell loop printing `path content` for every marker file in both places.
fn listing_script() -> String {
    format!("for d in {STEPS_DIR} {LEGACY_STEPS_DIR}; do for f in \"$d\"/*; do [ -f \"$f\" ] && printf '%s %s\\n' \"$f\" \"$(cat \"$f\")\"; done; done; true")
}

async fn markers(
    rt: &dyn ContainerRuntime,
    node: &str,
) -> Result<BTreeMap<usize, Option<i64>>, capd_runtime::Error> {
    let out = rt
        .exec(node, ExecRequest::new(["/bin/sh", "-c", &listing_script()]))
        .await?;
    Ok(parse_markers(&out.stdout_lossy()))
}

/// The command telling whether step records exist in either place: `yes` or `no`.
pub fn progress_check_command() -> Vec<String> {
    let script =
        format!("test -d {STEPS_DIR} || test -d {LEGACY_STEPS_DIR} && echo yes || echo no");
    vec!["/bin/sh".into(), "-c".into(), script]
}

/// Whether our step records exist in `node` (then [`run`] resumes from them).
pub async fn progress_exists(
    rt: &dyn ContainerRuntime,
    node: &str,
) -> Result<bool, capd_runtime::Error> {
    let out = rt
        .exec(node, ExecRequest::new(progress_check_command()))
        .await?;
    Ok(out.stdout_lossy().trim() == "yes")
}

/// Runs (or resumes) `plan` in `node` within `timeout`. Engine errors are returned
/// as errors (the reconcile retries); a failing command is an `Outcome::Failed`.
pub async fn run(
    rt: &dyn ContainerRuntime,
    node: &str,
    plan: &Plan,
    timeout: Duration,
) -> Result<Outcome, capd_runtime::Error> {
    let deadline = Instant::now() + timeout;
    let done = markers(rt, node).await?;
    let (mut ran, mut skipped) = (0, 0);
    for (i, action) in plan.actions.iter().enumerate() {
        let command = action.command_line();
        let mut state = done.get(&i).copied();
        // Started by an earlier manager and maybe still running: wait for its end. One
        // cut off by a container restart never ends; it fails at the timeout rather
        // than run twice.
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
        output_tail: format!(
            "bootstrap did not finish within bootstrapTimeout ({}s)",
            timeout.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &str, lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{dir}/{l}\n")).collect()
    }

    #[test]
    fn markers_parse_started_and_done() {
        let m = parse_markers(&listing(
            STEPS_DIR,
            &[
                "0.started ",
                "0.done 0",
                "1.started ",
                "2.done 3",
                "2.started ",
                "junk",
            ],
        ));
        assert_eq!(m.get(&0), Some(&Some(0)));
        assert_eq!(m.get(&1), Some(&None));
        assert_eq!(m.get(&2), Some(&Some(3)));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn markers_live_on_the_volume_not_on_the_tmpfs() {
        assert!(
            STEPS_DIR.starts_with("/var/"),
            "/var is the node container's volume"
        );
        assert!(
            !STEPS_DIR.starts_with("/run/") && !STEPS_DIR.starts_with("/tmp/"),
            "tmpfs in node containers"
        );
        let a = Action {
            argv: vec!["true".into()],
            stdin: None,
            retries: 0,
            description: "runcmd[0]".into(),
            kind: capd_bootstrap::ActionKind::RunCommand {
                index: 0,
                kubeadm: false,
            },
        };
        assert!(wrapped(0, &a)[2].contains(&format!("{STEPS_DIR}/0.done")));
        assert!(
            !wrapped(0, &a)[2].contains(LEGACY_STEPS_DIR),
            "new markers are never written to the old place"
        );
        let script = listing_script();
        assert!(
            script.contains(STEPS_DIR) && script.contains(LEGACY_STEPS_DIR),
            "{script}"
        );
        let check = progress_check_command().join(" ");
        assert!(
            check.contains(STEPS_DIR) && check.contains(LEGACY_STEPS_DIR),
            "{check}"
        );
    }

    #[test]
    fn markers_of_an_earlier_release_fill_in_what_the_new_place_lacks() {
        // An earlier manager finished steps 0 and 1 and started 2 (its exec still runs
        // and will write 2.done there); this one went on with nothing yet.
        let old = listing(
            LEGACY_STEPS_DIR,
            &[
                "0.started ",
                "0.done 0",
                "1.started ",
                "1.done 0",
                "2.started ",
            ],
        );
        let m = parse_markers(&old);
        assert_eq!(
            m,
            BTreeMap::from([(0, Some(0)), (1, Some(0)), (2, None)]),
            "nothing done there runs again"
        );
        // Both places: the new one wins for a step it knows.
        let both = format!(
            "{}{old}",
            listing(STEPS_DIR, &["2.started ", "2.done 1", "3.started "])
        );
        assert_eq!(
            parse_markers(&both),
            BTreeMap::from([(0, Some(0)), (1, Some(0)), (2, Some(1)), (3, None)])
        );
        // Files elsewhere are not markers.
        assert!(parse_markers("/tmp/0.done 0\n0.done 0\n").is_empty());
    }

    #[test]
    fn wrapper_keeps_argv_verbatim_after_the_script() {
        let a = Action {
            argv: vec!["echo".into(), "a b".into(), "$HOME".into()],
            stdin: None,
            retries: 0,
            description: "runcmd[0]".into(),
            kind: capd_bootstrap::ActionKind::RunCommand {
                index: 0,
                kubeadm: false,
            },
        };
        let w = wrapped(7, &a);
        assert_eq!(&w[..2], ["/bin/sh", "-c"]);
        assert!(w[2].contains("/7.started") && w[2].contains("/7.done") && w[2].contains("\"$@\""));
        assert_eq!(&w[3..], ["capd-step", "echo", "a b", "$HOME"]);
    }
}
