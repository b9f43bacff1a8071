//! capd-manager: runs the capd-rs controllers against a management cluster.

mod authz;
mod certwatch;
mod flags;
mod heap;
mod http;
mod leader;
mod throttle;
mod tls;
mod webhook;

use anyhow::{Context as _, Result};
use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::dev::{DevCluster, DevMachine, DevMachineTemplate};
use capd_api::machine_pool::{DevMachinePool, DockerMachinePool};
use capd_api::{DockerCluster, DockerMachine, DockerMachineTemplate};
use capd_controllers::caches::{Caches, Shared};
use capd_controllers::filters::{self, Filter};
use capd_controllers::{
    cluster, machine, machine_pool, metrics::Metrics, template, watches, Config, Context,
};
use capd_runtime::{ContainerRuntime, DockerRuntime};
use flags::{Flags, LogFormat};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{controller, Controller};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

fn main() -> std::process::ExitCode {
    heap::one_arena();
    let flags = Flags::parse_normalized();
    init_logging(flags.log_format, flags.log_filter());
    info!(feature_gates = ?flags.feature_gates, "flags read");
    for unused in flags.inert() {
        warn!(flag = %unused, "accepted for compatibility with CAPD; has no effect in capd-rs");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "starting the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(flags)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .init(),
        LogFormat::Text => builder.with_writer(std::io::stderr).init(),
    }
}

async fn client(flags: &Flags, requests: Counter) -> Result<kube::Client> {
    let config = match &flags.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig given and no in-cluster service account")?,
    };
    let layer = throttle::ThrottleLayer::new(flags.kube_api_qps, flags.kube_api_burst, requests);
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&layer)
        .build())
}

async fn bind(addr: &str, what: &str) -> Result<tokio::net::TcpListener> {
    let addr = flags::listen_addr(addr);
    tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding the {what} endpoint to {addr}"))
}

