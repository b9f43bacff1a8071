//! What the workload-cluster tests (default flavour, the book's quick start) share: the
//! containers of a cluster, and a guard that removes them whatever happened.

use crate::cmd::docker;
use capd_testenv::TestEnv;

/// IDs of every container, running or not, labelled `io.x-k8s.kind.cluster=<cluster>`.
pub fn containers_of(env: &TestEnv, cluster: &str) -> Vec<String> {
    let out = docker(env)
        .args(["ps", "-aq", "--filter", &format!("label=io.x-k8s.kind.cluster={cluster}")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    out.split_whitespace().map(String::from).collect()
}

/// Removes what a failed run left, so the next run starts clean.
pub struct Cleanup<'a> {
    pub env: &'a TestEnv,
    pub cluster: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = containers_of(self.env, &self.cluster);
        if !ids.is_empty() {
            let _ = docker(self.env).args(["rm", "-f", "-v"]).args(&ids).output();
        }
    }
}
