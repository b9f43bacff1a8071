//! `docker exec` with stdin, capturing stdout, stderr and the exit code.

use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::errors::Ctx;
use super::DockerRuntime;
use crate::error::{Error, ObjectKind, Result};
use crate::info::{ExecOutput, ExecRequest, Stdin};

/// How long to wait for the engine to record the exit code once output has ended.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(10);

impl DockerRuntime {
    pub(super) async fn exec_impl(
        &self,
        container: &str,
        request: ExecRequest,
    ) -> Result<ExecOutput> {
        let docker = self.client().await?;
        let ctx = self.ctx("exec", ObjectKind::Container, container);
        let config = ExecConfig {
            attach_stdin: Some(request.stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            env: (!request.env.is_empty()).then(|| {
                request
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            }),
            cmd: Some(request.argv.clone()),
            // Nodes remount and load images; CAPD runs every exec privileged too.
            privileged: Some(true),
            user: request.user.clone(),
            working_dir: request.working_dir.clone(),
            ..Default::default()
        };
        let created = docker
            .create_exec(container, config)
            .await
            .map_err(|e| self.map(e, ctx))?;
        let started = docker
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.map(e, ctx))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(Error::Transport {
                operation: "exec",
                message: "engine detached an attached exec".into(),
            });
        };

        // Feed stdin while reading output: a command that fills its output pipe
        // before draining stdin would otherwise deadlock.
        let feed = async move {
            match request.stdin {
                None => Ok(()),
                Some(Stdin::Bytes(bytes)) => {
                    input.write_all(&bytes).await?;
                    input.shutdown().await
                }
                Some(Stdin::Stream(mut stream)) => {
                    while let Some(chunk) = stream.next().await {
                        input.write_all(&chunk?).await?;
                    }
                    input.shutdown().await
                }
            }
        };
        let drain = async {
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            while let Some(frame) = output.next().await {
                match frame {
                    Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                        stdout.extend_from_slice(&message)
                    }
                    Ok(LogOutput::StdErr { message }) => stderr.extend_from_slice(&message),
                    Ok(LogOutput::StdIn { .. }) => {}
                    Err(e) => return Err(self.map(e, ctx)),
                }
            }
            Ok((stdout, stderr))
        };
        let (fed, drained) = tokio::join!(feed, drain);
        let (stdout, stderr) = drained?;
        if let Err(e) = fed {
            // The command may legitimately exit without reading all of stdin; its
            // exit code tells. Only a broken engine connection is our failure.
            tracing::debug!(error = %e, "exec stdin closed early");
        }

        let exit_code = self.exit_code(&created.id, ctx).await?;
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code,
        })
    }

    /// The exit code, once the engine has noticed the process ended (it can lag the
    /// end of the output stream by a few milliseconds).
    async fn exit_code(&self, exec_id: &str, ctx: Ctx<'_>) -> Result<i64> {
        let docker = self.client().await?;
        let deadline = tokio::time::Instant::now() + EXIT_CODE_WAIT;
        let mut delay = Duration::from_millis(5);
        loop {
            let inspect = docker
                .inspect_exec(exec_id)
                .await
                .map_err(|e| self.map(e, ctx))?;
            if inspect.running != Some(true) {
                if let Some(code) = inspect.exit_code {
                    return Ok(code);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Transport {
                    operation: "exec",
                    message: format!(
                        "exec {exec_id} output ended but no exit code after {EXIT_CODE_WAIT:?}"
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }
}