async fn run(flags: Flags) -> Result<()> {
    let mut registry = Registry::default();
    let requests = Counter::default();
    registry.register(
        "capd_kube_api_requests",
        "Requests made to the Kubernetes API",
        requests.clone(),
    );
    let metrics = Arc::new(Metrics::register(&mut registry));

    let client = client(&flags, requests.clone()).await?;
    tokio::spawn(heap::trim_after_work(move || requests.get(), heap::trim));
    let runtime: Arc<dyn ContainerRuntime> =
        Arc::new(DockerRuntime::from_env().context("container engine (DOCKER_HOST)")?);
    match runtime.engine_info().await {
        Ok(info) => info!(engine = %runtime.endpoint(), ?info, "container engine answers"),
        // Not fatal: reconciles report it per object and retry with backoff.
        Err(e) => warn!(error = %e, "container engine does not answer yet"),
    }

    // Every replica serves the webhook (the API server calls any of them), so this comes
    // before the election. Ports first: a manager that cannot listen must not have pointed
    // the CRDs at itself.
    let health_listener = bind(&flags.health_addr, "health").await?;
    let metrics_listener = bind(&flags.diagnostics_address, "diagnostics").await?;
    let webhook_listener = bind(&format!(":{}", flags.webhook_port), "webhook").await?;
    // The Service and the certificate Secret live in the Pod's namespace (the Lease's may be
    // set elsewhere by flag); the certificate names the Service there.
    let service_namespace =
        std::env::var("POD_NAMESPACE").unwrap_or_else(|_| flags.leader_election_namespace.clone());
    let serving = tls::load_or_issue(
        &client,
        &tls::Options {
            cert_dir: &flags.webhook_cert_dir,
            cert_name: &flags.webhook_cert_name,
            key_name: &flags.webhook_key_name,
            namespace: &service_namespace,
            extra_hosts: flags
                .webhook_url
                .as_deref()
                .and_then(url_host)
                .into_iter()
                .collect(),
            min_tls13: flags.tls_min_version == "VersionTLS13",
            cipher_suites: &flags.tls_cipher_suites,
        },
    )
    .await?;
    if let Some(ca) = &serving.issued_ca {
        let endpoint = match flags.webhook_url.as_deref() {
            Some(url) => webhook::Endpoint::Url(url),
            None => webhook::Endpoint::Service {
                namespace: &service_namespace,
            },
        };
        webhook::wire_crds(&client, endpoint, ca).await?;
    }
    let tls = tokio_rustls::TlsAcceptor::from(serving.config.clone());

    let health = Arc::new(http::Health {
        ready: Default::default(),
    });
    tokio::spawn(http::serve(
        health_listener,
        None,
        http::health(health.clone()),
    ));
    let registry = Arc::new(registry);
    if flags.insecure_diagnostics {
        tokio::spawn(http::serve(
            metrics_listener,
            None,
            http::metrics(registry, None),
        ));
    } else {
        tokio::spawn(http::serve(
            metrics_listener,
            Some(tls.clone()),
            http::metrics(registry, Some(client.clone())),
        ));
    }
    tokio::spawn(http::serve(webhook_listener, Some(tls), webhook::handler()));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    let mut leadership = None;
    if flags.leader_elect {
        // Ready as a standby once the Lease shows another holder; as the leader, once its
        // caches synced (below). Never before the election decided which.
        let standby = tokio::spawn({
            let (client, ns, name, health) = (
                client.clone(),
                flags.leader_election_namespace.clone(),
                flags.leader_election_id.clone(),
                health.clone(),
            );
            async move {
                leader::held_by_another(client, &ns, &name).await;
                health.ready.store(true, Ordering::Relaxed);
            }
        });
        let acquired = leader::acquire(
            client.clone(),
            &flags.leader_election_namespace,
            &flags.leader_election_id,
            leader::Timing::from(&flags),
            shutdown_rx.clone(),
        )
        .await;
        standby.abort();
        health.ready.store(false, Ordering::Relaxed);
        match acquired? {
            Some(l) => leadership = Some(l),
            None => return Ok(()),
        }
    }

    let config = Config {
        network: flags.docker_network.clone(),
        watch_filter: flags.watch_filter.clone(),
        namespace: flags.namespace.clone(),
    };
    let pools_served = machine_pools_served(&client, flags.namespace.as_deref()).await?;
    let watches = Watches::new(&flags, &client, pools_served);
    let ctx = Arc::new(Context::new(
        client.clone(),
        watches.caches(),
        runtime,
        config,
        metrics,
    ));
    let controllers = run_controllers(&flags, watches, ctx, health.clone(), shutdown_rx.clone());

    let lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        _ = controllers => {}
        _ = lost => {
            if let Some(l) = leadership.take() { l.release().await; }
            anyhow::bail!("lost leader election Lease {}/{}", flags.leader_election_namespace, flags.leader_election_id);
        }
    }
    if let Some(l) = leadership {
        l.release().await;
    }
    Ok(())
}

fn api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// One watch per kind, shared by the caches and every controller's triggers.
struct Watches {
    clusters: Shared<Cluster>,
    machines: Shared<Machine>,
    docker_clusters: Shared<DockerCluster>,
    dev_clusters: Shared<DevCluster>,
    docker_machines: Shared<DockerMachine>,
    dev_machines: Shared<DevMachine>,
    /// Secrets labelled with a cluster name, metadata only: whether a cluster's
    /// `<cluster>-kubeconfig` exists and changed, without reading it (or any Secret's data).
    secrets: Shared<PartialObjectMeta<Secret>>,
    /// Only where the management cluster serves MachinePools.
    pools: Option<PoolWatches>,
}

struct PoolWatches {
    machine_pools: Shared<MachinePool>,
    docker: Shared<DockerMachinePool>,
    dev: Shared<DevMachinePool>,
}

/// Whether Cluster API serves MachinePools here (its `MachinePool` feature gate, on by
/// default); without them the pool controllers do not run.
async fn machine_pools_served(client: &kube::Client, ns: Option<&str>) -> Result<bool> {
    match api::<MachinePool>(client, ns)
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            warn!("Cluster API serves no MachinePools (feature gate MachinePool off?): the DockerMachinePool and DevMachinePool controllers do not run");
            Ok(false)
        }
        Err(e) => Err(e).context("listing cluster.x-k8s.io/v1beta2 MachinePools"),
    }
}

