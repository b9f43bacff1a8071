//! The Kubernetes node image, built offline: the systemd `node` recipe plus kubelet,
//! kubeadm, kubectl, crictl and kind's layout (`/kind/version`,
//! `/kind/manifests/default-cni.yaml`), with every image kubeadm v1.36.3 computes
//! (and the pod network's) preloaded into containerd's `k8s.io` namespace, because no
//! node can pull anything here. Tagged `kindest/node:<version>`, the name CAPD and this
//! provider pick from `Machine.spec.version`, so the default templates work unchanged.
//!
//! Cached like the recipe images: tagged with a hash of everything that goes in, and
//! saved as a tarball under `~/.cache/capd-rs/images`.

use crate::builds::gobuild::{self, GoSet};
use crate::builds::images;
use crate::builds::pins;
use crate::support::docker::docker;
use crate::support::steps::{wait_for, Outcome, StepLog};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bumped when the build procedure itself changes.
const PROCEDURE: &str = "2";

/// Files of the node image, in the repository beside this crate.
const FILES: &[(&str, &str, &str)] = &[
    // (name in the build context, contents, path in the image)
    (
        "entrypoint",
        include_str!("../../node-image/entrypoint"),
        "/usr/local/bin/entrypoint",
    ),
    (
        "kubelet-cgroups",
        include_str!("../../node-image/kubelet-cgroups"),
        "/usr/local/bin/kubelet-cgroups",
    ),
    (
        "kubelet.service",
        include_str!("../../node-image/kubelet.service"),
        "/etc/systemd/system/kubelet.service",
    ),
    (
        "10-kubeadm.conf",
        include_str!("../../node-image/10-kubeadm.conf"),
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    ),
    (
        "default-kubelet",
        include_str!("../../node-image/default-kubelet"),
        "/etc/default/kubelet",
    ),
    (
        "containerd.toml",
        include_str!("../../node-image/containerd.toml"),
        "/etc/containerd/config.toml",
    ),
    (
        "crictl.yaml",
        include_str!("../../node-image/crictl.yaml"),
        "/etc/crictl.yaml",
    ),
];

/// The pod network's manifest: the node image's `/kind/manifests/default-cni.yaml`.
use crate::support::paths::CNI_MANIFEST;
/// The pod network daemon's image, as the manifest names it.
pub const PODNET_IMAGE: &str = "localhost/capd-rs/podnet:v1";

/// A small image with busybox, preloaded for workloads (the tests' pods).
pub const TOOLBOX_IMAGE: &str = "localhost/capd-rs/toolbox:v1";
/// CAPD's default load-balancer image (`capd_loadbalancer::DEFAULT_IMAGE`): the HAProxy
/// recipe image is tagged so, for templates that don't name one.
pub const HAPROXY_DEFAULT: &str = "kindest/haproxy:v20230606-42a2262b";

/// The tag CAPD (and this provider) derive from `Machine.spec.version`.
pub fn kind_tag() -> String {
    format!("kindest/node:{}", pins::KUBERNETES)
}

