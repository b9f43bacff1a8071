//! The environment tool's lifecycle, run as a second instance beside the main one (its
//! own state directory, every port shifted by 1000; caches and Docker shared):
//! a failing step names itself and its log and leaves nothing started; `up` then
//! works; `down` stops every process it started and removes the project's containers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const OFFSET: u16 = 1000;
const ETCD: u16 = 23791 + OFFSET;
const APISERVER: u16 = 16443 + OFFSET;
const KCM: u16 = 16257 + OFFSET;

fn xtask(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("CAPD_TESTENV_DIR", dir)
        .env("CAPD_TESTENV_PORT_OFFSET", OFFSET.to_string())
        .output()
        .expect("running xtask")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

/// Waits (bounded) until `check` holds; ports close a moment after their process exits.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        // Whatever happened, leave no process of this instance behind.
        let _ = xtask(&self.0, &["down"]);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn docker(args: &[&str]) -> Output {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .expect("docker CLI")
}

#[test]
fn failed_step_rolls_back_and_down_stops_everything() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("capd-rs-lifecycle-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();

    // 1. Something else holds kube-controller-manager's port: `up` must fail at that
    //    step, name it and its log, and stop the etcd and kube-apiserver it started.
    let blocker = TcpListener::bind(("127.0.0.1", KCM)).expect("port for the blocker");
    let out = xtask(&dir.0, &["up"]);
    let said = text(&out);
    assert!(!out.status.success(), "up must fail:\n{said}");
    assert!(
        said.contains("step `kube-controller-manager` failed"),
        "names the step:\n{said}"
    );
    let log = dir.0.join("logs/kube-controller-manager.log");
    assert!(
        said.contains(&log.display().to_string()),
        "names the log {}:\n{said}",
        log.display()
    );
    assert!(
        said.contains(&format!("127.0.0.1:{KCM}")),
        "says which port:\n{said}"
    );
    eventually("etcd and kube-apiserver of the failed run to stop", || {
        !open(ETCD) && !open(APISERVER)
    });
    drop(blocker);

    // 2. Now it comes up, and says so.
    let out = xtask(&dir.0, &["up"]);
    assert!(out.status.success(), "up:\n{}", text(&out));
    let status = text(&xtask(&dir.0, &["status"]));
    assert!(
        !status.contains("STOPPED") && status.contains("capi-controller-manager"),
        "{status}"
    );
    assert!(open(ETCD) && open(APISERVER) && open(KCM));
    let components: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("components.json")).unwrap())
            .unwrap();
    let pids: Vec<u64> = components
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["pid"].as_u64())
        .collect();
    assert_eq!(pids.len(), 6, "six components: {components}");
    assert!(pids.iter().all(|p| alive(*p)));

    // A container carrying the project's test label, as tests leave them on failure.
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("env.json")).unwrap()).unwrap();
    let image = env["images"]["base"].as_str().unwrap();
    let name = format!("capd-rs-lifecycle-{}", std::process::id());
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "io.x-k8s.capd-rs.test=lifecycle",
        image,
        "sleep",
        "600",
    ]);
    assert!(run.status.success(), "{}", text(&run));

    // 3. `down`: every process gone, every port closed, the container removed.
    let out = xtask(&dir.0, &["down"]);
    assert!(out.status.success(), "down:\n{}", text(&out));
    eventually("every component to exit", || {
        pids.iter().all(|p| !alive(*p))
    });
    eventually("every port to close", || {
        ![ETCD, APISERVER, KCM].iter().any(|p| open(*p))
    });
    let left = docker(&["ps", "-a", "-q", "--filter", &format!("name={name}")]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "container left after down"
    );
    assert!(!dir.0.join("env.json").exists(), "state says down");
}
