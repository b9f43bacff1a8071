//! capd-bench: capd-rs side by side with CAPD and raw Docker. Run it through
//! `cargo xtask bench`, which builds CAPD, the manager and this driver and passes the
//! paths in. Each provider gets a private management plane (see `plane`); each
//! scenario a fresh provider process whose memory, CPU, API requests and reconciles
//! are read from /proc and its metrics endpoint.

mod capi;
mod plane;
mod probe;
mod provider;
mod raw;
mod report;
mod scenario;
mod timeline;
mod workload;

use anyhow::{bail, Context, Result};
use capd_runtime::{ContainerRuntime, DockerRuntime};
use capd_testenv::TestEnv;
use clap::{Args, Parser, Subcommand};
use provider::{Bins, Contender, Provider};
use report::{Machine, Measurement, Report};
use scenario::{Objects, Scenario};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "cargo xtask bench",
    about = "capd-rs side by side with CAPD and raw Docker"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the benchmark (what `cargo xtask bench` calls).
    Run(RunArgs),
    /// One raw-Docker run, as a process of its own (used by `run`).
    #[command(hide = true)]
    Raw(raw::RawArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Which {
    Clusters,
    Machines,
    Churn,
    Workload,
    /// clusters, machines and churn (not workload: it runs real Kubernetes clusters).
    All,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[arg(long, hide = true)]
    capd_bin: PathBuf,
    #[arg(long, hide = true)]
    capd_module: PathBuf,
    #[arg(long, hide = true)]
    capi_module: PathBuf,
    #[arg(long, hide = true)]
    manager_bin: PathBuf,
    /// Node image of clusters/machines/churn (a systemd node; `cargo xtask bench` passes the
    /// environment's light one); default: the environment's node image.
    #[arg(long, hide = true)]
    node_image: Option<String>,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Which,
    /// `clusters`: how many Clusters + DockerClusters (load balancer only).
    #[arg(long, default_value_t = 20)]
    n: usize,
    /// `machines`: how many Machines + DockerMachines in one cluster.
    #[arg(long, default_value_t = 10)]
    m: usize,
    /// `churn`: how many clusters of one machine each are created and deleted.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// `workload`: how many clusters of the default flavour at once, comma-separated
    /// (one run per value), e.g. `--w 1,3`.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 3])]
    w: Vec<usize>,
    /// Contenders to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["capd-rs", "capd", "raw"])]
    only: Vec<Contender>,
    /// Also run `clusters` at these N (comma-separated), for the time-against-N plot.
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Also run `machines` at these M (comma-separated), e.g. `--m-sweep 10,30`.
    #[arg(long, value_delimiter = ',')]
    m_sweep: Vec<usize>,
    /// Write docs/benchmarks.md (the generated part) and docs/benchmarks-clusters.svg.
    #[arg(long)]
    write_docs: bool,
    /// Don't run: print (and with --write-docs, write) the results saved in this JSON file.
    #[arg(long)]
    render: Option<PathBuf>,
    /// Extra flag for the capd-rs manager (repeatable), e.g. `--manager-arg=--kube-api-qps=100`.
    #[arg(long, allow_hyphen_values = true)]
    manager_arg: Vec<String>,
    /// Extra flag for CAPD's manager (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    capd_arg: Vec<String>,
    /// Run each scenario this many times per contender; the tables show medians.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Upper bound for each wait (provisioning, deletion), in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// `clusters`: once every cluster is provisioned, keep the manager this many seconds
    /// with nothing to do and count its reconciles, API requests and CPU in that window.
    #[arg(long, default_value_t = 0)]
    idle: u64,
}

impl RunArgs {
    fn command_line(&self) -> String {
        let mut s = String::from("cargo xtask bench");
        let which = match self.scenario {
            Which::Clusters => "clusters",
            Which::Machines => "machines",
            Which::Churn => "churn",
            Which::Workload => "workload",
            Which::All => "all",
        };
        s.push_str(&format!(" --scenario {which}"));
        if matches!(self.scenario, Which::Clusters | Which::All) {
            s.push_str(&format!(" --n {}", self.n));
        }
        if matches!(self.scenario, Which::Machines | Which::All) {
            s.push_str(&format!(" --m {}", self.m));
        }
        if matches!(self.scenario, Which::Churn | Which::All) {
            s.push_str(&format!(" --k {}", self.k));
        }
        if self.scenario == Which::Workload {
            let v: Vec<String> = self
                .workload_sizes()
                .iter()
                .map(|n| n.to_string())
                .collect();
            s.push_str(&format!(" --w {}", v.join(",")));
        }
        if self.only.len() < 3 {
            let names: Vec<&str> = self
                .only
                .iter()
                .map(|c| match c {
                    Contender::CapdRs => "capd-rs",
                    Contender::Capd => "capd",
                    Contender::Raw => "raw",
                })
                .collect();
            s.push_str(&format!(" --only {}", names.join(",")));
        }
        if !self.sweep.is_empty() {
            let v: Vec<String> = self.sweep.iter().map(|n| n.to_string()).collect();
            s.push_str(&format!(" --sweep {}", v.join(",")));
        }
        if !self.m_sweep.is_empty() {
            let v: Vec<String> = self.m_sweep.iter().map(|n| n.to_string()).collect();
            s.push_str(&format!(" --m-sweep {}", v.join(",")));
        }
        if self.idle > 0 {
            s.push_str(&format!(" --idle {}", self.idle));
        }
        if self.repeat > 1 {
            s.push_str(&format!(" --repeat {}", self.repeat));
        }
        for a in &self.manager_arg {
            s.push_str(&format!(" --manager-arg={a}"));
        }
        for a in &self.capd_arg {
            s.push_str(&format!(" --capd-arg={a}"));
        }
        if self.write_docs {
            s.push_str(" --write-docs");
        }
        s
    }

    /// (scenario, size) pairs in the order they run.
    fn runs(&self) -> Vec<(Scenario, usize)> {
        let mut out = Vec::new();
        if matches!(self.scenario, Which::Clusters | Which::All) {
            let mut ns: Vec<usize> = self
                .sweep
                .iter()
                .copied()
                .chain([self.n])
                .filter(|n| *n > 0)
                .collect();
            ns.sort();
            ns.dedup();
            out.extend(ns.into_iter().map(|n| (Scenario::Clusters, n)));
        }
        if matches!(self.scenario, Which::Machines | Which::All) {
            let mut ms: Vec<usize> = self
                .m_sweep
                .iter()
                .copied()
                .chain([self.m])
                .filter(|m| *m > 0)
                .collect();
            ms.sort();
            ms.dedup();
            out.extend(ms.into_iter().map(|m| (Scenario::Machines, m)));
        }
        if matches!(self.scenario, Which::Churn | Which::All) && self.k > 0 {
            out.push((Scenario::Churn, self.k));
        }
        if self.scenario == Which::Workload {
            out.extend(
                self.workload_sizes()
                    .into_iter()
                    .map(|w| (Scenario::Workload, w)),
            );
        }
        out
    }

    /// `--w` sorted, without zeros and repeats.
    fn workload_sizes(&self) -> Vec<usize> {
        let mut ws: Vec<usize> = self.w.iter().copied().filter(|w| *w > 0).collect();
        ws.sort();
        ws.dedup();
        ws
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Run(a) => run(a).await,
            Cmd::Raw(a) => raw::worker(a).await,
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Ctx {
    env: TestEnv,
    /// The environment's node image plus a `crictl` stand-in (see [`bench_node_image`]);
    /// empty when only `workload` runs (its flavour uses kindest/node, see `workload`).
    node_image: String,
    rt: Arc<DockerRuntime>,
    bins: Bins,
    run_id: String,
    lb_repo: String,
    lb_tag: String,
    timeout: Duration,
    /// `clusters`: the idle window after done (zero: none).
    idle: Duration,
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:04x}",
        (nanos as u64 ^ std::process::id() as u64) & 0xffff
    )
}

fn who_tag(who: Contender) -> &'static str {
    match who {
        Contender::CapdRs => "r",
        Contender::Capd => "g",
        Contender::Raw => "x",
    }
}

