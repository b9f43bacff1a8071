//! Raw Docker: the containers the providers create, created, started and (for machines)
//! bootstrapped with the same execs, straight through the engine API with no Kubernetes
//! object and no controller. Every object's steps run in sequence, all objects at once,
//! in the order Cluster API imposes (a cluster's nodes after its load balancer), each
//! node bootstrapped once it has booted (systemd, then the CRI, as the providers wait):
//! the floor a provider can be measured against. Runs as its own process
//! (`capd-bench raw ...`) so its memory and CPU are measured like a manager's.

use crate::probe;
use crate::scenario::{self, Scenario, CLOUD_CONFIG};
use anyhow::{Context, Result};
use capd_api::{DockerMachine, DockerMachineSpec};
use capd_controllers::node;
use capd_loadbalancer::{ConfigData, LoadBalancerSpec, CONFIG_PATH};
use capd_runtime::{ContainerRuntime, DockerRuntime, ExecRequest, NetworkSpec};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RawArgs {
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    #[arg(long)]
    pub count: usize,
    /// Cluster names are `<prefix>-NN`.
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub haproxy_image: String,
    #[arg(long)]
    pub node_image: String,
    #[arg(long, default_value = "kind")]
    pub network: String,
}

/// What the worker prints (one JSON line) when it is done.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct RawResult {
    pub wall_s: f64,
    pub delete_s: Option<f64>,
    /// Seconds of each unit's own container work (clusters: a load balancer; machines: a
    /// node; churn: a cluster's load balancer and node, created, then removed), the
    /// floor of a provider's own time per unit (see `timeline`).
    #[serde(default)]
    pub per_unit_s: Vec<f64>,
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
    pub rss_kb: u64,
}

async fn load_balancer(rt: &dyn ContainerRuntime, a: &RawArgs, cluster: &str) -> Result<()> {
    let spec = LoadBalancerSpec {
        image: a.haproxy_image.clone(),
        network: a.network.clone(),
        ..LoadBalancerSpec::new(cluster)
    }
    .container_spec()
    .label("io.x-k8s.capd-rs.bench", "raw");
    let id = rt.create_container(&spec).await?;
    let config = capd_loadbalancer::config::render(&ConfigData::default(), None)
        .context("rendering the HAProxy configuration")?;
    rt.write_file(&id, CONFIG_PATH, config.as_bytes(), 0o644)
        .await?;
    rt.start_container(&id).await?;
    // The providers read the address back for the control-plane endpoint.
    rt.inspect_container(&id).await?;
    Ok(())
}

async fn machine(
    rt: &dyn ContainerRuntime,
    a: &RawArgs,
    cluster: &str,
    machine: &str,
    plan: &capd_bootstrap::Plan,
) -> Result<()> {
    let name = node::container_name(cluster, machine);
    let dm = DockerMachine::new(
        machine,
        DockerMachineSpec {
            custom_image: a.node_image.clone(),
            ..Default::default()
        },
    );
    let params = node::NodeParams {
        name: &name,
        cluster,
        image: &a.node_image,
        network: &a.network,
        control_plane: false,
        failure_domain: None,
        family: capd_controllers::ip_family::IpFamily::V4,
    };
    let spec = node::spec(&dm, &params).label("io.x-k8s.capd-rs.bench", "raw");
    rt.run_container(&spec).await?;
    wait_for_boot(rt, &name).await?;
    for action in &plan.actions {
        let mut req = ExecRequest::new(action.argv.clone());
        if let Some(stdin) = &action.stdin {
            req = req.stdin(stdin.clone());
        }
        rt.exec_checked(&name, req)
            .await
            .with_context(|| format!("{name}: {}", action.description))?;
    }
    rt.inspect_container(&name).await?;
    Ok(())
}

/// The providers' wait before a bootstrap (CAPD's and capd-rs's `CGroupsReady`): systemd
/// at multi-user.target (waited on with `systemctl is-system-running --wait` in between,
/// as capd-rs does), then `crictl ps` answering, looked at every [`BOOT_LOOK`]: the floor
/// of what a provider waiting for it could reach.
async fn wait_for_boot(rt: &dyn ContainerRuntime, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = |argv: &'static [&'static str]| async move {
        rt.exec(name, ExecRequest::new(argv.iter().copied()))
            .await
            .with_context(|| format!("{name}: {}", argv.join(" ")))
    };
    for argv in [
        &node::SYSTEMD_READY_COMMAND[..],
        &node::CRI_READY_COMMAND[..],
    ] {
        loop {
            if run(argv).await?.success() {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("{name}: `{}` did not succeed within 120 s", argv.join(" "));
            }
            if argv == node::SYSTEMD_READY_COMMAND {
                run(&node::SYSTEMD_BOOT_WAIT_COMMAND).await?;
            } else {
                tokio::time::sleep(BOOT_LOOK).await;
            }
        }
    }
    Ok(())
}

