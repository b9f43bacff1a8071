//! `tilt ci` with the repository's Tiltfile against the test environment: Tilt (built from
//! Go modules by `cargo xtask tilt`) applies the CRDs, builds the manager with cargo,
//! runs it, and exits successfully once the manager's /readyz probe passes.

use capd_e2e::cmd::{stdout, xtask};
use capd_e2e::proc::Proc;
use capd_testenv::{free_port, http_get, unique_name, TestEnv};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(420);

#[tokio::test]
async fn tilt_ci_runs_the_manager_until_ready() {
    let env = TestEnv::load().expect("test environment (run `cargo xtask up`)");
    // Builds Tilt the first time (long: a large Go module); cached afterwards.
    let tilt = stdout(&mut xtask(&["tilt"])).unwrap();
    let tilt = PathBuf::from(tilt.lines().last().unwrap_or_default().trim());
    assert!(
        tilt.is_file(),
        "`cargo xtask tilt` printed {}",
        tilt.display()
    );

    let (health, metrics) = (free_port().unwrap(), free_port().unwrap());
    let root = capd_e2e::repo_root();
    let path = format!(
        "{}:{}",
        env.state.bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(&tilt);
    cmd.current_dir(&root)
        .args([
            "ci",
            "--file",
            "Tiltfile",
            "--port",
            "0",
            "--timeout",
            &format!("{}s", BOUND.as_secs() - 30),
            "--",
        ])
        .arg(format!("--health-port={health}"))
        .arg(format!("--metrics-port={metrics}"))
        .arg(format!("--webhook-port={}", free_port().unwrap()))
        // Only this test's objects (none): leave other tests' clusters alone.
        .arg(format!(
            "--manager-arg=--watch-filter={}",
            unique_name("tilt")
        ))
        .env("KUBECONFIG", &env.state.kubeconfig)
        .env("DOCKER_HOST", env.docker_host())
        .env("PATH", path);
    let dir = capd_e2e::scratch_dir(&unique_name("tilt")).unwrap();
    let mut ci = Proc::spawn("tilt ci", cmd, &dir.join("tilt-ci.log")).unwrap();

    // The manager Tilt runs answers on its health port while `tilt ci` is up...
    let start = Instant::now();
    let mut served = false;
    let status = loop {
        if !served && matches!(http_get(health, "/readyz"), Ok((200, _))) {
            served = true;
        }
        if let Some(st) = ci.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < BOUND,
            "tilt ci still running after {BOUND:?}; log {}:\n{}",
            ci.log.display(),
            ci.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = ci.log_text();
    eprintln!("{}", capd_e2e::cmd::tail(&log, 25));
    // ...and `tilt ci` exits 0 once every resource, the manager's readiness probe included, is healthy.
    assert!(
        status.success(),
        "tilt ci exited with {status}; log {}:\n{}",
        ci.log.display(),
        ci.log_tail(60)
    );
    assert!(
        log.contains("SUCCESS. All workloads are healthy."),
        "tilt ci log:\n{log}"
    );
    assert!(
        log.contains("[readiness probe: success]"),
        "no successful readiness probe in the log:\n{log}"
    );
    assert!(
        log.contains(&format!("--health-addr=127.0.0.1:{health}")),
        "manager not started by Tilt:\n{log}"
    );
    assert!(
        served,
        "127.0.0.1:{health}/readyz never answered 200 while tilt ci ran"
    );
    eprintln!(
        "tilt ci: ready and exited in {:.1}s",
        start.elapsed().as_secs_f64()
    );

    // Tilt stops what it started.
    let gone = Instant::now();
    while http_get(health, "/readyz").is_ok() {
        assert!(
            gone.elapsed() < Duration::from_secs(15),
            "the manager still answers on {health} after tilt ci exited"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