async fn run(a: RunArgs) -> Result<()> {
    let root = capd_testenv::workspace_root();
    let root = root.canonicalize().unwrap_or(root);
    if let Some(path) = &a.render {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        print!("{}", report.text_tables());
        if a.write_docs {
            report.write_docs(&root)?;
        }
        return Ok(());
    }
    let env = TestEnv::load().context("test environment (run `cargo xtask up`)")?;
    let rt = Arc::new(DockerRuntime::new(env.docker_host()).context("container engine")?);
    let engine = rt
        .engine_info()
        .await
        .context("the Docker engine does not answer")?;
    let (lb_repo, lb_tag) = scenario::lb_repo_tag(&env.state.images.haproxy)?;
    let runs = a.runs();
    let node_image = if runs.iter().any(|(sc, _)| *sc != Scenario::Workload) {
        bench_node_image(&env, rt.as_ref(), a.node_image.as_deref()).await?
    } else {
        String::new()
    };
    if runs.iter().any(|(sc, _)| *sc == Scenario::Workload) {
        workload::check_images(rt.as_ref()).await?;
    }
    let ctx = Ctx {
        node_image,
        bins: Bins {
            manager: a.manager_bin.clone(),
            capd: a.capd_bin.clone(),
            capd_module: a.capd_module.clone(),
            manager_args: a.manager_arg.clone(),
            capd_args: a.capd_arg.clone(),
        },
        env,
        rt,
        run_id: run_id(),
        lb_repo,
        lb_tag,
        timeout: Duration::from_secs(a.timeout),
        idle: Duration::from_secs(a.idle),
    };
    let mut machine = Machine::probe(&engine.version);
    machine.load_before = probe::loadavg();
    eprintln!(
        "run {}: {}; load average {:.2} {:.2} {:.2}",
        ctx.run_id,
        machine.summary_with_revision(),
        machine.load_before.0,
        machine.load_before.1,
        machine.load_before.2
    );
    let mut measurements = Vec::new();
    let mut failures = Vec::new();
    let mut contenders = a.only.clone();
    contenders.sort();
    contenders.dedup();
    let work = run_all(
        &ctx,
        &a,
        &runs,
        &contenders,
        &mut measurements,
        &mut failures,
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        res = work => res?,
        _ = tokio::signal::ctrl_c() => return interrupted(&ctx).await,
        _ = term.recv() => return interrupted(&ctx).await,
    }
    machine.load_after = probe::loadavg();
    let report = Report {
        run_id: ctx.run_id.clone(),
        command: a.command_line(),
        machine,
        n: a.n,
        m: a.m,
        k: a.k,
        w: runs
            .iter()
            .filter(|(sc, _)| *sc == Scenario::Workload)
            .map(|(_, w)| *w)
            .collect(),
        measurements,
        failures: failures.clone(),
        images: if runs.iter().any(|(sc, _)| *sc == Scenario::Workload) {
            workload::image_sizes(ctx.env.docker_host()).await
        } else {
            Vec::new()
        },
    };
    print!("{}", report.text_tables());
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let path = out.join(format!("{}.json", ctx.run_id));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    eprintln!("results: {}", path.display());
    if a.write_docs {
        report.write_docs(&root)?;
    }
    if !failures.is_empty() {
        bail!("{} run(s) failed:\n{}", failures.len(), failures.join("\n"));
    }
    Ok(())
}

