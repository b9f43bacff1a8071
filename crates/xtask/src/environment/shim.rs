//! The runc wrapper for sandboxes that cannot grant CAP_SYS_RESOURCE: dockerd runs it
//! as its default OCI runtime; it deletes that capability from the container's
//! `config.json` (create/run) or the exec process file (exec), then execs real runc.
//! The xtask binary doubles as the shim: installed under the name below, `main`
//! dispatches here by argv[0].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

pub const SHIM_NAME: &str = "capd-rs-runc";
const DROPPED: &str = "CAP_SYS_RESOURCE";

pub fn install_path() -> PathBuf {
    PathBuf::from("/usr/local/lib/capd-rs").join(SHIM_NAME)
}

/// True when this process was started as the shim.
pub fn invoked_as_shim() -> bool {
    std::env::args_os()
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n == SHIM_NAME)
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Entry point in shim mode; never returns unless exec fails.
pub fn run() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(file) = spec_file(&args) {
        // Best effort: if the file can't be edited, runc reports the real problem.
        let _ = drop_capability(&file);
    }
    let runc = [
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/local/sbin/runc",
        "/usr/local/bin/runc",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("runc");
    let err = std::process::Command::new(runc).args(&args).exec();
    eprintln!("{SHIM_NAME}: exec {runc}: {err}");
    std::process::exit(127);
}

/// The JSON file holding the capabilities to edit for this runc invocation.
fn spec_file(args: &[String]) -> Option<PathBuf> {
    let sub = args
        .iter()
        .position(|a| matches!(a.as_str(), "create" | "run" | "exec"))?;
    let rest = &args[sub + 1..];
    let flag_value = |names: &[&str]| -> Option<String> {
        for (i, a) in rest.iter().enumerate() {
            for n in names {
                if a == n {
                    return rest.get(i + 1).cloned();
                }
                if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                    return Some(v.to_string());
                }
            }
        }
        None
    };
    match args[sub].as_str() {
        "exec" => flag_value(&["--process", "-p"]).map(PathBuf::from),
        _ => {
            let bundle = flag_value(&["--bundle", "-b"])
                .map(PathBuf::from)
                .or_else(|| std::env::current_dir().ok())?;
            Some(bundle.join("config.json"))
        }
    }
}

fn drop_capability(file: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    // config.json keeps them under .process.capabilities, an exec process file at .capabilities.
    let caps = if doc.get("process").is_some() {
        doc.pointer_mut("/process/capabilities")
    } else {
        doc.pointer_mut("/capabilities")
    };
    let Some(serde_json::Value::Object(sets)) = caps else {
        return Ok(());
    };
    let mut changed = false;
    for list in sets.values_mut() {
        if let serde_json::Value::Array(items) = list {
            let before = items.len();
            items.retain(|c| c.as_str() != Some(DROPPED));
            changed |= items.len() != before;
        }
    }
    if changed {
        std::fs::write(
            file,
            serde_json::to_vec(&doc).map_err(std::io::Error::other)?,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bundle_config_and_exec_process() {
        let a: Vec<String> = [
            "--root",
            "/r",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "id",
        ]
        .map(String::from)
        .into();
        assert_eq!(spec_file(&a), Some(PathBuf::from("/b/config.json")));
        let a: Vec<String> = [
            "--log",
            "x",
            "exec",
            "--process",
            "/tmp/p.json",
            "--detach",
            "id",
        ]
        .map(String::from)
        .into();
        assert_eq!(spec_file(&a), Some(PathBuf::from("/tmp/p.json")));
        let a: Vec<String> = ["delete", "id"].map(String::from).into();
        assert_eq!(spec_file(&a), None);
    }

    #[test]
    fn removes_only_sys_resource_from_every_set() {
        let dir = std::env::temp_dir().join(format!("shim-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config.json");
        std::fs::write(
            &f,
            r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE"],"effective":["CAP_SYS_RESOURCE"],"permitted":["CAP_NET_ADMIN"]}},"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        drop_capability(&f).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN"])
        );
        assert_eq!(
            v["process"]["capabilities"]["effective"],
            serde_json::json!([])
        );
        assert_eq!(
            v["process"]["capabilities"]["permitted"],
            serde_json::json!(["CAP_NET_ADMIN"])
        );
        assert_eq!(v["root"]["path"], "rootfs");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
