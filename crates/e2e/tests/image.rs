//! The Dockerfile builds with no registry (classic builder, the environment's base image,
//! a host-built binary) and the image runs the manager.

use capd_e2e::artifacts::{build_image, manager_binary, mb, TEST_IMAGE};
use capd_e2e::cmd::{docker, run, stdout};
use capd_testenv::{TestEnv, TEST_LABEL};

fn env() -> TestEnv {
    TestEnv::load().expect("test environment (run `cargo xtask up`)")
}

#[test]
fn image_builds_offline_and_runs_the_manager() {
    let env = env();
    let bin = manager_binary().unwrap();
    let image = build_image(&env, TEST_IMAGE, &bin).unwrap();
    eprintln!(
        "built {} ({}) in {:.1}s: {}",
        image.tag,
        &image.id[..19.min(image.id.len())],
        image.build_time.as_secs_f64(),
        mb(image.size_bytes)
    );

    // The entrypoint is /manager (Cluster API's Tilt runs that path), as root, ports declared.
    let cfg = stdout(docker(&env).args([
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        TEST_IMAGE,
    ]))
    .unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/manager"]),
        "image config: {cfg}"
    );
    assert_eq!(cfg["User"], "0:0", "image config: {cfg}");
    for port in ["9440/tcp", "8443/tcp"] {
        assert!(
            cfg["ExposedPorts"].get(port).is_some(),
            "{port} not exposed: {cfg}"
        );
    }

    // The manager starts in the image (dynamic linking against the runtime image's glibc works).
    let label = format!("{TEST_LABEL}=image-help");
    let help = stdout(docker(&env).args(["run", "--rm", "--label", &label, TEST_IMAGE, "--help"]))
        .unwrap();
    for flag in [
        "--leader-elect",
        "--namespace",
        "--watch-filter",
        "--health-addr",
        "--diagnostics-address",
        "--docker-network",
        "--kubeconfig",
    ] {
        assert!(
            help.contains(flag),
            "`{TEST_IMAGE} --help` lacks {flag}:\n{help}"
        );
    }
    let version =
        stdout(docker(&env).args(["run", "--rm", "--label", &label, TEST_IMAGE, "--version"]))
            .unwrap();
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "--version: {version}"
    );

    // Nothing but the base image and the binary: no sources, no toolchain, no build context.
    let base_size: u64 = stdout(docker(&env).args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        &env.state.images.base,
    ]))
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let bin_size = std::fs::metadata(&bin).unwrap().len();
    let slack = 1_000_000;
    assert!(
        image.size_bytes <= base_size + bin_size + slack,
        "image {} is {} but base {} + binary {} is {}",
        TEST_IMAGE,
        mb(image.size_bytes),
        mb(base_size),
        mb(bin_size),
        mb(base_size + bin_size)
    );
    let ls = stdout(docker(&env).args([
        "run",
        "--rm",
        "--entrypoint",
        "ls",
        "--label",
        &label,
        TEST_IMAGE,
        "/",
    ]))
    .unwrap();
    for absent in ["src", "out", "Cargo.toml"] {
        assert!(
            !ls.lines().any(|l| l == absent),
            "/{absent} in the runtime image: {ls}"
        );
    }
}

#[test]
fn offline_build_names_a_missing_prebuilt_binary() {
    let env = env();
    let ctx = capd_e2e::scratch_dir("image-context-missing").unwrap();
    std::fs::write(ctx.join("README"), "no binary here\n").unwrap();
    let base = &env.state.images.base;
    let err = run(docker(&env)
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            // The failing step's container would otherwise stay behind on every run.
            "--force-rm",
            "-t",
            "localhost/capd-rs/capd-manager:e2e-missing",
            "-f",
        ])
        .arg(capd_e2e::repo_root().join("Dockerfile"))
        .args([
            "--build-arg",
            &format!("BUILDER_IMAGE={base}"),
            "--build-arg",
            &format!("RUNTIME_IMAGE={base}"),
        ])
        .args(["--build-arg", "PREBUILT=target/release/capd-manager"])
        .arg(&ctx))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("PREBUILT=target/release/capd-manager: no such file in the build context"),
        "{err}"
    );
}
