//! The kind management cluster of the kind suite (`tests/kind.rs`): kind built by the
//! environment (`cargo xtask up`, the version Cluster API v1.14.0 pins), the cluster
//! created from the project's node image, and the images its Pods run built here from
//! binaries the environment already has, since nothing can be pulled.

use crate::cmd::{docker, run};
use anyhow::{anyhow, Context, Result};
use capd_testenv::TestEnv;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment's `kind`, talking to the environment's engine.
pub fn kind(env: &TestEnv) -> Command {
    let mut c = Command::new(env.bin("kind"));
    c.env("DOCKER_HOST", env.docker_host());
    c
}

/// A kind cluster; deleted when dropped unless `CAPD_E2E_KEEP` is set.
pub struct KindCluster {
    pub name: String,
    pub kubeconfig: PathBuf,
    bin: PathBuf,
    docker_host: String,
}

impl KindCluster {
    /// `kind create cluster` from `image` with `config`, its kubeconfig written to
    /// `kubeconfig`; waits until its control plane is Ready. A cluster of the same name
    /// left by an earlier run is deleted first.
    pub fn create(
        env: &TestEnv,
        name: &str,
        image: &str,
        config: &Path,
        kubeconfig: &Path,
    ) -> Result<Self> {
        let cluster = KindCluster {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_path_buf(),
            bin: env.bin("kind"),
            docker_host: env.docker_host().to_string(),
        };
        cluster.delete()?;
        run(kind(env)
            .args(["create", "cluster", "--name", name, "--image", image])
            .arg("--config")
            .arg(config)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--wait", "5m"]))?;
        Ok(cluster)
    }

    /// `kind load docker-image` into every node.
    pub fn load(&self, images: &[String]) -> Result<()> {
        run(self
            .command()
            .args(["load", "docker-image", "--name", &self.name])
            .args(images))
        .map(|_| ())
    }

    /// `kind delete cluster` (nothing to do when there is no such cluster).
    pub fn delete(&self) -> Result<()> {
        run(self
            .command()
            .args(["delete", "cluster", "--name", &self.name]))
        .map(|_| ())
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("DOCKER_HOST", &self.docker_host);
        c
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        if std::env::var_os("CAPD_E2E_KEEP").is_some() {
            eprintln!(
                "CAPD_E2E_KEEP set: keeping kind cluster {} (kubeconfig {})",
                self.name,
                self.kubeconfig.display()
            );
            return;
        }
        let _ = self
            .command()
            .args(["delete", "cluster", "--name", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The environment's binary of the Cluster API manager whose image is `image`
/// (Cluster API's image names: `<repository>/<name>:<tag>`).
pub fn capi_binary_for(image: &str) -> Option<&'static str> {
    let name = image.rsplit('/').next()?.split(':').next()?;
    match name {
        "cluster-api-controller" => Some("capi-manager"),
        "kubeadm-bootstrap-controller" => Some("capi-kubeadm-bootstrap-manager"),
        "kubeadm-control-plane-controller" => Some("capi-kubeadm-control-plane-manager"),
        _ => None,
    }
}

/// Every container image the Deployments in `docs` run.
pub fn deployment_images(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["image"].as_str().map(String::from))
        .collect()
}

/// Builds image `tag` that runs `binary` as `/manager` (as Cluster API's images do),
/// on the environment's base image, as a non-root user.
pub fn build_binary_image(env: &TestEnv, tag: &str, binary: &Path) -> Result<()> {
    let name = tag.replace(['/', ':'], "_");
    let ctx = crate::scratch_dir(&format!("image-{name}"))?;
    std::fs::copy(binary, ctx.join("manager"))
        .with_context(|| format!("copying {} into {}", binary.display(), ctx.display()))?;
    let dockerfile = format!(
        "FROM {base}\nCOPY manager /manager\nUSER 65532:65532\nENTRYPOINT [\"/manager\"]\n",
        base = env.state.images.base
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile)?;
    run(docker(env)
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--force-rm", "-t", tag])
        .args(["--label", &format!("{}=image", capd_testenv::TEST_LABEL)])
        .arg(&ctx))
    .map_err(|e| anyhow!("image {tag} from {}: {e:#}", binary.display()))?;
    let _ = std::fs::remove_dir_all(&ctx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cluster_api_images_map_to_the_environment_binaries() {
        assert_eq!(
            capi_binary_for("example.test/cluster-api/cluster-api-controller:v1.14.0"),
            Some("capi-manager")
        );
        assert_eq!(
            capi_binary_for("example.test/x/kubeadm-control-plane-controller:v1.14.0"),
            Some("capi-kubeadm-control-plane-manager")
        );
        assert_eq!(capi_binary_for("localhost/capd-rs/capd-manager:e2e"), None);
    }

    #[test]
    fn finds_the_images_of_deployments_only() {
        let docs = vec![
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
                {"image": "a:1"}, {"image": "b:2"}]}}}}),
            json!({"kind": "DaemonSet", "spec": {"template": {"spec": {"containers": [
                {"image": "c:3"}]}}}}),
        ];
        assert_eq!(deployment_images(&docs), ["a:1", "b:2"]);
    }
}
