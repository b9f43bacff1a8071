//! What CAPD changes so kubeadm works inside a container, and how it spots kubeadm.
//!
//! - `kubeadm init|join` commands get `--ignore-preflight-errors` for the checks
//!   that cannot pass in a container, and the bootstrap sentinel is written first.
//! - The kubeadm configuration files CABPK writes get container-friendly kubelet
//!   settings in `nodeRegistration`, and kube-proxy is told not to set the
//!   conntrack sysctl (read-only in a container).

use serde_yaml_ng::{Mapping, Value};

use crate::action::{SENTINEL_DIR, SENTINEL_PATH};
use crate::decode;
use crate::Options;

/// Where CABPK's cloud-config puts the `kubeadm init` configuration
/// (a ClusterConfiguration and an InitConfiguration).
pub const CLOUD_CONFIG_INIT_PATH: &str = "/run/kubeadm/kubeadm.yaml";
/// Where CABPK's cloud-config puts the `kubeadm join` configuration.
pub const CLOUD_CONFIG_JOIN_PATH: &str = "/run/kubeadm/kubeadm-join-config.yaml";
/// The script CABPK's Ignition config runs from `kubeadm.service`.
pub const IGNITION_SCRIPT_PATH: &str = "/etc/kubeadm.sh";
/// The kubeadm configuration CABPK's Ignition config writes.
pub const IGNITION_CONFIG_PATH: &str = "/etc/kubeadm.yml";

/// Preflight checks that fail in a container (cloud-config commands).
pub const IGNORE_PREFLIGHT_ERRORS: &str =
    "SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables";
/// What CAPD passes for Ignition's `/etc/kubeadm.sh`.
pub const IGNORE_PREFLIGHT_ERRORS_IGNITION: &str = "all";

/// The container runtime socket set when the configuration leaves it empty: node
/// containers may also see the host's Docker socket, and kubeadm must not guess.
pub const CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";

/// A KubeProxyConfiguration that leaves `nf_conntrack_max` alone.
const KUBE_PROXY_CONFIG: &str = concat!(
    "\n---\n",
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n",
    "kind: KubeProxyConfiguration\n",
    "conntrack:\n",
    "  # nf_conntrack_max is a host-wide sysctl, read-only inside a node container.\n",
    "  maxPerCore: 0\n",
);

/// Kubelet flags set in `nodeRegistration.kubeletExtraArgs`, overriding any value
/// already there, as CAPD does.
fn kubelet_args(options: &Options) -> Vec<(&'static str, &'static str)> {
    let mut args = vec![
        // The kubelet would see the host's disk and garbage-collect for it.
        ("image-gc-high-threshold", "100"),
        (
            "eviction-hard",
            "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%",
        ),
        ("fail-swap-on", "false"),
    ];
    if options.private_cgroupns {
        args.push(("cgroup-root", "/kubelet"));
        args.push(("runtime-cgroups", "/system.slice/containerd.service"));
    }
    args
}

const SHELLS: [&str; 6] = [
    "/bin/sh",
    "sh",
    "/bin/bash",
    "bash",
    "/usr/bin/sh",
    "/usr/bin/bash",
];

/// Whether a `runcmd` argv runs `kubeadm init` or `kubeadm join`, detected as
/// CAPD does: a shell `-c` script containing the text `kubeadm init`/`kubeadm join`,
/// or an argv `kubeadm init|join ...`. With `fixups`, the preflight flag is added
/// (after the first `kubeadm init`/`kubeadm join` of a script, or as the third argv element).
pub(crate) fn rewrite_runcmd(mut argv: Vec<String>, fixups: bool) -> (Vec<String>, bool) {
    let flag = format!("--ignore-preflight-errors={IGNORE_PREFLIGHT_ERRORS}");
    let is_shell = matches!((argv.first(), argv.get(1)), (Some(sh), Some(c)) if SHELLS.contains(&sh.as_str()) && c == "-c");
    if is_shell {
        if let Some(script) = argv.get_mut(2) {
            let mut found = false;
            for sub in ["kubeadm init", "kubeadm join"] {
                if script.contains(sub) {
                    found = true;
                    if fixups {
                        *script = script.replacen(sub, &format!("{sub} {flag}"), 1);
                    }
                }
            }
            return (argv, found);
        }
        return (argv, false);
    }
    let is_kubeadm = argv
        .first()
        .is_some_and(|p| p == "kubeadm" || p.ends_with("/kubeadm"))
        && argv
            .get(1)
            .is_some_and(|sub| sub == "init" || sub == "join");
    if is_kubeadm && fixups && argv.len() >= 2 {
        argv.insert(2, flag);
    }
    (argv, is_kubeadm)
}