/// After Ctrl-C or SIGTERM: the planes and managers are gone with the dropped work
/// (their Drop kills them); remove this run's containers and etcd keys.
async fn interrupted(ctx: &Ctx) -> Result<()> {
    eprintln!(
        "interrupted: removing run {}'s containers and etcd keys",
        ctx.run_id
    );
    // Every scenario prefix of this run starts with `b<run id>` (see `run_prefix`).
    let removed = scenario::remove_matching(
        ctx.rt.as_ref(),
        &format!("b{}", ctx.run_id),
        scenario::Match::Run,
    )
    .await;
    let removed = match removed {
        Ok(n) => n,
        Err(e) => {
            eprintln!("removing containers: {e:#}");
            0
        }
    };
    for who in [Contender::CapdRs, Contender::Capd] {
        if let Err(e) =
            plane::wipe_etcd_prefix(&format!("/capd-bench-{}-{}", ctx.run_id, who_tag(who))).await
        {
            eprintln!("{e:#}");
        }
    }
    bail!("interrupted (removed {removed} containers)")
}

async fn run_all(
    ctx: &Ctx,
    a: &RunArgs,
    runs: &[(Scenario, usize)],
    contenders: &[Contender],
    measurements: &mut Vec<Measurement>,
    failures: &mut Vec<String>,
) -> Result<()> {
    for &who in contenders {
        let mut reps: BTreeMap<(Scenario, usize), usize> = BTreeMap::new();
        let kubeadm = runs.iter().any(|(sc, _)| *sc == Scenario::Workload);
        let mut plane = if who == Contender::Raw {
            None
        } else {
            let name = format!("{}-{}", ctx.run_id, who_tag(who));
            let managers = if kubeadm {
                "capi-manager, kubeadm bootstrap and control-plane managers"
            } else {
                "capi-manager"
            };
            eprintln!("==> {}: starting a private plane (kube-apiserver, etcd prefix /capd-bench-{name}, {managers})", who.label());
            let p = plane::Plane::start(&ctx.env, &a.capi_module, &name, kubeadm)
                .await
                .with_context(|| format!("plane for {}", who.label()))?;
            provider::install(who, &p, &ctx.env, &ctx.bins).await?;
            Some(p)
        };
        for (sc, size) in runs
            .iter()
            .flat_map(|r| std::iter::repeat_n(r, a.repeat.max(1)))
        {
            if who == Contender::Raw && *sc == Scenario::Workload {
                eprintln!(
                    "==> {} {} {}={}: not applicable (no Cluster API, no kubeadm)",
                    who.label(),
                    sc.name(),
                    sc.size_name(),
                    size
                );
                continue;
            }
            eprintln!(
                "==> {} {} {}={}",
                who.label(),
                sc.name(),
                sc.size_name(),
                size
            );
            let rep = {
                let n = reps.entry((*sc, *size)).or_insert(0usize);
                *n += 1;
                *n - 1
            };
            let res = match &mut plane {
                Some(p) => run_provider(ctx, p, who, *sc, *size, rep).await,
                None => run_raw(ctx, *sc, *size, rep).await,
            };
            match res {
                Ok(m) => {
                    eprintln!(
                        "    {:.1}s, peak RSS {:.1} MiB, CPU {:.2}s",
                        m.wall_s, m.peak_rss_mib, m.cpu_s
                    );
                    if let Some(mem) = m.node_mem_mib {
                        eprintln!("    control planes initialized at {:.1}s; control-plane node container {mem:.0} MiB", m.control_plane_s.unwrap_or(m.wall_s));
                    }
                    measurements.push(m);
                }
                Err(e) => {
                    eprintln!("    FAILED: {e:#}");
                    failures.push(format!(
                        "{} {} {}={}: {e:#}",
                        who.label(),
                        sc.name(),
                        sc.size_name(),
                        size
                    ));
                }
            }
        }
        if let Some(p) = plane {
            p.stop().await?;
        }
    }
    Ok(())
}