const BOOT_LOOK: Duration = Duration::from_millis(250);

pub async fn worker(a: RawArgs) -> Result<()> {
    let rt = DockerRuntime::from_env().context("container engine (DOCKER_HOST)")?;
    let rt: &dyn ContainerRuntime = &rt;
    let plan = capd_bootstrap::plan(
        CLOUD_CONFIG.as_bytes(),
        capd_bootstrap::Format::CloudConfig,
        &Default::default(),
    )
    .context("planning the benchmark's cloud-config")?;
    let cluster = |i: usize| format!("{}-{i:02}", a.prefix);
    let start = Instant::now();
    rt.ensure_network(&NetworkSpec::bridge(&a.network)).await?;
    let mut delete_s = None;
    let timed = |f: Instant| f.elapsed().as_secs_f64();
    let per_unit_s = match a.scenario {
        Scenario::Clusters => {
            futures::future::try_join_all((0..a.count).map(|i| {
                let c = cluster(i);
                let a = &a;
                async move {
                    let t = Instant::now();
                    load_balancer(rt, a, &c).await?;
                    Ok::<_, anyhow::Error>(timed(t))
                }
            }))
            .await?
        }
        Scenario::Machines => {
            // Nodes after their load balancer, as Cluster API orders them (a machine
            // waits for the cluster's infrastructure to be provisioned).
            let c = cluster(0);
            load_balancer(rt, &a, &c).await?;
            futures::future::try_join_all((0..a.count).map(|i| {
                let (c, m) = (c.clone(), format!("{}-m{i:02}", cluster(0)));
                let plan = &plan;
                let a = &a;
                async move {
                    let t = Instant::now();
                    machine(rt, a, &c, &m, plan).await?;
                    Ok::<_, anyhow::Error>(timed(t))
                }
            }))
            .await?
        }
        Scenario::Churn => {
            let created = futures::future::try_join_all((0..a.count).map(|i| {
                let c = cluster(i);
                let plan = &plan;
                let a = &a;
                async move {
                    let t = Instant::now();
                    let m = format!("{c}-m00");
                    load_balancer(rt, a, &c).await?;
                    machine(rt, a, &c, &m, plan).await?;
                    Ok::<_, anyhow::Error>(timed(t))
                }
            }))
            .await?;
            // Each cluster's node, then its load balancer: the order Cluster API deletes
            // them in (a Cluster's Machines before its infrastructure).
            let del = Instant::now();
            let removed = futures::future::try_join_all((0..a.count).map(|i| {
                let c = cluster(i);
                async move {
                    let t = Instant::now();
                    rt.remove_container(&node::container_name(&c, &format!("{c}-m00")))
                        .await?;
                    rt.remove_container(&LoadBalancerSpec::new(&c).container_name())
                        .await?;
                    Ok::<_, anyhow::Error>(timed(t))
                }
            }))
            .await?;
            let left = scenario::containers_with_prefix(rt, &a.prefix).await?;
            if !left.is_empty() {
                anyhow::bail!(
                    "{} containers of {} left after removing them",
                    left.len(),
                    a.prefix
                );
            }
            delete_s = Some(del.elapsed().as_secs_f64());
            created.iter().zip(&removed).map(|(c, r)| c + r).collect()
        }
        Scenario::Workload => {
            anyhow::bail!("workload: raw Docker has no equivalent (no Cluster API, no kubeadm)")
        }
    };
    let wall_s = start.elapsed().as_secs_f64();
    let pid = std::process::id();
    let r = RawResult {
        wall_s,
        delete_s,
        per_unit_s,
        cpu_s: probe::cpu_seconds(pid).unwrap_or(0.0),
        peak_rss_kb: probe::status_kb(pid, "VmHWM").unwrap_or(0),
        rss_kb: probe::status_kb(pid, "VmRSS").unwrap_or(0),
    };
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