/// CAPD's rewrite of Ignition's `/etc/kubeadm.sh`: on every line, each
/// `kubeadm init`/`kubeadm join` is preceded by writing the sentinel, and with
/// `fixups` followed by `--ignore-preflight-errors=all`.
pub(crate) fn rewrite_ignition_script(content: &[u8], fixups: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in content.split(|b| *b == b'\n') {
        let mut line = line.to_vec();
        for sub in ["kubeadm init", "kubeadm join"] {
            if decode::find(&line, sub.as_bytes()).is_some() {
                let mut to =
                    format!("mkdir -p {SENTINEL_DIR} && echo started > {SENTINEL_PATH} && {sub}");
                if fixups {
                    to.push_str(&format!(
                        " --ignore-preflight-errors={IGNORE_PREFLIGHT_ERRORS_IGNITION}"
                    ));
                }
                line = decode::replace_all(&line, sub.as_bytes(), to.as_bytes());
            }
        }
        lines.push(line);
    }
    lines.join(&b'\n')
}

/// One piece of a multi-document YAML text.
enum Chunk<'a> {
    /// A `---` line, kept as written.
    Separator(&'a str),
    /// The text of one document, and its parsed value once read.
    Doc(String, Option<Value>),
}

fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            chunks.push(Chunk::Doc(std::mem::take(&mut current), None));
            chunks.push(Chunk::Separator(line));
        } else {
            current.push_str(line);
        }
    }
    chunks.push(Chunk::Doc(current, None));
    chunks
}

