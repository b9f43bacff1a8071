//! Go-built binaries of the pinned versions, built through small wrapper modules
//! (the upstream modules `replace` their sibling modules with local paths, which
//! `go install` refuses) into `~/.cache/capd-rs/go/bin/<set>-<version>`.

use crate::builds::pins;
use crate::support::steps::{Outcome, StepLog};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One upstream module and the binaries built from it.
pub struct GoSet {
    pub name: &'static str,
    pub module: &'static str,
    pub version: &'static str,
    /// (package import path, output binary name)
    pub targets: &'static [(&'static str, &'static str)],
    /// Packages whose version variables are set with -X (gitVersion, gitMajor, gitMinor).
    pub version_pkgs: &'static [&'static str],
}

pub const KUBERNETES: GoSet = GoSet {
    name: "kubernetes",
    module: "k8s.io/kubernetes",
    version: pins::KUBERNETES,
    targets: &[
        ("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
        (
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-controller-manager",
        ),
        ("k8s.io/kubernetes/cmd/kubectl", "kubectl"),
        // The node image and the workload clusters' control-plane images.
        ("k8s.io/kubernetes/cmd/kube-scheduler", "kube-scheduler"),
        ("k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy"),
        ("k8s.io/kubernetes/cmd/kubelet", "kubelet"),
        ("k8s.io/kubernetes/cmd/kubeadm", "kubeadm"),
    ],
    // Without these the binaries say v0.0.0, and Cluster API and clusterctl refuse the server.
    version_pkgs: &[
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ],
};

pub const ETCD: GoSet = GoSet {
    name: "etcd",
    module: "go.etcd.io/etcd/server/v3",
    version: pins::ETCD,
    targets: &[("go.etcd.io/etcd/server/v3", "etcd")],
    version_pkgs: &[],
};

pub const CLUSTER_API: GoSet = GoSet {
    name: "cluster-api",
    module: "sigs.k8s.io/cluster-api",
    version: pins::CLUSTER_API,
    targets: &[
        ("sigs.k8s.io/cluster-api/core", "capi-manager"),
        (
            "sigs.k8s.io/cluster-api/bootstrap/kubeadm",
            "capi-kubeadm-bootstrap-manager",
        ),
        (
            "sigs.k8s.io/cluster-api/controlplane/kubeadm",
            "capi-kubeadm-control-plane-manager",
        ),
        ("sigs.k8s.io/cluster-api/cmd/clusterctl", "clusterctl"),
    ],
    version_pkgs: &["sigs.k8s.io/cluster-api/version"],
};

/// CAPD, the Go Docker provider the benchmark compares with; built on demand by
/// `cargo xtask bench` (not by `up`). Its go.mod replaces `sigs.k8s.io/cluster-api` and
/// `.../api` with `../` and `../api`: the generic rule maps both to the published v1.14.0.
pub const CAPD: GoSet = GoSet {
    name: "capd",
    module: "sigs.k8s.io/cluster-api/test",
    version: pins::CAPD,
    targets: &[(
        "sigs.k8s.io/cluster-api/test/infrastructure/docker",
        "capd-go-manager",
    )],
    version_pkgs: &["sigs.k8s.io/cluster-api/version"],
};

/// CoreDNS for the workload clusters' `registry.k8s.io/coredns/coredns` image.
pub const COREDNS: GoSet = GoSet {
    name: "coredns",
    module: "github.com/coredns/coredns",
    version: pins::COREDNS,
    targets: &[("github.com/coredns/coredns", "coredns")],
    version_pkgs: &[],
};

/// crictl, which the node image carries (CAPD waits for `crictl ps` before bootstrapping).
pub const CRI_TOOLS: GoSet = GoSet {
    name: "cri-tools",
    module: "sigs.k8s.io/cri-tools",
    version: pins::CRI_TOOLS,
    targets: &[("sigs.k8s.io/cri-tools/cmd/crictl", "crictl")],
    version_pkgs: &[],
};

/// kind, for the end-to-end suite's management cluster (`crates/e2e/tests/kind.rs`).
pub const KIND: GoSet = GoSet {
    name: "kind",
    module: "sigs.k8s.io/kind",
    version: pins::KIND,
    targets: &[("sigs.k8s.io/kind", "kind")],
    version_pkgs: &[],
};

/// Built by `up` in this order: the management plane's first, then what only the
/// workload node image and the kind suite need.
pub const ALL: [&GoSet; 6] = [
    &ETCD,
    &KUBERNETES,
    &CLUSTER_API,
    &CRI_TOOLS,
    &COREDNS,
    &KIND,
];

fn go_dir() -> PathBuf {
    crate::support::paths::cache_dir().join("go")
}

/// Environment every `go` command runs with: caches under ~/.cache, no toolchain download.
pub fn go_command(log_dir: &Path) -> Command {
    let mut c = Command::new("go");
    c.env("GOMODCACHE", go_dir().join("mod"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .current_dir(log_dir);
    c
}

impl GoSet {
    pub fn out_dir(&self) -> PathBuf {
        go_dir()
            .join("bin")
            .join(format!("{}-{}", self.name, self.version))
    }

    fn wrapper_dir(&self) -> PathBuf {
        go_dir()
            .join("wrappers")
            .join(format!("{}-{}", self.name, self.version))
    }

    fn complete_marker(&self) -> PathBuf {
        self.out_dir().join(".complete")
    }

    pub fn binaries(&self) -> Vec<PathBuf> {
        self.targets
            .iter()
            .map(|(_, out)| self.out_dir().join(out))
            .collect()
    }

    /// Module source directory in the module cache (downloads it if needed).
    pub fn module_dir(&self, log: &StepLog) -> Result<PathBuf> {
        module_dir(log, self.module, self.version)
    }

    fn ldflags(&self) -> String {
        let v = self.version;
        let mut parts = v.trim_start_matches('v').split('.');
        let (major, minor) = (parts.next().unwrap_or("0"), parts.next().unwrap_or("0"));
        let mut flags = String::from("-s -w");
        for p in self.version_pkgs {
            flags.push_str(&format!(
                " -X {p}.gitVersion={v} -X {p}.gitMajor={major} -X {p}.gitMinor={minor} -X {p}.gitTreeState=clean"
            ));
        }
        flags
    }

    /// The version a locally `replace`d sibling module is published under.
    fn sibling_version(&self, module: &str) -> String {
        if self.module == "k8s.io/kubernetes" && module.starts_with("k8s.io/") {
            // Staging modules are published as v0.<minor>.<patch> of v1.<minor>.<patch>.
            format!("v0.{}", self.version.trim_start_matches("v1."))
        } else {
            self.version.to_string()
        }
    }

    pub fn ensure(&self, log: &StepLog) -> Result<Outcome<()>> {
        if self.complete_marker().exists() && self.binaries().iter().all(|b| b.exists()) {
            return Ok(Outcome::Skipped(
                (),
                format!(
                    "{} {} cached in {}",
                    self.name,
                    self.version,
                    self.out_dir().display()
                ),
            ));
        }
        let wrapper = self.wrapper_dir();
        std::fs::create_dir_all(&wrapper)?;
        let gomod = self.wrapper_gomod(log)?;
        crate::support::steps::write_file(&wrapper.join("go.mod"), gomod)?;
        std::fs::create_dir_all(self.out_dir())?;
        for (i, (pkg, out)) in self.targets.iter().enumerate() {
            // The step's heartbeat shows the newest log line: say which one of how many.
            log.line(&format!(
                "[{}/{}] building {out} ({pkg} {})",
                i + 1,
                self.targets.len(),
                self.version
            ));
            let mut cmd = go_command(&wrapper);
            cmd.args(["build", "-trimpath", "-ldflags", &self.ldflags(), "-o"])
                .arg(self.out_dir().join(out))
                .arg(pkg);
            log.run(&mut cmd)
                .with_context(|| format!("building {pkg}"))?;
        }
        crate::support::steps::write_file(
            &self.complete_marker(),
            format!("{} {}\n", self.module, self.version),
        )?;
        Ok(Outcome::Done(()))
    }

    /// `require` the module, and replace each of its local-path `replace`s with the
    /// published sibling module; keep its other replaces so the build matches upstream's.
    fn wrapper_gomod(&self, log: &StepLog) -> Result<String> {
        let upstream = module_gomod(log, self.module, self.version)?;
        let mut out = format!(
            "// Generated by `cargo xtask up`: builds {m} {v} outside its repository.\nmodule capd-rs.local/wrapper/{n}\n\ngo 1.26\n\nrequire {m} {v}\n\n",
            m = self.module,
            v = self.version,
            n = self.name
        );
        // A version on the left side is dropped: the wrapper replaces every version.
        for r in replaces(&upstream) {
            let (from, to) = (r.module().to_string(), r.to);
            if to.starts_with("./") || to.starts_with("../") {
                let v = self.sibling_version(&from);
                // Guards such as etcd's `go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY` name paths
                // that can't carry this version; they only matter inside upstream's tree.
                if version_fits(&from, &v) {
                    out.push_str(&format!("replace {from} => {from} {v}\n"));
                }
            } else {
                out.push_str(&format!("replace {from} => {to}\n"));
            }
        }
        Ok(out)
    }
}

/// Go's rule: a module at major version N >= 2 has a `/vN` path suffix.
fn version_fits(path: &str, version: &str) -> bool {
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let suffix = path
        .rsplit('/')
        .next()
        .and_then(|s| s.strip_prefix('v'))
        .and_then(|n| n.parse::<u32>().ok());
    match suffix {
        Some(n) if n >= 2 => n == major,
        _ => major <= 1,
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Download {
    dir: Option<String>,
    go_mod: Option<String>,
    error: Option<String>,
}

fn download(log: &StepLog, module: &str, version: &str) -> Result<Download> {
    std::fs::create_dir_all(go_dir())?;
    let text = log.output(go_command(&go_dir()).args([
        "mod",
        "download",
        "-json",
        &format!("{module}@{version}"),
    ]))?;
    let d: Download = serde_json::from_str(&text)
        .with_context(|| format!("parsing `go mod download` output for {module}"))?;
    if let Some(e) = d.error {
        bail!("go mod download {module}@{version}: {e}");
    }
    Ok(d)
}

pub fn module_dir(log: &StepLog, module: &str, version: &str) -> Result<PathBuf> {
    download(log, module, version)?
        .dir
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("go mod download {module}@{version} printed no Dir"))
}

fn module_gomod(log: &StepLog, module: &str, version: &str) -> Result<String> {
    let path = download(log, module, version)?
        .go_mod
        .ok_or_else(|| anyhow!("go mod download {module}@{version} printed no GoMod"))?;
    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
}

/// One `replace` directive of a go.mod.
#[derive(Debug, PartialEq)]
pub struct Replace {
    /// The left side as written: a module path, with a version when only that one is replaced.
    pub lhs: String,
    /// The target: a module with its version, or a local path.
    pub to: String,
}

impl Replace {
    /// The replaced module path (the left side without its version).
    pub fn module(&self) -> &str {
        self.lhs.split_whitespace().next().unwrap_or("")
    }
}

/// `replace` directives of a go.mod, single-line and block form.
pub fn replaces(gomod: &str) -> Vec<Replace> {
    let mut out = Vec::new();
    let mut in_block = false;
    for raw in gomod.lines() {
        let line = raw.split("//").next().unwrap_or("").trim();
        let body = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if line == "replace (" {
            in_block = true;
            continue;
        } else if let Some(rest) = line.strip_prefix("replace ") {
            rest
        } else {
            continue;
        };
        if let Some((lhs, rhs)) = body.split_once("=>") {
            let (lhs, to) = (lhs.trim().to_string(), rhs.trim().to_string());
            if !lhs.is_empty() && !to.is_empty() {
                out.push(Replace { lhs, to });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replace_blocks_and_lines() {
        let gomod = "module x\n\nreplace sigs.k8s.io/cluster-api/api => ./api\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api // staging\n\tgithub.com/a/b v1.0.0 => github.com/a/b v1.0.1\n)\n";
        assert_eq!(
            replaces(gomod)
                .iter()
                .map(|r| (r.module().to_string(), r.to.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("sigs.k8s.io/cluster-api/api".into(), "./api".into()),
                ("k8s.io/api".into(), "./staging/src/k8s.io/api".into()),
                ("github.com/a/b".into(), "github.com/a/b v1.0.1".into()),
            ]
        );
    }

    #[test]
    fn major_version_suffix_rule() {
        assert!(version_fits("go.etcd.io/etcd/api/v3", "v3.6.14"));
        assert!(!version_fits("go.etcd.io/etcd", "v3.6.14"));
        assert!(version_fits("k8s.io/api", "v0.36.3"));
        assert!(version_fits("sigs.k8s.io/cluster-api/api", "v1.14.0"));
        assert!(!version_fits("example.com/m/v2", "v1.0.0"));
    }

    #[test]
    fn staging_modules_map_to_v0() {
        assert_eq!(
            KUBERNETES.sibling_version("k8s.io/client-go"),
            format!("v0.{}", &pins::KUBERNETES[3..])
        );
        assert_eq!(
            CLUSTER_API.sibling_version("sigs.k8s.io/cluster-api/api"),
            pins::CLUSTER_API
        );
    }

    #[test]
    fn ldflags_set_version_vars() {
        let f = KUBERNETES.ldflags();
        assert!(f.contains(&format!(
            "k8s.io/component-base/version.gitVersion={}",
            pins::KUBERNETES
        )));
        assert!(f.contains("k8s.io/client-go/pkg/version.gitMinor=36"));
    }
}
