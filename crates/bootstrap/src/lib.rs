//! Bootstrap data to actions: what CAPD runs inside a node container.
//!
//! The DockerMachine controller reads the bootstrap Secret (`value`, `format`),
//! calls [`plan`], and runs each [`Action`] in order as
//! `docker exec -i <node> argv...` (stdin fed when present), retrying each up to
//! [`Action::retries`] times. Nothing here does I/O.
//!
//! ```
//! use capd_bootstrap::{plan, Format, Options};
//!
//! let data = b"#cloud-config\nwrite_files:\n- path: /etc/motd\n  content: hi\nruncmd:\n- kubeadm join --config /run/kubeadm/kubeadm-join-config.yaml\n";
//! let format = Format::from_secret_value(None)?; // no `format` key: cloud-config
//! let plan = plan(data, format, &Options::default())?;
//! let argvs: Vec<&str> = plan.actions.iter().map(|a| a.argv[0].as_str()).collect();
//! assert_eq!(argvs, ["/bin/sh", "/bin/sh", "/bin/sh"]); // write, sentinel, kubeadm
//! assert_eq!(plan.actions[0].stdin.as_deref(), Some(&b"hi"[..]));
//! assert!(plan.actions[2].argv[2].starts_with("kubeadm join --ignore-preflight-errors="));
//! # Ok::<(), capd_bootstrap::Error>(())
//! ```
//!
//! Before bootstrapping, the controller runs [`sentinel_check_command`] and reads
//! its output with [`sentinel_check_result`]: `Some(true)` means a previous
//! manager already started kubeadm on this node, so it must not run again.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod action;
mod cloudconfig;
mod decode;
mod error;
mod ignition;
pub mod kubeadm;

pub use action::{
    sentinel_action, sentinel_check_command, sentinel_check_result, shell_quote, Action,
    ActionKind, FILE_RETRIES, RUNCMD_RETRIES, SENTINEL_PATH,
};
pub use error::{Error, Position};

/// The largest file content gzip may decompress to (64 MiB); past it, [`Error::ContentTooLarge`].
pub const MAX_FILE_SIZE: usize = 64 << 20;

/// The bootstrap data format, the Secret's `format` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `cloud-config` (the default).
    CloudConfig,
    /// `ignition`.
    Ignition,
}

impl Format {
    /// Reads the Secret's `format` value: absent or empty means `cloud-config`, as in CAPD.
    pub fn from_secret_value(value: Option<&[u8]>) -> Result<Format, Error> {
        match value {
            None | Some(b"") | Some(b"cloud-config") => Ok(Format::CloudConfig),
            Some(b"ignition") => Ok(Format::Ignition),
            Some(other) => Err(Error::UnknownFormat(
                String::from_utf8_lossy(other).into_owned(),
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::CloudConfig => "cloud-config",
            Format::Ignition => "ignition",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format, Error> {
        Format::from_secret_value(Some(s.as_bytes()))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CAPD's Docker-specific changes to what kubeadm is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Make kubeadm work in a container, as CAPD does (default `true`):
    /// `--ignore-preflight-errors` on `kubeadm init|join`; in the cloud-config
    /// kubeadm files, `nodeRegistration.criSocket` (if empty) and kubelet flags
    /// (`fail-swap-on=false`, no disk-pressure eviction or image GC); a
    /// KubeProxyConfiguration that leaves the conntrack sysctl alone.
    /// The bootstrap sentinel is written whatever this says.
    pub kubeadm_fixups: bool,
    /// The node container has a private cgroup namespace (kindest/node images
    /// from kind 0.20 on, and CAPD for every Kubernetes version it still maps):
    /// also sets kubelet `cgroup-root=/kubelet` and
    /// `runtime-cgroups=/system.slice/containerd.service`. Default `true`.
    /// Only used with `kubeadm_fixups`.
    pub private_cgroupns: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubeadm_fixups: true,
            private_cgroupns: true,
        }
    }
}

/// What to run, and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The commands, in the order they must run.
    pub actions: Vec<Action>,
    /// Keys present in the data that are not executed, for the caller to log
    /// (e.g. `bootcmd`, `write_files[2].defer`, `passwd`, `storage.directories`).
    pub ignored: Vec<String>,
}

/// Turns bootstrap data into the actions that apply it. Never panics.
pub fn plan(data: &[u8], format: Format, options: &Options) -> Result<Plan, Error> {
    match format {
        Format::CloudConfig => cloudconfig::plan(data, options),
        Format::Ignition => ignition::plan(data, options),
    }
}

/// [`plan`] for cloud-config.
pub fn plan_cloud_config(data: &[u8], options: &Options) -> Result<Plan, Error> {
    cloudconfig::plan(data, options)
}

/// [`plan`] for Ignition.
pub fn plan_ignition(data: &[u8], options: &Options) -> Result<Plan, Error> {
    ignition::plan(data, options)
}