impl Watches {
    fn new(flags: &Flags, client: &kube::Client, pools: bool) -> Self {
        let sel = watches::label_selector(flags.watch_filter.as_deref());
        // Each its own configuration: each watch its own timeout.
        let wc = || watches::watch_config(sel.as_deref());
        let ns = flags.namespace.as_deref();
        Self {
            clusters: Shared::new(api(client, ns), wc()),
            machines: Shared::new(api(client, ns), wc()),
            docker_clusters: Shared::new(api(client, ns), wc()),
            dev_clusters: Shared::new(api(client, ns), wc()),
            docker_machines: Shared::new(api(client, ns), wc()),
            dev_machines: Shared::new(api(client, ns), wc()),
            // Not by the watch filter: Cluster API does not put that label on the
            // kubeconfig Secrets it writes.
            secrets: Shared::new(
                api(client, ns),
                watches::watch_config(Some(capd_api::consts::label::CLUSTER_NAME)),
            ),
            pools: pools.then(|| PoolWatches {
                machine_pools: Shared::new(api(client, ns), wc()),
                docker: Shared::new(api(client, ns), wc()),
                dev: Shared::new(api(client, ns), wc()),
            }),
        }
    }

    fn caches(&self) -> Caches {
        let caches = Caches::new(self.clusters.store.clone(), self.machines.store.clone())
            .with_infra_cluster("DockerCluster", self.docker_clusters.store.clone())
            .with_infra_cluster("DevCluster", self.dev_clusters.store.clone())
            .with_secrets(self.secrets.store.clone());
        match &self.pools {
            Some(p) => caches.with_machine_pools(p.machine_pools.store.clone()),
            None => caches,
        }
    }
}

