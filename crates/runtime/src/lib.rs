//! Container runtime for capd-rs: the [`ContainerRuntime`] trait the controllers
//! use, and [`DockerRuntime`], its implementation over the Docker Engine API
//! (Docker 20.10+ and Podman's Docker-compatible socket).

mod docker;
mod error;
mod info;
mod runtime;
mod spec;

pub use docker::{DockerOptions, DockerRuntime, Endpoint, DEFAULT_DOCKER_HOST};
pub use error::{output_tail, Error, ObjectKind, Result};
pub use info::{
    ByteStream, ContainerInfo, ContainerState, ContainerSummary, EngineInfo, ExecOutput, ExecRequest, LabelFilter,
    NetworkAddresses, PublishedPort, Stdin,
};
pub use runtime::ContainerRuntime;
pub use spec::{ContainerSpec, Mount, NetworkSpec, PortPublish, Protocol, RestartPolicy};