fn join_documents(chunks: &[Chunk<'_>]) -> String {
    let mut out = String::new();
    for chunk in chunks {
        match chunk {
            Chunk::Separator(s) => out.push_str(s),
            Chunk::Doc(s, _) => out.push_str(s),
        }
    }
    out
}

fn kind_of(value: &Value) -> Option<&str> {
    value.as_mapping()?.get("kind")?.as_str()
}

/// Reads every document; `Err` names the first that is not YAML.
fn parse_documents(chunks: &mut [Chunk<'_>]) -> Result<(), String> {
    let mut index = 0usize;
    for chunk in chunks.iter_mut() {
        if let Chunk::Doc(text, parsed) = chunk {
            index += 1;
            decode::check_flow_depth(text).map_err(|(line, column)| {
                format!("document {index} nests flow collections too deeply (line {line}, column {column})")
            })?;
            let value: Value = serde_yaml_ng::from_str(text)
                .map_err(|e| format!("document {index} is not valid YAML: {e}"))?;
            *parsed = Some(value);
        }
    }
    Ok(())
}

/// A patched document is written back as JSON: valid YAML that kubeadm reads
/// without any YAML 1.1/1.2 ambiguity (`on`, `0644`...), so values keep their type.
fn emit(value: &Value) -> Result<String, String> {
    let mut s = serde_json::to_string_pretty(value)
        .map_err(|e| format!("cannot re-encode the patched document: {e}"))?;
    s.push('\n');
    Ok(s)
}

/// Applies CAPD's Docker fixes to the kubeadm configuration at `path`:
/// `nodeRegistration` of every document of kind `target` (`InitConfiguration`
/// or `JoinConfiguration`; at least one must exist), and, with `kube_proxy`,
/// a KubeProxyConfiguration with `conntrack.maxPerCore: 0` (added, or
/// completed when one is there).
pub(crate) fn patch_config(
    text: &str,
    target: &str,
    kube_proxy: bool,
    options: &Options,
) -> Result<String, String> {
    let mut chunks = split_documents(text);
    parse_documents(&mut chunks)?;
    let mut found = false;
    let mut has_kube_proxy = false;
    for chunk in chunks.iter_mut() {
        let Chunk::Doc(doc_text, Some(value)) = chunk else {
            continue;
        };
        match kind_of(value) {
            Some(k) if k == target => {
                found = true;
                patch_node_registration(value, options)?;
                *doc_text = emit(value)?;
            }
            Some("KubeProxyConfiguration") if kube_proxy => {
                has_kube_proxy = true;
                if set_conntrack(value)? {
                    *doc_text = emit(value)?;
                }
            }
            _ => {}
        }
    }
    if !found {
        return Err(format!("no {target} document"));
    }
    let mut out = join_documents(&chunks);
    if kube_proxy && !has_kube_proxy {
        out.push_str(KUBE_PROXY_CONFIG);
    }
    Ok(out)
}

/// Ignition's `/etc/kubeadm.yml`: CAPD only adds the kube-proxy setting; when
/// the text cannot be read as YAML it is appended as CAPD does.
pub(crate) fn patch_ignition_config(content: &[u8]) -> Vec<u8> {
    let patched = std::str::from_utf8(content).ok().and_then(|text| {
        let mut chunks = split_documents(text);
        parse_documents(&mut chunks).ok()?;
        let mut has_kube_proxy = false;
        for chunk in chunks.iter_mut() {
            let Chunk::Doc(doc_text, Some(value)) = chunk else {
                continue;
            };
            if kind_of(value) == Some("KubeProxyConfiguration") {
                has_kube_proxy = true;
                if set_conntrack(value).ok()? {
                    *doc_text = emit(value).ok()?;
                }
            }
        }
        let mut out = join_documents(&chunks);
        if !has_kube_proxy {
            out.push_str(KUBE_PROXY_CONFIG);
        }
        Some(out.into_bytes())
    });
    patched.unwrap_or_else(|| {
        let mut out = content.to_vec();
        out.extend_from_slice(KUBE_PROXY_CONFIG.as_bytes());
        out
    })
}

/// Sets `conntrack.maxPerCore: 0` unless set; returns whether it changed anything.
fn set_conntrack(doc: &mut Value) -> Result<bool, String> {
    let map = doc
        .as_mapping_mut()
        .ok_or("KubeProxyConfiguration is not a mapping")?;
    let conntrack = map.entry(Value::from("conntrack")).or_insert(Value::Null);
    if conntrack.is_null() {
        *conntrack = Value::Mapping(Mapping::new());
    }
    let conntrack = conntrack
        .as_mapping_mut()
        .ok_or("KubeProxyConfiguration conntrack is not a mapping")?;
    if conntrack.get("maxPerCore").is_some_and(|v| !v.is_null()) {
        return Ok(false);
    }
    conntrack.insert(Value::from("maxPerCore"), Value::from(0));
    Ok(true)
}

fn patch_node_registration(doc: &mut Value, options: &Options) -> Result<(), String> {
    let map = doc
        .as_mapping_mut()
        .ok_or("the document is not a mapping")?;
    // kubeadm.k8s.io/v1beta3 has kubeletExtraArgs as a map; v1beta4 as a list of {name, value}.
    let args_as_map =
        map.get("apiVersion").and_then(Value::as_str) == Some("kubeadm.k8s.io/v1beta3");
    let nr = map
        .entry(Value::from("nodeRegistration"))
        .or_insert(Value::Null);
    if nr.is_null() {
        *nr = Value::Mapping(Mapping::new());
    }
    let nr = nr
        .as_mapping_mut()
        .ok_or("nodeRegistration is not a mapping")?;

    let socket = nr.entry(Value::from("criSocket")).or_insert(Value::Null);
    if socket.is_null() || socket.as_str() == Some("") {
        *socket = Value::from(CRI_SOCKET);
    }

    let args = nr
        .entry(Value::from("kubeletExtraArgs"))
        .or_insert(Value::Null);
    if args.is_null() {
        *args = if args_as_map {
            Value::Mapping(Mapping::new())
        } else {
            Value::Sequence(Vec::new())
        };
    }
    for (name, value) in kubelet_args(options) {
        match args {
            Value::Mapping(m) => {
                m.insert(Value::from(name), Value::from(value));
            }
            Value::Sequence(list) => {
                let mut set = false;
                for item in list.iter_mut() {
                    let Some(item) = item.as_mapping_mut() else {
                        return Err(
                            "nodeRegistration.kubeletExtraArgs has an entry that is not a mapping"
                                .into(),
                        );
                    };
                    if item.get("name").and_then(Value::as_str) == Some(name) {
                        item.insert(Value::from("value"), Value::from(value));
                        set = true;
                    }
                }
                if !set {
                    let mut entry = Mapping::new();
                    entry.insert(Value::from("name"), Value::from(name));
                    entry.insert(Value::from("value"), Value::from(value));
                    list.push(Value::Mapping(entry));
                }
            }
            _ => {
                return Err(
                    "nodeRegistration.kubeletExtraArgs is neither a list nor a mapping".into(),
                )
            }
        }
    }
    Ok(())
}