/// One image preloaded into every node.
struct Component {
    /// Name and tag exactly as kubeadm computes it.
    image: String,
    /// Binary (path on this machine) and where it goes in the image.
    binary: Option<(PathBuf, &'static str)>,
    /// Image it is built on.
    from: String,
    entrypoint: Option<&'static str>,
}

fn components(base: &str, net: &str, work: &Path) -> Vec<Component> {
    let k8s = |b: &str| gobuild::KUBERNETES.out_dir().join(b);
    let reg = "registry.k8s.io";
    let v = pins::KUBERNETES;
    let mut list: Vec<Component> = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .map(|b| Component {
        image: format!("{reg}/{b}:{v}"),
        binary: Some((
            k8s(b),
            match *b {
                "kube-apiserver" => "/usr/local/bin/kube-apiserver",
                "kube-controller-manager" => "/usr/local/bin/kube-controller-manager",
                _ => "/usr/local/bin/kube-scheduler",
            },
        )),
        from: base.to_string(),
        entrypoint: None,
    })
    .collect();
    list.extend([
        // kube-proxy programs iptables: its image carries the same iptables as the node.
        Component {
            image: format!("{reg}/kube-proxy:{v}"),
            binary: Some((k8s("kube-proxy"), "/usr/local/bin/kube-proxy")),
            from: net.to_string(),
            entrypoint: None,
        },
        Component {
            image: format!("{reg}/etcd:{}", pins::ETCD_IMAGE_TAG),
            binary: Some((gobuild::ETCD.out_dir().join("etcd"), "/usr/local/bin/etcd")),
            from: base.to_string(),
            entrypoint: None,
        },
        Component {
            image: format!("{reg}/coredns/coredns:{}", pins::COREDNS),
            binary: Some((gobuild::COREDNS.out_dir().join("coredns"), "/coredns")),
            from: base.to_string(),
            entrypoint: Some(r#"["/coredns"]"#),
        },
        Component {
            image: format!("{reg}/pause:{}", pins::PAUSE),
            binary: Some((work.join("pause"), "/pause")),
            from: "scratch".to_string(),
            entrypoint: Some(r#"["/pause"]"#),
        },
        Component {
            image: PODNET_IMAGE.to_string(),
            binary: Some((work.join("capd-podnet"), "/usr/local/bin/capd-podnet")),
            from: net.to_string(),
            entrypoint: Some(r#"["/usr/local/bin/capd-podnet"]"#),
        },
        // For workloads in tests and by hand (busybox: sh, httpd, wget, nslookup); nothing
        // can be pulled, and it shares every layer with the images above.
        Component {
            image: TOOLBOX_IMAGE.to_string(),
            binary: None,
            from: net.to_string(),
            entrypoint: None,
        },
    ]);
    list
}

/// Hash of everything the image is made of, so any change rebuilds it.
fn key(node_base: &str, base: &str, net: &str) -> Result<String> {
    let mut h = Sha256::new();
    for part in [
        PROCEDURE,
        node_base,
        base,
        net,
        pins::KUBERNETES,
        pins::ETCD,
        pins::COREDNS,
        pins::PAUSE,
        pins::CRI_TOOLS,
    ] {
        h.update(part);
        h.update([0]);
    }
    for (name, contents, dest) in FILES {
        h.update(name);
        h.update(contents);
        h.update(dest);
    }
    let root = crate::support::paths::workspace_root();
    h.update(
        std::fs::read(root.join(CNI_MANIFEST))
            .with_context(|| format!("reading {CNI_MANIFEST}"))?,
    );
    hash_tree(&mut h, &root.join("crates/podnet"))?;
    h.update(std::fs::read(root.join("Cargo.lock")).context("reading Cargo.lock")?);
    // The Go binaries themselves: a change of build flags or toolchain changes them.
    for set in [
        &gobuild::KUBERNETES,
        &gobuild::ETCD,
        &gobuild::COREDNS,
        &gobuild::CRI_TOOLS,
    ] {
        for b in set.binaries() {
            h.update(std::fs::read(&b).with_context(|| format!("reading {}", b.display()))?);
        }
    }
    Ok(hex::encode(h.finalize())[..12].to_string())
}

/// Feeds every file below `dir` (sorted, relative names and contents) into `h`.
fn hash_tree(h: &mut Sha256, dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        h.update(
            f.strip_prefix(dir)
                .unwrap_or(&f)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?);
    }
    Ok(())
}

/// Ensures the Kubernetes node image is in the engine, tagged also `kindest/node:<version>`.
pub fn ensure(log: &StepLog, node_base: &str, base: &str, net: &str) -> Result<Outcome<String>> {
    let tag = format!("capd-rs/kindnode:r-{}", key(node_base, base, net)?);
    let outcome = if images::present(&tag) {
        Outcome::Skipped(tag.clone(), format!("{tag} present"))
    } else if images::load_cached(log, &tag)? {
        Outcome::Done(tag.clone())
    } else {
        build(log, &tag, node_base, base, net)?;
        images::save_cached(log, &tag)?;
        Outcome::Done(tag.clone())
    };
    log.run(docker().args(["tag", &tag, &kind_tag()]))?;
    Ok(outcome)
}

/// Tags the HAProxy recipe image with CAPD's default load-balancer image name.
pub fn tag_default_haproxy(log: &StepLog, haproxy: &str) -> Result<()> {
    log.run(docker().args(["tag", haproxy, HAPROXY_DEFAULT]))
}

fn build(log: &StepLog, tag: &str, node_base: &str, base: &str, net: &str) -> Result<()> {
    let work = crate::support::paths::cache_dir().join("nodeimage");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    build_pause(log, &work)?;
    build_podnet(log, &work)?;

    let comps = components(base, net, &work);
    check_against_kubeadm(log, &comps)?;
    for c in &comps {
        component_image(log, c, &work)?;
    }
    let stage = stage_image(log, node_base, &work)?;
    preload(log, &stage, tag, &comps, &work)?;
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))
}

/// The images `kubeadm config images list` names must be exactly the ones preloaded,
/// or kubeadm's ImagePull preflight fails in every node.
fn check_against_kubeadm(log: &StepLog, comps: &[Component]) -> Result<()> {
    let kubeadm = gobuild::KUBERNETES.out_dir().join("kubeadm");
    let listed = log.output(Command::new(&kubeadm).args([
        "config",
        "images",
        "list",
        "--kubernetes-version",
        pins::KUBERNETES,
    ]))?;
    let missing: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !comps.iter().any(|c| c.image == *l))
        .collect();
    if !missing.is_empty() {
        bail!(
            "kubeadm {} needs images the node image does not preload: {} (update builds/pins.rs)",
            pins::KUBERNETES,
            missing.join(", ")
        );
    }
    Ok(())
}