/// The cluster controller of kind `K`: its own changes (not status-only ones) and its
/// Cluster's changes that matter to it.
fn cluster_controller<K>(
    own: &Shared<K>,
    clusters: &Shared<Cluster>,
    concurrency: u16,
    period: Duration,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<K>
where
    K: capd_controllers::infra::InfraCluster + kube::Resource<DynamicType = ()>,
{
    let kind = K::kind(&()).into_owned();
    Controller::for_shared_stream(
        own.subscribe(Filter::new(filters::without_status::<K>)),
        own.store.clone(),
    )
    .watches_shared_stream(
        clusters.subscribe(Filter::new(filters::cluster_for_infra)),
        move |c| watches::cluster_to_infra::<K>(&c, &kind),
    )
    .with_config(controller::Config::default().concurrency(concurrency))
    .reconcile_all_on(resync(period))
    .graceful_shutdown_on(stop(shutdown))
    .run(cluster::reconcile::<K>, cluster::error_policy::<K>, ctx)
    .for_each(|_| futures::future::ready(()))
}

/// The machine controller of kind `K`: its own changes, its Machine's, and its
/// Cluster's that matter to it.
fn machine_controller<K>(
    own: &Shared<K>,
    w: &Watches,
    concurrency: u16,
    period: Duration,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<K>
where
    K: capd_controllers::infra::InfraMachine + kube::Resource<DynamicType = ()>,
{
    let kind = K::kind(&()).into_owned();
    let store = own.store.clone();
    let secret_store = own.store.clone();
    let bootstrapped = bootstrap_wakes::<K>(&ctx);
    Controller::for_shared_stream(
        own.subscribe(Filter::new(filters::without_status::<K>)),
        own.store.clone(),
    )
    .reconcile_on(bootstrapped)
    .watches_shared_stream(
        w.machines
            .subscribe(Filter::new(filters::machine_for_infra)),
        move |m| watches::machine_to_infra::<K>(&m, &kind),
    )
    .watches_shared_stream(
        w.clusters
            .subscribe(Filter::new(filters::cluster_for_infra)),
        move |c| watches::cluster_to_machines(&c, &store),
    )
    .watches_shared_stream(
        w.secrets.subscribe(Filter::new(filters::kubeconfig_secret)),
        move |s| watches::kubeconfig_to_machines(&s, &secret_store),
    )
    .with_config(controller::Config::default().concurrency(concurrency))
    .reconcile_all_on(resync(period))
    .graceful_shutdown_on(stop(shutdown))
    .run(machine::reconcile::<K>, machine::error_policy::<K>, ctx)
    .for_each(|_| futures::future::ready(()))
}

/// The machines of kind `K` whose bootstrap task has just ended: their reconcile takes
/// the outcome now rather than at its next look.
fn bootstrap_wakes<K>(ctx: &Context) -> impl futures::Stream<Item = ObjectRef<K>> + use<K>
where
    K: kube::Resource<DynamicType = ()>,
{
    let kind = K::kind(&()).into_owned();
    ctx.bootstraps.finished().filter_map(move |w| {
        futures::future::ready(
            (w.kind == kind).then(|| ObjectRef::new(&w.name).within(&w.namespace)),
        )
    })
}

/// The machine pool controller of kind `P`, whose machines are of kind `M`: its own
/// changes, its MachinePool's, its machines', and its Cluster's that matter to it.
fn pool_controller<P, M>(
    own: &Shared<P>,
    machines: &Shared<M>,
    pools: &Shared<MachinePool>,
    clusters: &Shared<Cluster>,
    concurrency: u16,
    period: Duration,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<P, M>
where
    P: capd_controllers::infra::InfraPool + kube::Resource<DynamicType = ()>,
    M: capd_controllers::infra::InfraMachine + kube::Resource<DynamicType = ()>,
{
    let kind = P::kind(&()).into_owned();
    let owner_kind = kind.clone();
    let store = own.store.clone();
    Controller::for_shared_stream(
        own.subscribe(Filter::new(filters::without_status::<P>)),
        own.store.clone(),
    )
    .watches_shared_stream(
        pools.subscribe(Filter::new(filters::machine_pool_for_infra)),
        move |mp| watches::machine_pool_to_infra::<P>(&mp, &kind),
    )
    .watches_shared_stream(
        machines.subscribe(Filter::new(filters::infra_machine_for_pool::<M>)),
        move |m| watches::machine_to_pool::<P, M>(&m, &owner_kind),
    )
    .watches_shared_stream(
        clusters.subscribe(Filter::new(filters::cluster_for_infra)),
        move |c| watches::cluster_to_machines(&c, &store),
    )
    .with_config(controller::Config::default().concurrency(concurrency))
    .reconcile_all_on(resync(period))
    .graceful_shutdown_on(stop(shutdown))
    .run(
        machine_pool::reconcile::<P>,
        machine_pool::error_policy::<P>,
        ctx,
    )
    .for_each(|_| futures::future::ready(()))
}

/// The machine template controller of kind `K` (status.capacity); its own watch, as
/// nothing else reads templates.
fn template_controller<K>(
    flags: &Flags,
    client: &kube::Client,
    concurrency: u16,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + use<K>
where
    K: template::CapacityTemplate + kube::Resource<DynamicType = ()>,
{
    let sel = watches::label_selector(flags.watch_filter.as_deref());
    Controller::new(
        api::<K>(client, flags.namespace.as_deref()),
        watches::watch_config(sel.as_deref()),
    )
    .with_config(controller::Config::default().concurrency(concurrency))
    .reconcile_all_on(resync(flags.sync_period))
    .graceful_shutdown_on(stop(shutdown))
    .run(template::reconcile::<K>, template::error_policy::<K>, ctx)
    .for_each(|_| futures::future::ready(()))
}

async fn stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

fn resync(period: Duration) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold((), move |_| async move {
        tokio::time::sleep(period).await;
        Some(((), ()))
    })
}

async fn run_controllers(
    flags: &Flags,
    w: Watches,
    ctx: Arc<Context>,
    health: Arc<http::Health>,
    shutdown: watch::Receiver<bool>,
) {
    let period = flags.sync_period;
    // Subscriptions first (a subscriber sees only what comes after it), then the watches.
    let controllers = futures::future::join4(
        cluster_controller(
            &w.docker_clusters,
            &w.clusters,
            flags.dockercluster_concurrency,
            period,
            ctx.clone(),
            shutdown.clone(),
        ),
        cluster_controller(
            &w.dev_clusters,
            &w.clusters,
            flags.devcluster_concurrency,
            period,
            ctx.clone(),
            shutdown.clone(),
        ),
        machine_controller(
            &w.docker_machines,
            &w,
            flags.dockermachine_concurrency,
            period,
            ctx.clone(),
            shutdown.clone(),
        ),
        machine_controller(
            &w.dev_machines,
            &w,
            flags.devmachine_concurrency,
            period,
            ctx.clone(),
            shutdown.clone(),
        ),
    );
    let pool_controllers = w.pools.as_ref().map(|p| {
        futures::future::join(
            pool_controller(
                &p.docker,
                &w.docker_machines,
                &p.machine_pools,
                &w.clusters,
                flags.dockermachinepool_concurrency,
                period,
                ctx.clone(),
                shutdown.clone(),
            ),
            pool_controller(
                &p.dev,
                &w.dev_machines,
                &p.machine_pools,
                &w.clusters,
                flags.devmachinepool_concurrency,
                period,
                ctx.clone(),
                shutdown.clone(),
            ),
        )
    });
    let templates = futures::future::join(
        template_controller::<DockerMachineTemplate>(
            flags,
            &ctx.client,
            flags.dockermachinetemplate_concurrency,
            ctx.clone(),
            shutdown.clone(),
        ),
        template_controller::<DevMachineTemplate>(
            flags,
            &ctx.client,
            flags.devmachinetemplate_concurrency,
            ctx.clone(),
            shutdown.clone(),
        ),
    );
    let controllers = futures::future::join3(controllers, templates, async move {
        if let Some(p) = pool_controllers {
            p.await;
        }
    });
    // A reconcile must not act on a miss in a cache that has not listed yet (a Machine
    // "not found" would read as an orphan): the controllers start once all have.
    info!("waiting for the watch caches");
    let Watches {
        clusters,
        machines,
        docker_clusters,
        dev_clusters,
        docker_machines,
        dev_machines,
        secrets,
        pools,
    } = w;
    let secrets_store = secrets.store.clone();
    tokio::spawn(secrets.run());
    let (c, m, dc, devc, dm, devm) = (
        clusters.store.clone(),
        machines.store.clone(),
        docker_clusters.store.clone(),
        dev_clusters.store.clone(),
        docker_machines.store.clone(),
        dev_machines.store.clone(),
    );
    tokio::spawn(clusters.run());
    tokio::spawn(machines.run());
    tokio::spawn(docker_clusters.run());
    tokio::spawn(dev_clusters.run());
    tokio::spawn(docker_machines.run());
    tokio::spawn(dev_machines.run());
    let _ = futures::join!(
        c.wait_until_ready(),
        m.wait_until_ready(),
        dc.wait_until_ready(),
        devc.wait_until_ready(),
        dm.wait_until_ready(),
        devm.wait_until_ready(),
        secrets_store.wait_until_ready()
    );
    if let Some(PoolWatches {
        machine_pools,
        docker,
        dev,
    }) = pools
    {
        let (mp, dmp, devmp) = (
            machine_pools.store.clone(),
            docker.store.clone(),
            dev.store.clone(),
        );
        tokio::spawn(machine_pools.run());
        tokio::spawn(docker.run());
        tokio::spawn(dev.run());
        let _ = futures::join!(
            mp.wait_until_ready(),
            dmp.wait_until_ready(),
            devmp.wait_until_ready()
        );
    }
    health.ready.store(true, Ordering::Relaxed);
    info!(
        namespace = flags.namespace.as_deref().unwrap_or("(all)"),
        watch_filter = flags.watch_filter.as_deref().unwrap_or("(none)"),
        "caches synced; controllers started"
    );
    controllers.await;
}

/// The host of `https://host:port/...`, for the serving certificate.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_string())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
