//! Time to create and start N load balancers through the runtime trait, next to the
//! same N through the plain `docker` CLI, against the test environment's engine.
//!
//! `cargo bench -p capd-loadbalancer --bench create_load_balancers`
//! (`CAPD_RS_BENCH_LBS` sets N, default 5). Prints figures; asserts nothing on time.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use capd_loadbalancer::{LoadBalancer, LoadBalancerSpec};
use capd_runtime::{ContainerRuntime, DockerRuntime, NetworkSpec, RestartPolicy};
use capd_testenv::{unique_name, TestEnv, TEST_LABEL, TEST_NETWORK};

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn spec(cluster: &str, image: &str) -> LoadBalancerSpec {
    LoadBalancerSpec {
        image: image.to_string(),
        network: TEST_NETWORK.to_string(),
        labels: BTreeMap::from([(TEST_LABEL.to_string(), "true".to_string())]),
        ..LoadBalancerSpec::new(cluster)
    }
}

/// `docker run -d` with the flags the load-balancer spec asks for.
fn docker_run(host: &str, cluster: &str, image: &str) -> Result<()> {
    let name = format!("{cluster}-lb");
    let out = Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(["run", "-d", "--name", &name, "--hostname", &name])
        .args(["--label", &format!("{TEST_LABEL}=true")])
        .args(["--label", &format!("io.x-k8s.kind.cluster={cluster}")])
        .args(["--label", "io.x-k8s.kind.role=external-load-balancer"])
        .args(["--network", TEST_NETWORK, "--restart", "no"])
        .args(["-p", "127.0.0.1::6443", "-p", "127.0.0.1::8404"])
        .args([
            "--entrypoint",
            "haproxy",
            image,
            "-W",
            "-db",
            "-f",
            capd_loadbalancer::CONFIG_PATH,
        ])
        .output()
        .context("running docker")?;
    if !out.status.success() {
        bail!("docker run: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

async fn remove_all(rt: &dyn ContainerRuntime, clusters: &[String]) -> Result<()> {
    for c in clusters {
        rt.remove_container(&format!("{c}-lb")).await?;
    }
    Ok(())
}

fn per(total: Duration, n: usize) -> String {
    format!(
        "{:>8.1} ms total {:>7.1} ms each",
        total.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / n as f64
    )
}

async fn run() -> Result<()> {
    let n: usize = std::env::var("CAPD_RS_BENCH_LBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let env = TestEnv::load()?;
    let host = env.docker_host().to_string();
    let image = env.state.images.haproxy.clone();
    let rt: Arc<dyn ContainerRuntime> = Arc::new(DockerRuntime::new(&host)?);
    rt.ensure_network(&NetworkSpec::bridge(TEST_NETWORK).label(TEST_LABEL, "true"))
        .await?;
    let info = rt.engine_info().await?;
    println!(
        "engine {} {} (API {}), {n} load balancers each way, image {image}",
        info.product, info.version, info.api_version
    );

    // Warm-up, untimed: first contact, image metadata, CLI binary in the page cache.
    let warm = vec![unique_name("bench-warm"), unique_name("bench-warm")];
    docker_run(&host, &warm[0], &image)?;
    rt.run_container(&spec(&warm[1], &image).container_spec())
        .await?;
    remove_all(rt.as_ref(), &warm).await?;

    // 1. The docker CLI, one `docker run -d` process per load balancer.
    let cli: Vec<String> = (0..n).map(|_| unique_name("bench-cli")).collect();
    let start = Instant::now();
    for c in &cli {
        docker_run(&host, c, &image)?;
    }
    let t_cli = start.elapsed();
    remove_all(rt.as_ref(), &cli).await?;

    // 2. The trait: create + start with the same container spec (restart policy
    //    aligned with the CLI run).
    let via_trait: Vec<String> = (0..n).map(|_| unique_name("bench-rt")).collect();
    let start = Instant::now();
    for c in &via_trait {
        let mut s = spec(c, &image).container_spec();
        s.restart = RestartPolicy::No;
        rt.run_container(&s).await?;
    }
    let t_trait = start.elapsed();
    remove_all(rt.as_ref(), &via_trait).await?;

    // 3. What the cluster controller does: LoadBalancer::ensure (network check,
    //    inspect, create, write the configuration into it, start, inspect).
    let via_lb: Vec<String> = (0..n).map(|_| unique_name("bench-lb")).collect();
    let start = Instant::now();
    for c in &via_lb {
        LoadBalancer::new(rt.clone(), spec(c, &image))
            .ensure()
            .await?;
    }
    let t_lb = start.elapsed();
    remove_all(rt.as_ref(), &via_lb).await?;

    println!("docker CLI  (docker run -d)            {}", per(t_cli, n));
    println!("trait       (run_container)            {}", per(t_trait, n));
    println!("trait       (LoadBalancer::ensure)     {}", per(t_lb, n));
    println!(
        "ratio trait/CLI: run_container {:.2}, LoadBalancer::ensure {:.2}",
        t_trait.as_secs_f64() / t_cli.as_secs_f64(),
        t_lb.as_secs_f64() / t_cli.as_secs_f64()
    );
    Ok(())
}
