//! Running host commands (`ip`, `iptables`, `ip6tables`).
//!
//! The daemon shells out to iproute2 and iptables instead of using netlink/nftables crates: both
//! tools are in the image anyway, the handful of operations (replace/delete/list routes, a chain
//! with a few rules) map one to one onto commands, iptables' own binary keeps the rules in
//! whatever backend (legacy or nft) the node's kube-proxy uses and honours `/run/xtables.lock`,
//! and the crate stays free of heavy or unsafe dependencies. The [`Runner`] trait keeps the
//! decision logic testable with a fake.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("running {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} exited with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// Output of a command that exited successfully.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
}

/// Runs a program with arguments; a non-zero exit is an [`ExecError::Failed`].
pub trait Runner {
    fn run(&self, program: &str, args: &[String]) -> Result<Output, ExecError>;
}

/// Renders a command line for logs and errors.
pub fn display(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs real processes (blocking; call from a blocking context).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, program: &str, args: &[String]) -> Result<Output, ExecError> {
        let out = Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .map_err(|source| ExecError::Spawn {
                command: display(program, args),
                source,
            })?;
        if !out.status.success() {
            return Err(ExecError::Failed {
                command: display(program, args),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        })
    }
}

/// A scripted runner for tests: records every command and answers from a table.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct FakeRunner {
        /// (command-line prefix, result): the first matching entry answers; no match is success
        /// with empty output.
        pub answers: Vec<(String, Result<String, String>)>,
        pub calls: RefCell<Vec<String>>,
    }

    impl FakeRunner {
        pub fn answer(mut self, prefix: &str, result: Result<&str, &str>) -> Self {
            self.answers.push((
                prefix.to_string(),
                result.map(str::to_string).map_err(str::to_string),
            ));
            self
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl Runner for FakeRunner {
        fn run(&self, program: &str, args: &[String]) -> Result<Output, ExecError> {
            let line = display(program, args);
            self.calls.borrow_mut().push(line.clone());
            match self
                .answers
                .iter()
                .find(|(p, _)| line.starts_with(p.as_str()))
            {
                Some((_, Ok(stdout))) => Ok(Output {
                    stdout: stdout.clone(),
                }),
                Some((_, Err(stderr))) => Err(ExecError::Failed {
                    command: line,
                    status: "exit status: 1".into(),
                    stderr: stderr.clone(),
                }),
                None => Ok(Output::default()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_runner_reports_failures() {
        let ok = SystemRunner
            .run("sh", &["-c".into(), "echo hi".into()])
            .unwrap();
        assert_eq!(ok.stdout, "hi\n");
        let err = SystemRunner
            .run("sh", &["-c".into(), "echo boom >&2; exit 3".into()])
            .unwrap_err();
        match err {
            ExecError::Failed {
                command, stderr, ..
            } => {
                assert_eq!(command, "sh -c echo boom >&2; exit 3");
                assert_eq!(stderr, "boom");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            SystemRunner.run("/nonexistent/capd-podnet-binary", &[]),
            Err(ExecError::Spawn { .. })
        ));
    }
}
