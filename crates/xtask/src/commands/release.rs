//! Packaging commands.
//!
//! - `clusterctl-repo`: renders a clusterctl local repository for this provider
//!   (`infrastructure-docker/<version>/{infrastructure-components.yaml, metadata.yaml,
//!   cluster-template*.yaml, clusterclass-*.yaml}`) and a `clusterctl.yaml` pointing at it;
//!   with `--capi-from-module-cache`, also the Cluster API core, kubeadm bootstrap and
//!   kubeadm control-plane providers, rendered from the Go module cache, for machines
//!   that cannot download Cluster API's release assets.
//! - `tilt`: builds Tilt from Go modules into `~/.cache/capd-rs/go/bin/tilt-<version>`.

use crate::builds::{gobuild, pins};
use crate::support::paths;
use crate::support::steps::{show, write_file};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Cluster API contract this provider implements.
pub const CONTRACT: &str = "v1beta2";
/// clusterctl's label for this provider: `infrastructure-<name>`.
pub const PROVIDER_LABEL: &str = "infrastructure-docker";
/// The image the kustomizations name; the components file gets `--image` instead.
pub const DEV_IMAGE: &str = "localhost/capd-rs/capd-manager:dev";
/// The image repository of released components (`<repo>:<version>`). clusterctl wants a
/// canonical name (with a registry part); `localhost/` says "a local image, never pulled":
/// build it and load it into the cluster (`kind load docker-image`), or pass `--image`.
pub const IMAGE_REPOSITORY: &str = "localhost/capd-rs/capd-manager";

pub struct RepoOptions {
    pub version: Option<String>,
    pub out: Option<PathBuf>,
    pub image: Option<String>,
    pub capi_from_module_cache: bool,
}

/// What `clusterctl-repo` wrote.
pub struct Repo {
    pub config: PathBuf,
    pub version_dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Renders from `source` (another checkout, e.g. the previous release's) or this one.
pub fn clusterctl_repo(source: Option<&Path>, opts: RepoOptions) -> Result<()> {
    let root = source
        .map(Path::to_path_buf)
        .unwrap_or_else(paths::workspace_root);
    let repo = render_repo(&root, opts)?;
    for f in &repo.files {
        println!("{}", f.display());
    }
    eprintln!(
        "\nclusterctl local repository in {}",
        repo.version_dir.display()
    );
    eprintln!(
        "use it with: clusterctl init --config {} --infrastructure docker",
        repo.config.display()
    );
    Ok(())
}

fn check_version(v: &str) -> Result<(u64, u64)> {
    let bad = || anyhow!("--version {v}: expected vMAJOR.MINOR.PATCH (e.g. v0.1.0)");
    let rest = v.strip_prefix('v').ok_or_else(bad)?;
    let core = rest.split(['-', '+']).next().unwrap_or(rest);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err(bad());
    }
    let n: Vec<u64> = parts
        .iter()
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    Ok((n[0], n[1]))
}

pub fn render_repo(root: &Path, opts: RepoOptions) -> Result<Repo> {
    let version = opts
        .version
        .unwrap_or_else(|| format!("v{}", env!("CARGO_PKG_VERSION")));
    let (major, minor) = check_version(&version)?;
    let out = opts
        .out
        .unwrap_or_else(|| root.join("target/clusterctl-repo"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    let image = opts
        .image
        .unwrap_or_else(|| format!("{IMAGE_REPOSITORY}:{version}"));
    let version_dir = out.join(PROVIDER_LABEL).join(&version);
    if version_dir.exists() {
        // Stale templates of an earlier render must not linger.
        std::fs::remove_dir_all(&version_dir)
            .with_context(|| format!("removing {}", version_dir.display()))?;
    }
    let mut files = Vec::new();

    let components = components(&root.join("manifests/default"), &image)?;
    let path = version_dir.join("infrastructure-components.yaml");
    write_file(&path, components)?;
    files.push(path);

    let path = version_dir.join("metadata.yaml");
    write_file(&path, metadata(major, minor))?;
    files.push(path);

    for t in templates(&root.join("templates"))? {
        let name = t
            .file_name()
            .ok_or_else(|| anyhow!("template path {} has no file name", t.display()))?;
        let dest = version_dir.join(name);
        std::fs::copy(&t, &dest)
            .with_context(|| format!("copying {} to {}", t.display(), dest.display()))?;
        files.push(dest);
    }

    let mut providers = vec![Provider {
        name: "docker",
        kind: "InfrastructureProvider",
        url: version_dir.join("infrastructure-components.yaml"),
    }];
    if opts.capi_from_module_cache {
        let (capi, capi_files) = capi_providers(&out)?;
        providers.extend(capi);
        files.extend(capi_files);
    }
    let config = out.join("clusterctl.yaml");
    write_file(&config, clusterctl_config(&providers))?;
    files.push(config.clone());
    Ok(Repo {
        config,
        version_dir,
        files,
    })
}

/// clusterctl's `metadata.yaml`: which contract each release series implements.
pub fn metadata(major: u64, minor: u64) -> String {
    format!(
        "# Generated by `cargo xtask clusterctl-repo`.\n\
         apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\n\
         kind: Metadata\n\
         releaseSeries:\n\
         - major: {major}\n  minor: {minor}\n  contract: {CONTRACT}\n"
    )
}

/// `cluster-template*.yaml` and `clusterclass-*.yaml` of `dir`, sorted.
fn templates(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.ends_with(".yaml")
                && (n.starts_with("cluster-template") || n.starts_with("clusterclass-"))
        })
        .collect();
    out.sort();
    if !out
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "cluster-template.yaml"))
    {
        bail!(
            "{} has no cluster-template.yaml (the default flavour)",
            dir.display()
        );
    }
    Ok(out)
}

