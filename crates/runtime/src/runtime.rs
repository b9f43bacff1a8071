//! The trait controllers use to drive a container engine.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{output_tail, Error, Result};
use crate::info::{
    ByteStream, ContainerInfo, ContainerSummary, EngineInfo, ExecOutput, ExecRequest, LabelFilter,
};
use crate::spec::{ContainerSpec, NetworkSpec};

/// Lines of output kept in an [`Error::ExecFailed`].
const TAIL_LINES: usize = 20;
const TAIL_BYTES: usize = 4096;

/// Everything the provider asks of a container engine. Object-safe: controllers hold
/// an `Arc<dyn ContainerRuntime>` and never learn which engine answers.
///
/// Containers are addressed by name or ID. Calls that act on a missing container
/// return [`Error::NotFound`], except [`ContainerRuntime::inspect_container`] (which
/// returns `None`) and [`ContainerRuntime::remove_container`] (which succeeds), so
/// reconcilers can be idempotent without matching on errors.
#[async_trait]
pub trait ContainerRuntime: Send + Sync + std::fmt::Debug {
    /// The engine's address, for logs and messages.
    fn endpoint(&self) -> &str;

    /// Who answers at the endpoint; a cheap reachability check.
    async fn engine_info(&self) -> Result<EngineInfo>;

    /// CPUs and memory of the engine's host (`docker info`'s NCPU and MemTotal).
    async fn host_capacity(&self) -> Result<crate::HostCapacity>;

    /// Creates the network unless one of that name exists (an existing one is left
    /// as it is, whatever its settings).
    async fn ensure_network(&self, spec: &NetworkSpec) -> Result<()>;

    /// The subnets of a network (its IPAM configuration), e.g. `172.18.0.0/16`.
    async fn network_subnets(&self, network: &str) -> Result<Vec<String>>;

    /// Whether the image is present in the engine.
    async fn image_present(&self, image: &str) -> Result<bool>;

    /// Makes sure the image is present, pulling it when a registry is reachable.
    /// [`Error::ImageMissing`] when it is neither present nor pullable.
    async fn ensure_image(&self, image: &str) -> Result<()>;

    /// Creates a container without starting it (files can be written into it before
    /// it starts); returns its ID. The image must be present or pullable.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String>;

    /// Starts a created or stopped container.
    async fn start_container(&self, container: &str) -> Result<()>;

    /// State, addresses and published ports; `None` when there is no such container.
    async fn inspect_container(&self, container: &str) -> Result<Option<ContainerInfo>>;

    /// Containers, running or not, matching every condition of the filter.
    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerSummary>>;

    /// Runs a command in a running container. A non-zero exit is not an error here;
    /// see [`ContainerRuntime::exec_checked`].
    async fn exec(&self, container: &str, request: ExecRequest) -> Result<ExecOutput>;

    /// Sends a signal (`SIGHUP`, `SIGTERM`, ...) to the container's main process.
    async fn signal(&self, container: &str, signal: &str) -> Result<()>;

    /// Stops the container, killing it after `grace`.
    async fn stop_container(&self, container: &str, grace: Duration) -> Result<()>;

    /// Removes the container, running or not, with its anonymous volumes. Succeeds
    /// when it is already gone.
    async fn remove_container(&self, container: &str) -> Result<()>;

    /// Writes a regular file into the container (parent directories are created).
    async fn write_file(
        &self,
        container: &str,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<()>;

    /// Writes several regular files into the container, `(path, contents, mode)` each.
    /// The engine's implementation sends files of one directory as one archive (one
    /// request instead of one per file); this default writes them one by one.
    async fn write_files(&self, container: &str, files: &[(&str, &[u8], u32)]) -> Result<()> {
        for (path, contents, mode) in files {
            self.write_file(container, path, contents, *mode).await?;
        }
        Ok(())
    }

    /// Reads a regular file from the container.
    async fn read_file(&self, container: &str, path: &str) -> Result<Vec<u8>>;

    /// The image as a `docker save` tar stream.
    async fn save_image(&self, image: &str) -> Result<ByteStream>;

    /// Creates and starts a container; returns its ID. When the start fails (e.g. a
    /// port clash) the container is removed again, so the call can simply be retried.
    async fn run_container(&self, spec: &ContainerSpec) -> Result<String> {
        let id = self.create_container(spec).await?;
        if let Err(start_err) = self.start_container(&id).await {
            // Leave nothing half-made behind: a retry must be able to reuse the name.
            if let Err(rm_err) = self.remove_container(&id).await {
                tracing::warn!(container = %spec.name, error = %rm_err, "could not remove container that failed to start");
            }
            return Err(start_err);
        }
        Ok(id)
    }

    /// [`ContainerRuntime::exec`] bounded by `timeout`: [`Error::Timeout`] (operation
    /// `exec`) when the command has not ended by then. For quick probes that must not
    /// hold a reconcile: the engine cannot kill an exec, so a command that overruns
    /// keeps running in the container until it ends by itself; only the wait is cut.
    async fn exec_timeout(
        &self,
        container: &str,
        request: ExecRequest,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        match tokio::time::timeout(timeout, self.exec(container, request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation: "exec",
                after: timeout,
            }),
        }
    }

    /// [`ContainerRuntime::exec`], turning a non-zero exit into [`Error::ExecFailed`]
    /// carrying the command and the tail of its output.
    async fn exec_checked(&self, container: &str, request: ExecRequest) -> Result<ExecOutput> {
        let command = request.display();
        let out = self.exec(container, request).await?;
        if out.success() {
            return Ok(out);
        }
        let text = crate::join_streams(out.stdout_lossy(), &out.stderr_lossy());
        Err(Error::ExecFailed {
            container: container.to_string(),
            command,
            exit_code: out.exit_code,
            output_tail: output_tail(&text, TAIL_LINES, TAIL_BYTES),
        })
    }

    /// Copies an image from the engine into a node's containerd (`preLoadImages`):
    /// `docker save` streamed into `ctr -n k8s.io images import -` inside the node.
    async fn load_image_into_node(&self, container: &str, image: &str) -> Result<()> {
        use tracing::Instrument;
        let span = tracing::info_span!("load_image_into_node", container, image);
        async {
            let archive = self.save_image(image).await?;
            let request = ExecRequest::new(["ctr", "--namespace=k8s.io", "images", "import", "-"])
                .stdin_stream(archive);
            self.exec_checked(container, request).await.map(|_| ())
        }
        .instrument(span)
        .await
    }
}