/// CAPD checks a node with `crictl ps` before it bootstraps it (after "Reached target
/// Multi-User System" in the container's log). kindest/node images have crictl; the
/// environment's Debian node image has none (Debian bookworm has no cri-tools package).
/// All three contenders get the same derived image: the environment's node image plus
/// a stand-in that answers `crictl ps` the way the real one does once containerd answers.
async fn bench_node_image(
    env: &TestEnv,
    rt: &dyn ContainerRuntime,
    chosen: Option<&str>,
) -> Result<String> {
    let base = chosen.unwrap_or(&env.state.images.node);
    let tag = format!("{base}-crictl-stub");
    if rt.image_present(&tag).await? {
        return Ok(tag);
    }
    let dir = capd_testenv::workspace_root().join("target/bench/node-image");
    std::fs::create_dir_all(&dir)?;
    let stub = "#!/bin/sh\n# capd-bench: crictl stand-in (Debian bookworm has no cri-tools). `crictl ps` succeeds once\n# containerd answers, as the real one does; nothing else is provided.\ncase \"$1\" in\n  ps) exec ctr --namespace k8s.io containers list >/dev/null ;;\n  *) echo \"crictl stand-in: only 'ps'\" >&2; exit 1 ;;\nesac\n";
    let path = dir.join("crictl");
    std::fs::write(&path, stub)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nCOPY crictl /usr/local/bin/crictl\n"),
    )?;
    eprintln!("==> building {tag} (node image + crictl stand-in for CAPD)");
    let out = tokio::process::Command::new("docker")
        .env("DOCKER_HOST", env.docker_host())
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &tag])
        .arg(&dir)
        .output()
        .await
        .context("running `docker build`")?;
    if !out.status.success() {
        bail!(
            "docker build {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(tag)
}

/// Clusters and machines a scenario of `size` creates.
fn object_counts(sc: Scenario, size: usize) -> (usize, usize) {
    match sc {
        Scenario::Clusters => (size, 0),
        Scenario::Machines => (1, size),
        Scenario::Churn => (size, size),
        Scenario::Workload => (size, size * workload::NODES_PER_CLUSTER),
    }
}

/// Object and container names of one run start with this.
fn run_prefix(ctx: &Ctx, who: Contender, sc: Scenario, size: usize, rep: usize) -> String {
    let base = format!("b{}{}{}{}", ctx.run_id, who_tag(who), sc.tag(), size);
    if rep == 0 {
        base
    } else {
        format!("{base}r{rep}")
    }
}

async fn run_provider(
    ctx: &Ctx,
    plane: &mut plane::Plane,
    who: Contender,
    sc: Scenario,
    size: usize,
    rep: usize,
) -> Result<Measurement> {
    let prefix = run_prefix(ctx, who, sc, size, rep);
    let objs = Objects {
        client: plane.client.clone(),
        ns: prefix.clone(),
        prefix: prefix.clone(),
        lb_repo: ctx.lb_repo.clone(),
        lb_tag: ctx.lb_tag.clone(),
        node_image: ctx.node_image.clone(),
    };
    objs.create_namespace().await?;
    let log = plane::log_dir(&ctx.env).join(format!("{prefix}-{}.log", who_tag(who)));
    let mut p = Provider::start(who, &*plane, &ctx.env, &ctx.bins, &log).await?;
    let rt: &dyn ContainerRuntime = ctx.rt.as_ref();
    let load = probe::loadavg().0;
    // A side measurement: without it the run goes on, its per-unit rows empty.
    let recorder = if sc == Scenario::Workload {
        None
    } else {
        match timeline::Recorder::start(&objs).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("    timeline: {e:#}; no per-unit split for this run");
                None
            }
        }
    };
    // Let the informers' first lists settle before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = p.snapshot().await?;
    let sampler = probe::RssSampler::start(p.pid());
    let start = Instant::now();
    let mut delete_at = start;
    let measured = async {
        objs.create_all(sc, size).await?;
        let (owned, workload_times) = if sc == Scenario::Workload {
            let t = workload::wait_ready(&objs, size, start, ctx.timeout, || {
                p.alive()?;
                plane.alive()
            })
            .await?;
            (t.owned, Some(t))
        } else {
            (
                objs.wait_done(sc, size, start, ctx.timeout, || p.alive())
                    .await?,
                None,
            )
        };
        let mut delete_s = None;
        if sc == Scenario::Churn {
            let d = Instant::now();
            delete_at = d;
            objs.delete_clusters().await?;
            objs.wait_gone(rt, ctx.timeout, || p.alive()).await?;
            delete_s = Some(d.elapsed().as_secs_f64());
        }
        // workload: until the last Node was seen Ready (not the node-memory sample after it).
        let wall = workload_times
            .map(|t| t.ready)
            .unwrap_or_else(|| start.elapsed())
            .as_secs_f64();
        let after = p.snapshot().await?;
        let hwm = probe::status_kb(p.pid(), "VmHWM").unwrap_or(0);
        let steady_at = tokio::time::Instant::now() + Duration::from_secs(3);
        // workload: one node container's memory once every Node is Ready, while the
        // manager settles (not fatal: a figure, not the run).
        let node_mem = match workload_times {
            Some(_) => {
                match workload::node_memory_mib(rt, ctx.env.docker_host(), &objs.cluster_name(0))
                    .await
                {
                    Ok(mib) => Some(mib),
                    Err(e) => {
                        eprintln!("    node container memory: {e:#}");
                        None
                    }
                }
            }
            None => None,
        };
        // Steady: what the manager keeps once the work is done.
        tokio::time::sleep_until(steady_at).await;
        let steady = probe::status_kb(p.pid(), "VmRSS").unwrap_or(0);
        // Idle: a fixed window of nothing to do (a measurement period, not a wait for a
        // condition), counted from the manager's own metrics.
        let idle = if sc == Scenario::Clusters && !ctx.idle.is_zero() {
            let i0 = p.snapshot().await?;
            tokio::time::sleep(ctx.idle).await;
            p.alive()?;
            let i1 = p.snapshot().await?;
            let reconciles = i1.reconciles.get("dockercluster").copied().unwrap_or(0.0)
                - i0.reconciles.get("dockercluster").copied().unwrap_or(0.0);
            Some(report::Idle {
                seconds: ctx.idle.as_secs_f64(),
                reconciles_per_cluster: reconciles / size as f64,
                api_requests: i1.api_requests - i0.api_requests,
                cpu_s: i1.cpu_s - i0.cpu_s,
                rss_mib: probe::status_kb(p.pid(), "VmRSS").unwrap_or(0) as f64 / 1024.0,
            })
        } else {
            None
        };
        let control_plane_s = workload_times.map(|t| t.control_plane.as_secs_f64());
        Ok::<_, anyhow::Error>((
            wall,
            delete_s,
            owned.as_secs_f64(),
            after,
            hwm,
            steady,
            control_plane_s,
            node_mem,
            idle,
        ))
    }
    .await;
    // Cleanup whatever happened: the provider deletes what it made, then anything left goes.
    if sc != Scenario::Churn || measured.is_err() {
        // Workload clusters go through KubeadmControlPlane and MachineDeployment deletion.
        let grace = if sc == Scenario::Workload {
            ctx.timeout.max(Duration::from_secs(180))
        } else {
            Duration::from_secs(180)
        };
        let cleanup = async {
            objs.delete_clusters().await?;
            objs.wait_gone(rt, grace, || p.alive()).await
        }
        .await;
        if let Err(e) = cleanup {
            eprintln!(
                "    cleanup through the provider incomplete ({e:#}); removing containers directly"
            );
        }
    }
    p.stop().await;
    let removed = scenario::remove_containers(rt, &prefix).await?;
    if removed > 0 {
        eprintln!("    removed {removed} leftover container(s) of {prefix}");
    }
    let (wall, delete_s, owned_s, after, hwm, steady, control_plane_s, node_mem_mib, idle) =
        measured?;
    let split = recorder.and_then(|r| {
        let from = (r.seconds(start), r.seconds(delete_at));
        let marks = r.marks();
        let units = timeline::units(&objs, sc, size);
        let split = timeline::split(&marks, sc, &units, from);
        let complete = split.map_or(0, |s| s.units);
        if complete < units.len() || marks.gaps > 0 {
            eprintln!(
                "    timeline: {complete} of {} units with every step seen, {} watch gap(s); the per-unit rows are over those",
                units.len(),
                marks.gaps
            );
        }
        split
    });
    let (clusters, machines) = object_counts(sc, size);
    let mut per_object = BTreeMap::new();
    let mut mean_ms = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (c, count) in [("dockercluster", clusters), ("dockermachine", machines)] {
        let d = after.reconciles.get(c).copied().unwrap_or(0.0)
            - before.reconciles.get(c).copied().unwrap_or(0.0);
        if count > 0 {
            per_object.insert(c.to_string(), d / count as f64);
        }
        let (s1, n1) = after.reconcile_time.get(c).copied().unwrap_or_default();
        let (s0, n0) = before.reconcile_time.get(c).copied().unwrap_or_default();
        if n1 > n0 {
            mean_ms.insert(c.to_string(), (s1 - s0) / (n1 - n0) * 1000.0);
        }
        let e = after.errors.get(c).copied().unwrap_or(0.0)
            - before.errors.get(c).copied().unwrap_or(0.0);
        errors.insert(c.to_string(), e);
    }
    Ok(Measurement {
        contender: who,
        scenario: sc,
        size,
        wall_s: wall,
        delete_s,
        owned_s: Some(owned_s),
        own_s: split.map(|s| s.own_s),
        rest_s: split.map(|s| s.rest_s),
        control_plane_s,
        node_mem_mib,
        peak_rss_mib: hwm.max(sampler.peak_kb()) as f64 / 1024.0,
        steady_rss_mib: steady as f64 / 1024.0,
        cpu_s: after.cpu_s - before.cpu_s,
        api_requests: Some(after.api_requests - before.api_requests),
        reconciles_per_object: per_object,
        mean_reconcile_ms: mean_ms,
        reconcile_errors: errors,
        load_1m: load,
        idle,
    })
}