/// The YAML files a kustomization lists, depth first, in order. Only `resources` is
/// implemented: the project's kustomizations write every object out in full, so the
/// result is what `kubectl kustomize` gives.
pub fn kustomization_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let path = dir.join("kustomization.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_yaml_ng::Mapping =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut files = Vec::new();
    for (k, v) in &doc {
        let key = k.as_str().unwrap_or_default();
        match key {
            "apiVersion" | "kind" => {}
            "resources" => {
                let list = v.as_sequence().ok_or_else(|| anyhow!("{}: `resources` is not a list", path.display()))?;
                for r in list {
                    let r = r.as_str().ok_or_else(|| anyhow!("{}: a resource is not a string", path.display()))?;
                    let p = dir.join(r);
                    if p.is_dir() {
                        files.extend(kustomization_files(&p)?);
                    } else if p.is_file() {
                        files.push(p);
                    } else {
                        bail!("{}: resource {r} does not exist", path.display());
                    }
                }
            }
            other => bail!("{}: uses `{other}`, which `cargo xtask clusterctl-repo` does not implement (write the objects out in full)", path.display()),
        }
    }
    Ok(files)
}

/// `infrastructure-components.yaml`: every object of the kustomization, text kept as
/// written (so `${VAR}` substitution points keep their quoting), the manager image set.
pub fn components(kustomization: &Path, image: &str) -> Result<String> {
    let mut out = String::from(
        "# Generated by `cargo xtask clusterctl-repo` from manifests/default; do not edit.\n",
    );
    let mut namespaces = Vec::new();
    let mut image_set = 0;
    for f in kustomization_files(kustomization)? {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        for doc in split_docs(&text) {
            let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&doc)
                .with_context(|| format!("parsing a document of {}", f.display()))?;
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .ok_or_else(|| anyhow!("{}: a document without kind", f.display()))?;
            let name = value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            let label = value
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get("cluster.x-k8s.io/provider"))
                .and_then(|l| l.as_str());
            if label != Some(PROVIDER_LABEL) {
                bail!(
                    "{}: {kind} {name} lacks the label cluster.x-k8s.io/provider: {PROVIDER_LABEL}",
                    f.display()
                );
            }
            if kind == "Namespace" {
                namespaces.push(name.to_string());
            }
            let mut doc = doc;
            if kind == "Deployment" {
                let n = doc.matches(&format!("image: {DEV_IMAGE}")).count();
                if n != 1 {
                    bail!("{}: Deployment {name} must name `image: {DEV_IMAGE}` exactly once (found {n})", f.display());
                }
                doc = doc.replace(&format!("image: {DEV_IMAGE}"), &format!("image: {image}"));
                image_set += 1;
            }
            out.push_str("---\n");
            out.push_str(doc.trim_end());
            out.push('\n');
        }
    }
    if namespaces.len() != 1 {
        bail!(
            "{}: clusterctl needs exactly one Namespace, found {namespaces:?}",
            kustomization.display()
        );
    }
    if image_set != 1 {
        bail!(
            "{}: expected exactly one Deployment, found {image_set}",
            kustomization.display()
        );
    }
    Ok(out)
}

