//! Expected actions, spelled out literally so the tests pin the exact argv.
#![allow(dead_code)]

use capd_bootstrap::{Action, ActionKind};

pub const WRITE: &str = "mkdir -p -- \"$1\" && cat > \"$2\"";
pub const APPEND: &str = "mkdir -p -- \"$1\" && cat >> \"$2\"";
pub const PREFLIGHT: &str =
    "--ignore-preflight-errors=SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables";

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

pub fn write(origin: &str, dir: &str, path: &str, content: &[u8]) -> Action {
    Action {
        argv: s(&["/bin/sh", "-c", WRITE, "capd-write-file", dir, path]),
        stdin: Some(content.to_vec()),
        retries: 5,
        description: format!("{origin}: write {path}"),
        kind: ActionKind::WriteFile {
            path: path.into(),
            append: false,
        },
    }
}

pub fn append(origin: &str, dir: &str, path: &str, content: &[u8]) -> Action {
    Action {
        argv: s(&["/bin/sh", "-c", APPEND, "capd-write-file", dir, path]),
        stdin: Some(content.to_vec()),
        retries: 5,
        description: format!("{origin}: append to {path}"),
        kind: ActionKind::WriteFile {
            path: path.into(),
            append: true,
        },
    }
}

pub fn chmod(origin: &str, mode: &str, path: &str) -> Action {
    Action {
        argv: s(&["chmod", mode, path]),
        stdin: None,
        retries: 5,
        description: format!("{origin}: chmod {mode} {path}"),
        kind: ActionKind::Chmod {
            path: path.into(),
            mode: u32::from_str_radix(mode, 8).unwrap(),
        },
    }
}

pub fn chown(origin: &str, owner: &str, path: &str) -> Action {
    Action {
        argv: s(&["chown", "--", owner, path]),
        stdin: None,
        retries: 5,
        description: format!("{origin}: chown {owner} {path}"),
        kind: ActionKind::Chown {
            path: path.into(),
            owner: owner.into(),
        },
    }
}

pub fn sentinel() -> Action {
    Action {
        argv: s(&[
            "/bin/sh",
            "-c",
            "mkdir -p /run/cluster-api && echo started > /run/cluster-api/capd.bootstrap.started",
        ]),
        stdin: None,
        retries: 5,
        description: "record that kubeadm started: write /run/cluster-api/capd.bootstrap.started"
            .into(),
        kind: ActionKind::Sentinel,
    }
}

pub fn run(index: usize, kubeadm: bool, argv: &[&str], shown: &str) -> Action {
    Action {
        argv: s(argv),
        stdin: None,
        retries: 0,
        description: format!("runcmd[{index}]: {shown}"),
        kind: ActionKind::RunCommand { index, kubeadm },
    }
}

pub fn systemctl(origin: &str, unit: &str, args: &[&str]) -> Action {
    let mut argv = vec!["systemctl"];
    argv.extend_from_slice(args);
    Action {
        argv: s(&argv),
        stdin: None,
        retries: 5,
        description: format!("{origin}: {}", argv.join(" ")),
        kind: ActionKind::Systemd { unit: unit.into() },
    }
}

/// Compares action by action, so a failure shows the first difference.
pub fn assert_actions(got: &[Action], want: &[Action]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "action {i} differs");
    }
    assert_eq!(got.len(), want.len(), "number of actions; got {got:#?}");
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
