//! Shared by the tests that run against the test environment's engine.
#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;

use capd_runtime::{ContainerRuntime, ContainerSpec, DockerRuntime, NetworkSpec};
use capd_testenv::TestEnv;
use futures::FutureExt;

/// `ENGINE_OVERRIDE_ENV`: another engine's address (e.g. Podman's socket) to run these
/// tests against instead of the environment's Docker; `TEST_LABEL` on every container a
/// test makes, so `cargo xtask down` removes leftovers; `TEST_NETWORK` shared by the tests.
pub use capd_testenv::{ENGINE_OVERRIDE_ENV, TEST_LABEL, TEST_NETWORK};
pub const KIND_CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

pub struct Engine {
    pub env: TestEnv,
    pub rt: DockerRuntime,
}

impl Engine {
    pub fn haproxy_image(&self) -> &str {
        &self.env.state.images.haproxy
    }
}

pub fn engine() -> Engine {
    let env = TestEnv::load().expect("test environment (cargo xtask up)");
    let host = std::env::var(ENGINE_OVERRIDE_ENV).unwrap_or_else(|_| env.docker_host().to_string());
    let rt = DockerRuntime::new(&host).expect("engine address");
    Engine { env, rt }
}

pub async fn test_network(rt: &dyn ContainerRuntime) -> String {
    rt.ensure_network(&NetworkSpec::bridge(TEST_NETWORK).label(TEST_LABEL, "true"))
        .await
        .expect("test network");
    TEST_NETWORK.to_string()
}

/// A container spec carrying the test labels.
pub fn test_container(name: &str, image: &str, cluster: &str) -> ContainerSpec {
    ContainerSpec::new(name, image)
        .label(TEST_LABEL, "true")
        .label(KIND_CLUSTER_LABEL, cluster)
}

/// Runs `body`, then removes `containers` whatever happened, then re-raises.
pub async fn with_cleanup<F>(rt: &dyn ContainerRuntime, containers: &[String], body: F)
where
    F: Future<Output = ()>,
{
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    for c in containers {
        if let Err(e) = rt.remove_container(c).await {
            eprintln!("cleanup of {c} failed: {e}");
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