/// Splits YAML text at `---` lines; keeps each document's text (comments included).
pub fn split_docs(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    // Drop documents holding only comments or blank lines.
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

struct Provider {
    name: &'static str,
    kind: &'static str,
    url: PathBuf,
}

fn clusterctl_config(providers: &[Provider]) -> String {
    let mut s = String::from(
        "# Generated by `cargo xtask clusterctl-repo`: clusterctl --config <this file>.\n\
         # Providers listed here replace clusterctl's built-in ones of the same name.\n\
         providers:\n",
    );
    for p in providers {
        s.push_str(&format!(
            "- name: {}\n  type: {}\n  url: {}\n",
            p.name,
            p.kind,
            p.url.display()
        ));
    }
    s
}

/// Renders Cluster API's three providers of the pinned version from the Go module
/// cache with `kubectl kustomize` (their `config/default`), plus `metadata.yaml`.
fn capi_providers(out: &Path) -> Result<(Vec<Provider>, Vec<PathBuf>)> {
    let module = module_dir("sigs.k8s.io/cluster-api", pins::CLUSTER_API)?;
    let kubectl = tool("kubectl")?;
    let metadata = module.join("metadata.yaml");
    let sets: [(&'static str, &'static str, &'static str, &str, &str); 3] = [
        (
            "cluster-api",
            "CoreProvider",
            "cluster-api",
            "core",
            "core-components.yaml",
        ),
        (
            "kubeadm",
            "BootstrapProvider",
            "bootstrap-kubeadm",
            "bootstrap/kubeadm",
            "bootstrap-components.yaml",
        ),
        (
            "kubeadm",
            "ControlPlaneProvider",
            "control-plane-kubeadm",
            "controlplane/kubeadm",
            "control-plane-components.yaml",
        ),
    ];
    let mut providers = Vec::new();
    let mut files = Vec::new();
    for (name, kind, label, dir, file) in sets {
        let src = module.join(dir).join("config/default");
        let mut cmd = Command::new(&kubectl);
        cmd.arg("kustomize").arg(&src);
        let yaml = release_like(&output(&mut cmd)?, pins::CLUSTER_API);
        let vdir = out.join(label).join(pins::CLUSTER_API);
        let path = vdir.join(file);
        write_file(&path, yaml)?;
        let md = vdir.join("metadata.yaml");
        std::fs::copy(&metadata, &md)
            .with_context(|| format!("copying {} to {}", metadata.display(), md.display()))?;
        files.extend([path.clone(), md]);
        providers.push(Provider {
            name,
            kind,
            url: path,
        });
    }
    Ok((providers, files))
}

/// What Cluster API's `release-manifests` does to `config/default`: the managers' images
/// tagged with the release instead of `main`, pulled only if not present (`Always`
/// fails where nothing can be pulled, even with the image loaded into the node).
fn release_like(yaml: &str, version: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.lines() {
        let rest = line.trim_start();
        // `- image: ...` opens a list item: keep the dash with the indentation.
        let trimmed = rest.strip_prefix("- ").unwrap_or(rest);
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed == "imagePullPolicy: Always" {
            out.push_str(&format!("{indent}imagePullPolicy: IfNotPresent"));
        } else if let Some(image) = trimmed
            .strip_prefix("image: ")
            .and_then(|i| i.strip_suffix(":main"))
        {
            out.push_str(&format!("{indent}image: {image}:{version}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A module's directory in the project's Go module cache (downloads it if missing).
fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let dir = paths::cache_dir().join("go");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = gobuild::go_command(&dir);
    cmd.args(["mod", "download", "-json", &format!("{module}@{version}")]);
    let text = output(&mut cmd)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing `go mod download` output for {module}"))?;
    if let Some(e) = v["Error"].as_str() {
        bail!("go mod download {module}@{version}: {e}");
    }
    v["Dir"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("go mod download {module}@{version} printed no Dir"))
}

/// A tool of the test environment (`<state>/bin`), else from PATH.
fn tool(name: &str) -> Result<PathBuf> {
    let env_bin = paths::bin_dir().join(name);
    if env_bin.exists() {
        return Ok(env_bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{name} not found in {} nor on PATH (run `cargo xtask up`)",
                paths::bin_dir().display()
            )
        })
}

fn output(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

// ---------------------------------------------------------------------------------
// Tilt

pub const TILT_MODULE: &str = "github.com/tilt-dev/tilt";

/// `~/.cache/capd-rs/go/bin/tilt-<version>/tilt`.
pub fn tilt_path() -> PathBuf {
    paths::cache_dir()
        .join("go/bin")
        .join(format!("tilt-{}", pins::TILT))
        .join("tilt")
}

/// Builds Tilt (if not built yet) and prints its path.
pub fn tilt() -> Result<()> {
    let path = ensure_tilt()?;
    println!("{}", path.display());
    Ok(())
}

/// Tilt through a wrapper module: `require` Tilt, repeat its `replace` lines (Go ignores
/// a dependency's replaces), and start from its `go.sum`. Tilt's language server links
/// tree-sitter, so cgo stays on (a C compiler is needed).
///
/// Tilt's web UI is built with yarn and is not in the Go module: its embedded asset
/// directory holds no `index.html`, and without one every `tilt up`/`tilt ci` stops
/// with "running in prod mode, but JS/CSS files are not available" (the `local` web mode
/// instead runs `yarn install`). The wrapper therefore builds a copy of Tilt's module
/// (`replace` to `./src`; Go refuses overlays of files in the module cache) with a
/// one-page placeholder UI added. The CLI (`tilt ci`, `tilt get`, `tilt logs`) is
/// unaffected.
pub fn ensure_tilt() -> Result<PathBuf> {
    let bin = tilt_path();
    let marker = bin.with_file_name(".complete");
    if bin.exists() && marker.exists() {
        return Ok(bin);
    }
    let wrapper = paths::cache_dir()
        .join("go/wrappers")
        .join(format!("tilt-{}", pins::TILT));
    std::fs::create_dir_all(&wrapper).with_context(|| format!("creating {}", wrapper.display()))?;
    let env = |cmd: &mut Command| {
        // sum.golang.org has no record of Tilt's own module here (lookups answer 404);
        // every dependency is still checked against Tilt's go.sum.
        cmd.env("GONOSUMDB", TILT_MODULE).env("CGO_ENABLED", "1");
    };
    let dir = paths::cache_dir().join("go");
    let mut dl = gobuild::go_command(&dir);
    dl.args([
        "mod",
        "download",
        "-json",
        &format!("{TILT_MODULE}@{}", pins::TILT),
    ]);
    env(&mut dl);
    let text = output(&mut dl)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).context("parsing `go mod download` output for Tilt")?;
    if let Some(e) = v["Error"].as_str() {
        bail!("go mod download {TILT_MODULE}@{}: {e}", pins::TILT);
    }
    let src = v["Dir"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("go mod download printed no Dir for Tilt"))?;
    let upstream_mod = std::fs::read_to_string(src.join("go.mod"))
        .with_context(|| format!("reading {}/go.mod", src.display()))?;
    let upstream_sum = std::fs::read_to_string(src.join("go.sum"))
        .with_context(|| format!("reading {}/go.sum", src.display()))?;
    let mut gomod = format!(
        "// Generated by `cargo xtask tilt`: builds Tilt {v} outside its repository.\nmodule capd-rs.local/wrapper/tilt\n\ngo 1.26\n\nrequire {TILT_MODULE} {v}\n\n",
        v = pins::TILT
    );
    for gobuild::Replace { lhs: from, to } in gobuild::replaces(&upstream_mod) {
        if to.starts_with("./") || to.starts_with("../") {
            bail!("Tilt {}'s go.mod replaces {from} with a local path ({to}); the wrapper cannot follow it", pins::TILT);
        }
        gomod.push_str(&format!("replace {from} => {to}\n"));
    }
    gomod.push_str(&format!("replace {TILT_MODULE} => ./src\n"));
    let copy = wrapper.join("src");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    }
    copy_tree(&src, &copy)?;
    write_file(
        &copy.join("pkg/assets/build/index.html"),
        TILT_PLACEHOLDER_UI,
    )?;
    write_file(&wrapper.join("go.mod"), gomod)?;
    write_file(&wrapper.join("go.sum"), upstream_sum)?;
    let log = paths::cache_dir()
        .join("go")
        .join(format!("tilt-{}-build.log", pins::TILT));
    let mut build = gobuild::go_command(&wrapper);
    let version = pins::TILT.trim_start_matches('v');
    build
        .args([
            "build",
            "-trimpath",
            "-ldflags",
            &format!("-s -w -X main.version={version}"),
            "-o",
        ])
        .arg(&bin)
        .arg(format!("{TILT_MODULE}/cmd/tilt"));
    env(&mut build);
    eprintln!("==> building Tilt {} (log: {})", pins::TILT, log.display());
    let shown = show(&build);
    let logf =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let st = build
        .stdin(Stdio::null())
        .stdout(
            logf.try_clone()
                .with_context(|| format!("opening {}", log.display()))?,
        )
        .stderr(logf)
        .status()
        .with_context(|| format!("starting `{shown}`"))?;
    if !st.success() {
        let tail: String = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        bail!("`{shown}` exited with {st}; log {}:\n{tail}", log.display());
    }
    write_file(&marker, format!("{TILT_MODULE} {}\n", pins::TILT))?;
    Ok(bin)
}

const TILT_PLACEHOLDER_UI: &str = "<!doctype html>\n<title>Tilt</title>\n<p>This Tilt was built from Go modules by <code>cargo xtask tilt</code>, without its web UI.\nUse the CLI: <code>tilt get uiresources</code>, <code>tilt logs</code>, <code>tilt ci</code>.</p>\n";

/// Copies a directory tree; the copies are writable (module cache files are read-only).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry
            .file_type()
            .with_context(|| format!("inspecting {}", src.display()))?;
        if ty.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ty.is_file() {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
            let mode = std::fs::metadata(&dst)?.permissions().mode() | 0o200;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("chmod {}", dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_components_are_made_release_like() {
        let yaml = "spec:\n  containers:\n  - image: example.test/capi/manager:main\n    imagePullPolicy: Always\n    args: [\"--v=main\"]\n";
        assert_eq!(
            release_like(yaml, "v1.14.0"),
            "spec:\n  containers:\n  - image: example.test/capi/manager:v1.14.0\n    imagePullPolicy: IfNotPresent\n    args: [\"--v=main\"]\n"
        );
    }

    #[test]
    fn versions_are_checked() {
        assert_eq!(check_version("v0.1.0").unwrap(), (0, 1));
        assert_eq!(check_version("v1.2.3-rc.1").unwrap(), (1, 2));
        for bad in ["0.1.0", "v1.2", "vx.1.0", ""] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_names_the_contract() {
        let m: serde_yaml_ng::Value = serde_yaml_ng::from_str(&metadata(0, 1)).unwrap();
        assert_eq!(
            m["apiVersion"].as_str(),
            Some("clusterctl.cluster.x-k8s.io/v1alpha3")
        );
        assert_eq!(m["kind"].as_str(), Some("Metadata"));
        assert_eq!(m["releaseSeries"][0]["contract"].as_str(), Some("v1beta2"));
        assert_eq!(m["releaseSeries"][0]["minor"].as_u64(), Some(1));
    }

    #[test]
    fn splits_documents_and_drops_comment_only_ones() {
        let docs = split_docs("# header\n---\na: 1\n---\n# only a comment\n---\nb: \"${X:=}\"\n");
        assert_eq!(
            docs,
            vec!["a: 1\n".to_string(), "b: \"${X:=}\"\n".to_string()]
        );
    }

    #[test]
    fn replace_lines_keep_versions() {
        let m = "module x\nreplace (\n\t// why\n\tgithub.com/a/b => github.com/c/b v0.0.1\n\tk8s.io/x => github.com/t/x v0.32.0-t\n)\nreplace e/f v1 => e/f v2\n";
        assert_eq!(
            gobuild::replaces(m)
                .into_iter()
                .map(|r| (r.lhs, r.to))
                .collect::<Vec<_>>(),
            vec![
                (
                    "github.com/a/b".to_string(),
                    "github.com/c/b v0.0.1".to_string()
                ),
                (
                    "k8s.io/x".to_string(),
                    "github.com/t/x v0.32.0-t".to_string()
                ),
                ("e/f v1".to_string(), "e/f v2".to_string()),
            ]
        );
    }

    #[test]
    fn repository_manifests_render() {
        let root = paths::workspace_root();
        let text = components(
            &root.join("manifests/default"),
            "example/capd-manager:v9.9.9",
        )
        .unwrap();
        assert!(text.contains("image: example/capd-manager:v9.9.9"));
        assert!(!text.contains(DEV_IMAGE));
        assert_eq!(text.matches("\nkind: Namespace\n").count(), 1);
    }
}
