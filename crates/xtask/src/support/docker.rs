//! The `docker` CLI, bound to the engine in use (`DOCKER_HOST`, or the default socket).

use std::process::Command;

pub const SOCKET: &str = "/var/run/docker.sock";

pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| format!("unix://{SOCKET}"))
}

/// `docker` CLI bound to the engine in use.
pub fn docker() -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", docker_host());
    c
}
