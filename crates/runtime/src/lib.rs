//! Container runtime for capd-rs: the [`ContainerRuntime`] trait the controllers
//! use, and [`DockerRuntime`], its implementation over the Docker Engine API
//! (Docker 20.10+ and Podman's Docker-compatible socket).
//!
//! The engine tests run against the test environment's Docker (`cargo xtask up`).
//! To run them against Podman instead, serve its socket and point the tests at it:
//!
//! ```text
//! podman system service --time=0 unix:///run/podman/podman.sock &
//! docker save IMAGE | podman load        # the test images, for each of them
//! CAPD_RS_TEST_DOCKER_HOST=unix:///run/podman/podman.sock \
//!     cargo test -p capd-runtime -p capd-loadbalancer -- --test-threads=1
//! ```
//!
//! Podman sets rlimits and CAP_SYS_RESOURCE on every container; where the host
//! forbids that (this project's sandbox does), give it an OCI runtime wrapper that
//! strips both before calling runc (`podman --runtime WRAPPER system service ...`).

mod docker;
mod error;
mod info;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
mod runtime;
mod spec;

pub use docker::{error_chain, DockerOptions, DockerRuntime, Endpoint, DEFAULT_DOCKER_HOST};
pub use error::{join_streams, output_tail, Error, ObjectKind, Result};
pub use info::{
    ByteStream, ContainerInfo, ContainerState, ContainerSummary, EngineInfo, ExecOutput,
    ExecRequest, HostCapacity, LabelFilter, NetworkAddresses, PublishedPort, Stdin,
};
pub use runtime::ContainerRuntime;
pub use spec::{ContainerSpec, Mount, NetworkSpec, PortPublish, Protocol, RestartPolicy};
