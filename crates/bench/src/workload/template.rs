//! The default flavour (templates/cluster-template.yaml) rendered as `clusterctl generate
//! cluster NAME --from templates/cluster-template.yaml --kubernetes-version V
//! --control-plane-machine-count C --worker-machine-count W --target-namespace NS` does:
//! clusterctl's variable substitution (`${VAR}`, `${VAR:=default}`, `${VAR:-default}`),
//! in process, so that N clusters are rendered without N clusterctl runs.

use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// Path of the default flavour under the workspace root.
pub const TEMPLATE: &str = "templates/cluster-template.yaml";

/// What `clusterctl generate cluster` is given on the command line.
pub struct Flavour<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub kubernetes_version: &'a str,
    pub control_plane: usize,
    pub workers: usize,
}

impl Flavour<'_> {
    /// The variables clusterctl sets from its flags.
    pub fn variables(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("CLUSTER_NAME", self.cluster.to_string()),
            ("NAMESPACE", self.namespace.to_string()),
            ("KUBERNETES_VERSION", self.kubernetes_version.to_string()),
            (
                "CONTROL_PLANE_MACHINE_COUNT",
                self.control_plane.to_string(),
            ),
            ("WORKER_MACHINE_COUNT", self.workers.to_string()),
        ])
    }

    /// The rendered documents, as JSON.
    pub fn render(&self, template: &str) -> Result<Vec<serde_json::Value>> {
        let text = substitute(template, &self.variables())?;
        Ok(capd_testenv::manifests::parse_docs(&text, TEMPLATE)?)
    }
}

/// Replaces `${NAME}` and `${NAME:=default}` / `${NAME:-default}` / `${NAME=default}` /
/// `${NAME-default}` with the variable's value; a variable without a value and without a
/// default is an error (clusterctl reports it as missing). Text outside `${...}` is kept.
pub fn substitute(text: &str, vars: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            bail!(
                "{TEMPLATE}: unterminated ${{ in {:?}",
                after.chars().take(40).collect::<String>()
            )
        };
        let expr = &after[..end];
        let name_end = expr
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len());
        let (name, op) = expr.split_at(name_end);
        let default = [":=", ":-", "=", "-"]
            .iter()
            .find_map(|p| op.strip_prefix(p));
        if name.is_empty() || (default.is_none() && !op.is_empty()) {
            bail!("{TEMPLATE}: unsupported expression ${{{expr}}}");
        }
        match (vars.get(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => bail!("{TEMPLATE}: variable {name} has no value"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_values_and_defaults() {
        let vars = BTreeMap::from([("A", "x".to_string()), ("E", String::new())]);
        assert_eq!(
            substitute("a: ${A}, b: ${B:=[\"1\"]}, e: ${E:-d}", &vars).unwrap(),
            "a: x, b: [\"1\"], e: d"
        );
        assert!(substitute("${MISSING}", &vars).is_err());
        assert!(substitute("${A", &vars).is_err());
        assert!(substitute("${A:?oops}", &vars).is_err());
    }

    #[test]
    fn renders_the_default_flavour() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(TEMPLATE);
        let text = std::fs::read_to_string(&path).unwrap();
        let f = Flavour {
            cluster: "b1234gw1-00",
            namespace: "b1234gw1",
            kubernetes_version: "v1.36.3",
            control_plane: 1,
            workers: 1,
        };
        let docs = f.render(&text).unwrap();
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        for k in [
            "Cluster",
            "DockerCluster",
            "KubeadmControlPlane",
            "MachineDeployment",
            "DockerMachineTemplate",
            "KubeadmConfigTemplate",
            "ConfigMap",
            "ClusterResourceSet",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        assert!(docs
            .iter()
            .all(|d| d["metadata"]["namespace"] == "b1234gw1"));
        let kcp = docs
            .iter()
            .find(|d| d["kind"] == "KubeadmControlPlane")
            .unwrap();
        assert_eq!(kcp["spec"]["replicas"], 1);
        assert_eq!(kcp["spec"]["version"], "v1.36.3");
        let cluster = docs.iter().find(|d| d["kind"] == "Cluster").unwrap();
        assert_eq!(
            cluster["spec"]["clusterNetwork"]["pods"]["cidrBlocks"][0],
            "192.168.0.0/16"
        );
        assert_eq!(cluster["metadata"]["labels"]["cni"], "b1234gw1-00-crs-cni");
    }
}
