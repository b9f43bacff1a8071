//! Runs the planned file actions with the local /bin/sh, as `docker exec` would
//! in the node: hostile paths land exactly where asked, with exactly the
//! content and mode asked, and nothing in a path is executed.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use capd_bootstrap::{
    plan_cloud_config, plan_ignition, sentinel_check_command, sentinel_check_result, Action,
    ActionKind, Options,
};

fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "capd-bootstrap-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn exec(action: &Action) -> std::process::Output {
    let mut child = Command::new(&action.argv[0])
        .args(&action.argv[1..])
        .stdin(if action.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", action.description));
    if let Some(stdin) = &action.stdin {
        child.stdin.take().unwrap().write_all(stdin).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        action.description,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_file_actions(actions: &[Action]) {
    for a in actions {
        match a.kind {
            ActionKind::WriteFile { .. } | ActionKind::Chmod { .. } | ActionKind::Chown { .. } => {
                exec(a);
            }
            ref other => panic!("unexpected {other:?}"),
        }
    }
}

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "it's",
    "dq\"uote",
    "$(touch CANARY)",
    "`touch CANARY`",
    "; touch CANARY;",
    "&& touch CANARY",
    "| tee CANARY",
    "> CANARY",
    "$HOME",
    "${IFS}",
    "*",
    "-rf",
    "--",
    "new\nline",
    "tab\there",
    "back\\slash",
    "ünïcödé 🦀",
    "'; touch CANARY; echo '",
];

#[test]
fn hostile_paths_are_written_verbatim_and_never_executed() {
    let root = scratch("paths");
    let uid_gid = {
        let m = std::fs::metadata(&root).unwrap();
        format!("{}:{}", m.uid(), m.gid())
    };
    let mut entries = Vec::new();
    let mut expected: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    for (i, name) in HOSTILE.iter().enumerate() {
        let name = name.replace("CANARY", &root.join("canary").display().to_string());
        let path = root.join(&name).join(format!("file {i} {name}"));
        let content: Vec<u8> = (0..=255u8).cycle().skip(i).take(300 + i).collect();
        let mode = [0o600, 0o640, 0o755, 0o644][i % 4];
        entries.push(serde_json::json!({
            "path": path.to_str().unwrap(),
            "encoding": "b64",
            "content": common::b64(&content),
            "permissions": format!("{mode:04o}"),
            "owner": uid_gid,
        }));
        expected.push((path, content, mode));
    }
    // JSON is YAML: lets serde_json do the quoting of the hostile names.
    let doc = serde_json::json!({ "write_files": entries }).to_string();
    let plan = plan_cloud_config(doc.as_bytes(), &Options::default()).unwrap();
    run_file_actions(&plan.actions);

    for (path, content, mode) in &expected {
        assert_eq!(
            &std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")),
            content,
            "{path:?}"
        );
        assert_eq!(
            std::fs::metadata(path).unwrap().permissions().mode() & 0o7777,
            *mode,
            "{path:?}"
        );
    }
    assert!(!root.join("canary").exists(), "a path was executed");
    // Nothing landed outside the scratch directory.
    assert!(!Path::new("CANARY").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn append_appends_and_write_replaces() {
    let root = scratch("append");
    let f = root.join("sub dir/f");
    let doc = serde_json::json!({"write_files": [
        {"path": f.to_str().unwrap(), "content": "one\n"},
        {"path": f.to_str().unwrap(), "content": "two\n", "append": true},
        {"path": f.to_str().unwrap(), "content": "three\n", "append": true},
    ]})
    .to_string();
    let plan = plan_cloud_config(doc.as_bytes(), &Options::default()).unwrap();
    run_file_actions(&plan.actions);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "one\ntwo\nthree\n");
    // Running the plan again (a retried bootstrap) writes the first file anew.
    run_file_actions(&plan.actions);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "one\ntwo\nthree\n");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn ignition_files_are_written_with_their_mode() {
    let root = scratch("ignition");
    let f = root.join("a b/$(x)");
    let doc = serde_json::json!({"ignition": {"version": "2.3.0"}, "storage": {"files": [
        {"path": f.to_str().unwrap(), "mode": 0o751, "contents": {"source": "data:,hello%0Aworld"}},
    ]}})
    .to_string();
    let plan = plan_ignition(doc.as_bytes(), &Options::default()).unwrap();
    run_file_actions(&plan.actions);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello\nworld");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o751
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sentinel_check_command_runs_and_its_output_parses() {
    let argv = sentinel_check_command();
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    assert!(out.status.success());
    let exists = Path::new(capd_bootstrap::SENTINEL_PATH).exists();
    assert_eq!(sentinel_check_result(&out.stdout), Some(exists));
}