/// pause from the C source in the Kubernetes module, static, as upstream builds it.
fn build_pause(log: &StepLog, work: &Path) -> Result<()> {
    let src = gobuild::KUBERNETES
        .module_dir(log)?
        .join("build/pause/linux/pause.c");
    log.run(
        Command::new("gcc")
            .args([
                "-Os",
                "-Wall",
                "-Werror",
                "-static",
                &format!("-DVERSION=v{}", pins::PAUSE),
                "-o",
            ])
            .arg(work.join("pause"))
            .arg(&src),
    )
    .context("building pause (needs gcc and libc6-dev)")?;
    log.run(Command::new("strip").arg(work.join("pause")))
}

/// The pod network daemon of this workspace; it runs in a Debian image with the
/// same glibc as this machine, so a normal (dynamically linked) build fits.
fn build_podnet(log: &StepLog, work: &Path) -> Result<()> {
    let root = crate::support::paths::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    log.run(Command::new(cargo).current_dir(&root).args([
        "build",
        "-p",
        "capd-podnet",
        "--bin",
        "capd-podnet",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug/capd-podnet");
    std::fs::copy(&bin, work.join("capd-podnet"))
        .with_context(|| format!("copying {}", bin.display()))?;
    log.run(Command::new("strip").arg(work.join("capd-podnet")))
}

/// `docker build` from a context holding one file; no registry is involved.
fn docker_build(log: &StepLog, tag: &str, dockerfile: &str, context: &Path) -> Result<()> {
    crate::support::steps::write_file(&context.join("Dockerfile"), dockerfile)?;
    log.line(&format!("Dockerfile for {tag}:\n{dockerfile}"));
    log.run(
        docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", tag])
            .arg(context),
    )
}

fn component_image(log: &StepLog, c: &Component, work: &Path) -> Result<()> {
    let ctx = work.join("ctx").join(c.image.replace(['/', ':'], "_"));
    std::fs::create_dir_all(&ctx)?;
    let mut df = format!(
        "FROM {}\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        c.from
    );
    if let Some((binary, dest)) = &c.binary {
        let file = binary
            .file_name()
            .ok_or_else(|| anyhow!("{} has no file name", binary.display()))?;
        std::fs::copy(binary, ctx.join(file))
            .with_context(|| format!("copying {}", binary.display()))?;
        df.push_str(&format!("COPY {} {dest}\n", file.to_string_lossy()));
    }
    if let Some(ep) = c.entrypoint {
        df.push_str(&format!("ENTRYPOINT {ep}\n"));
    }
    docker_build(log, &c.image, &df, &ctx)?;
    std::fs::remove_dir_all(&ctx)?;
    Ok(())
}

/// The node recipe image plus the Kubernetes binaries and configuration.
fn stage_image(log: &StepLog, node_base: &str, work: &Path) -> Result<String> {
    let ctx = work.join("ctx/node");
    std::fs::create_dir_all(&ctx)?;
    let mut df = format!("FROM {node_base}\n");
    let bins: [(&GoSet, &str); 4] = [
        (&gobuild::KUBERNETES, "kubelet"),
        (&gobuild::KUBERNETES, "kubeadm"),
        (&gobuild::KUBERNETES, "kubectl"),
        (&gobuild::CRI_TOOLS, "crictl"),
    ];
    for (set, b) in bins {
        std::fs::copy(set.out_dir().join(b), ctx.join(b))
            .with_context(|| format!("copying {b}"))?;
        df.push_str(&format!("COPY {b} /usr/bin/{b}\n"));
    }
    for (name, contents, dest) in FILES {
        crate::support::steps::write_file(&ctx.join(name), contents)?;
        // COPY keeps the mode; a RUN chmod would copy the file into another layer.
        let mode = if dest.starts_with("/usr/local/bin/") {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(ctx.join(name), std::fs::Permissions::from_mode(mode))?;
        df.push_str(&format!("COPY {name} {dest}\n"));
    }
    crate::support::steps::write_file(&ctx.join("version"), format!("{}\n", pins::KUBERNETES))?;
    df.push_str("COPY version /kind/version\n");
    let cni = std::fs::read(crate::support::paths::workspace_root().join(CNI_MANIFEST))
        .with_context(|| format!("reading {CNI_MANIFEST}"))?;
    crate::support::steps::write_file(&ctx.join("default-cni.yaml"), cni)?;
    df.push_str("COPY default-cni.yaml /kind/manifests/default-cni.yaml\n");
    df.push_str(concat!(
        "RUN mkdir -p /etc/systemd/system/multi-user.target.wants /etc/cni/net.d /etc/kubernetes/manifests /var/lib/kubelet",
        " && ln -sf /etc/systemd/system/kubelet.service /etc/systemd/system/multi-user.target.wants/kubelet.service\n",
        "ENTRYPOINT [\"/usr/local/bin/entrypoint\", \"/sbin/init\"]\n",
    ));
    let tag = format!("capd-rs/kindnode-stage:{}", pins::KUBERNETES);
    docker_build(log, &tag, &df, &ctx)?;
    Ok(tag)
}

/// Imports every component image into containerd's `k8s.io` namespace inside a
/// container of the stage image, then commits that container as the node image.
/// Imported without unpacking: containerd unpacks on first use, and the content
/// store is plain files that survive `docker commit` and the copy into a node's /var.
fn preload(log: &StepLog, stage: &str, tag: &str, comps: &[Component], work: &Path) -> Result<()> {
    let archive = work.join("images.tar");
    let mut save = docker();
    save.args(["save", "-o"]).arg(&archive);
    for c in comps {
        save.arg(&c.image);
    }
    log.run(&mut save)?;

    // No labels on this container: `docker commit` would copy them into the image.
    let name = "capd-rs-nodeimage-build";
    let _ = docker().args(["rm", "-f", name]).output();
    log.run(
        docker()
            // containerd is PID 1 here: stop it with SIGTERM, not the image's SIGRTMIN+3.
            .args([
                "run",
                "-d",
                "--privileged",
                "--stop-signal",
                "SIGTERM",
                "--name",
                name,
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/tmp",
            ])
            .arg("-v")
            .arg(format!("{}:/preload:ro", work.display()))
            .args(["--entrypoint", "/usr/bin/containerd", stage]),
    )?;
    let result = (|| -> Result<()> {
        wait_for(
            "containerd in the image build container",
            Duration::from_secs(60),
            || {
                let ok = docker()
                    .args(["exec", name, "ctr", "version"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                Ok(ok.then_some(()))
            },
        )?;
        log.run(docker().args([
            "exec",
            name,
            "ctr",
            "-n",
            "k8s.io",
            "images",
            "import",
            "--no-unpack",
            "/preload/images.tar",
        ]))?;
        let listed =
            log.output(docker().args(["exec", name, "ctr", "-n", "k8s.io", "images", "ls", "-q"]))?;
        let missing: Vec<&str> = comps
            .iter()
            .map(|c| c.image.as_str())
            .filter(|i| !listed.lines().any(|l| l.trim() == *i))
            .collect();
        if !missing.is_empty() {
            bail!(
                "images missing from the node's containerd after import: {}",
                missing.join(", ")
            );
        }
        log.run(docker().args(["stop", "-t", "30", name]))?;
        log.run(docker().args([
            "commit",
            "--change",
            r#"ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]"#,
            "--change",
            &format!("LABEL io.x-k8s.capd-rs.kubernetes={}", pins::KUBERNETES),
            name,
            tag,
        ]))?;
        Ok(())
    })();
    let _ = docker().args(["rm", "-f", name]).output();
    result?;
    // Only an intermediate: untag it (its layers stay, shared with the node image).
    let _ = docker().args(["rmi", stage]).output();
    images::add_stop_signal(log, tag, "SIGRTMIN+3")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_sandbox_image_is_the_preloaded_pause() {
        let toml = FILES
            .iter()
            .find(|f| f.0 == "containerd.toml")
            .map(|f| f.1)
            .unwrap_or_default();
        assert!(toml.contains(&format!(
            "sandbox_image = \"registry.k8s.io/pause:{}\"",
            pins::PAUSE
        )));
        assert!(toml.contains("SystemdCgroup = true"));
        assert!(toml.contains("version = 2"));
    }

    #[test]
    fn preloads_every_image_kubeadm_computes() {
        let names: Vec<String> = components("b", "n", Path::new("/w"))
            .into_iter()
            .map(|c| c.image)
            .collect();
        for want in [
            format!("registry.k8s.io/kube-apiserver:{}", pins::KUBERNETES),
            format!(
                "registry.k8s.io/kube-controller-manager:{}",
                pins::KUBERNETES
            ),
            format!("registry.k8s.io/kube-scheduler:{}", pins::KUBERNETES),
            format!("registry.k8s.io/kube-proxy:{}", pins::KUBERNETES),
            "registry.k8s.io/etcd:3.6.8-0".to_string(),
            "registry.k8s.io/coredns/coredns:v1.14.2".to_string(),
            "registry.k8s.io/pause:3.10.2".to_string(),
            PODNET_IMAGE.to_string(),
            TOOLBOX_IMAGE.to_string(),
        ] {
            assert!(names.contains(&want), "{want} not preloaded: {names:?}");
        }
    }

    #[test]
    fn cni_manifest_names_the_preloaded_podnet_image() {
        let text =
            std::fs::read_to_string(crate::support::paths::workspace_root().join(CNI_MANIFEST))
                .unwrap_or_default();
        assert!(
            text.contains(&format!("image: {PODNET_IMAGE}")),
            "{CNI_MANIFEST} must use {PODNET_IMAGE}"
        );
    }

    #[test]
    fn haproxy_default_is_the_providers() {
        assert_eq!(HAPROXY_DEFAULT, capd_loadbalancer::DEFAULT_IMAGE);
    }

    #[test]
    fn kubelet_is_told_about_cgroup_v1() {
        let f = FILES
            .iter()
            .find(|f| f.0 == "default-kubelet")
            .map(|f| f.1)
            .unwrap_or_default();
        assert!(f.contains("--fail-cgroupv1=false"));
    }
}