async fn run_raw(ctx: &Ctx, sc: Scenario, size: usize, rep: usize) -> Result<Measurement> {
    let prefix = run_prefix(ctx, Contender::Raw, sc, size, rep);
    let exe = std::env::current_exe().context("locating capd-bench")?;
    let load = probe::loadavg().0;
    let child = tokio::process::Command::new(&exe)
        .args([
            "raw",
            "--scenario",
            sc.name(),
            "--count",
            &size.to_string(),
            "--prefix",
            &prefix,
        ])
        .args([
            "--haproxy-image",
            &ctx.env.state.images.haproxy,
            "--node-image",
            &ctx.node_image,
        ])
        .env("DOCKER_HOST", ctx.env.docker_host())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the raw-Docker worker")?;
    let out = tokio::time::timeout(ctx.timeout, child.wait_with_output()).await;
    let removed = scenario::remove_containers(ctx.rt.as_ref(), &prefix).await;
    let out = out.map_err(|_| {
        anyhow::anyhow!("raw-Docker worker still running after {:?}", ctx.timeout)
    })??;
    removed?;
    if !out.status.success() {
        bail!(
            "raw-Docker worker exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let r: raw::RawResult = serde_json::from_str(line)
        .with_context(|| format!("raw-Docker worker printed {line:?}"))?;
    Ok(Measurement {
        contender: Contender::Raw,
        scenario: sc,
        size,
        wall_s: r.wall_s,
        delete_s: r.delete_s,
        owned_s: None,
        own_s: report::median_of(r.per_unit_s.clone()),
        rest_s: None,
        control_plane_s: None,
        node_mem_mib: None,
        peak_rss_mib: r.peak_rss_kb as f64 / 1024.0,
        steady_rss_mib: r.rss_kb as f64 / 1024.0,
        cpu_s: r.cpu_s,
        api_requests: None,
        reconciles_per_object: BTreeMap::new(),
        mean_reconcile_ms: BTreeMap::new(),
        reconcile_errors: BTreeMap::new(),
        load_1m: load,
        idle: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> RunArgs {
        let base = [
            "capd-bench",
            "run",
            "--capd-bin",
            "/c",
            "--capd-module",
            "/m",
            "--capi-module",
            "/k",
            "--manager-bin",
            "/b",
        ];
        match Cli::try_parse_from(base.iter().chain(extra)) {
            Ok(Cli { cmd: Cmd::Run(a) }) => a,
            Ok(_) => panic!("not a run"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn workload_runs_each_size_and_is_not_part_of_all() {
        let a = parse(&["--scenario", "workload", "--w", "3,1,3,0"]);
        assert_eq!(
            a.runs(),
            vec![(Scenario::Workload, 1), (Scenario::Workload, 3)]
        );
        assert_eq!(
            a.command_line(),
            "cargo xtask bench --scenario workload --w 1,3"
        );
        assert_eq!(
            parse(&["--scenario", "workload"]).runs(),
            vec![(Scenario::Workload, 1), (Scenario::Workload, 3)]
        );
        assert!(parse(&["--scenario", "all"])
            .runs()
            .iter()
            .all(|(sc, _)| *sc != Scenario::Workload));
    }
}
