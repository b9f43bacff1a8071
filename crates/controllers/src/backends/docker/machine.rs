//! The machine's node container, from creation to a registered Node: CAPD's order is
//! node container → load balancer (control planes) → wait for the node to boot
//! (CGroupsReady) → preLoadImages (PreLoadedImagesReady) → bootstrap (BootstrapCompleted)
//! → addresses, providerID, provisioned → the Node's providerID. Works on the
//! DockerMachine view of a DockerMachine or a DevMachine.

use super::load_balancer::{self, Update};
use crate::bootstrap_exec::{self, Outcome as BootstrapOutcome};
use crate::bootstrap_tasks;
use crate::context::Context;
use crate::contract::Checkpoint;
use crate::error::Error;
use crate::ip_family::{self, IpFamily};
use crate::node::{self, Readiness};
use capd_api::capi::{Cluster, Machine};
use capd_api::conditions::{self, NewCondition};
use capd_api::consts::{condition, label, reason};
use capd_api::{DockerCluster, DockerMachine, HasConditions, MachineAddress};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::time::Duration;
use tracing::{info, warn};

/// Bound of one readiness probe exec (`systemctl`, `crictl ps`), so a hung node holds
/// a reconcile worker no longer than this.
const NODE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon to look again while the node boots (kind nodes take a few seconds).
const NODE_BOOT_POLL: Duration = Duration::from_secs(2);
/// How long one reconcile waits on systemd's own end-of-boot signal before it requeues:
/// a node usually finishes booting within this of its start.
const NODE_BOOT_WAIT: Duration = Duration::from_secs(5);
/// Between two looks within [`NODE_BOOT_WAIT`] when systemd did not answer the wait yet.
const NODE_BOOT_LOOK: Duration = Duration::from_millis(250);
/// How soon to look again for a Node that has not registered yet (a workload-cluster
/// GET, no request to the management cluster).
const NODE_REGISTRATION_POLL: Duration = Duration::from_secs(3);
/// Bound of loading all preLoadImages in one reconcile (CAPD's task timeout).
const PRELOAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How soon to retry preLoadImages after a failure (CAPD's delay).
const PRELOAD_RETRY: Duration = Duration::from_secs(5);
/// How long a stopped node container is left to the engine before it is started here.
/// An engine coming back from a restart starts containers by their restart policy; a
/// start sent while it is still doing so can wedge the container for good in Docker 20.10
/// ("task ... already exists"). Stopped longer than this, nothing else will start it.
const RESTART_POLICY_GRACE: Duration = Duration::from_secs(20);

/// Everything a machine reconcile works with.
pub struct Objects {
    pub machine: Machine,
    pub cluster: Cluster,
    /// The cluster's infrastructure as a DockerCluster (from a DockerCluster or DevCluster).
    pub docker_cluster: Option<DockerCluster>,
    /// A MachinePool's machine: the container label naming its pool (CAPD's key, the
    /// DockerMachinePool's or DevMachinePool's name).
    pub pool_label: Option<(&'static str, String)>,
}

pub async fn reconcile_normal(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    cp: &mut dyn Checkpoint<DockerMachine>,
) -> Result<Action, Error> {
    // First, as CAPD: a bad clusterNetwork is an error before any wait.
    let family = ip_family::of_cluster(&o.cluster)?;
    // Waits, each reported the way CAPD reports it; the Cluster and Machine watches
    // bring us back when the awaited change happens.
    if !o.cluster.infrastructure_provisioned() {
        wait_before_container(
            dm,
            reason::WAITING_FOR_CLUSTER_INFRASTRUCTURE_READY,
            "waiting for the cluster infrastructure to be provisioned",
        );
        return Ok(Action::await_change());
    }
    let Some(secret_name) = o.machine.bootstrap_data_secret_name().map(String::from) else {
        if !o.machine.is_control_plane() && !o.cluster.control_plane_initialized() {
            wait_before_container(
                dm,
                reason::WAITING_FOR_CONTROL_PLANE_INITIALIZED,
                "waiting for the control plane to be initialized",
            );
        } else {
            wait_before_container(
                dm,
                reason::WAITING_FOR_BOOTSTRAP_DATA,
                "waiting for the bootstrap data secret",
            );
        }
        return Ok(Action::await_change());
    };

    let cluster_name = o.cluster.name_any();
    let name = node::container_name(&cluster_name, &dm.name_any());
    let control_plane = o.machine.is_control_plane();
    match ensure_container(dm, o, ctx, &name, control_plane, family, &cp.regarding()).await? {
        ContainerChange::None => {}
        ContainerChange::Gone => {
            summarize_ready(dm, false);
            return Ok(Action::await_change());
        }
        ContainerChange::Deferred(wait) => {
            summarize_ready(dm, false);
            return Ok(Action::requeue(wait));
        }
        // A new container: nothing of the old one's boot or images holds for it.
        ContainerChange::Created => {
            // Whatever a task did (or reported) was for the container this one replaces.
            ctx.bootstraps.abort(&name);
            set(
                dm,
                NewCondition::false_(
                    condition::CGROUPS_READY,
                    reason::NOT_READY,
                    "node container created",
                ),
            );
            set(
                dm,
                NewCondition::false_(
                    condition::PRELOADED_IMAGES_READY,
                    reason::NOT_READY,
                    "node container created",
                ),
            );
        }
        // Restarted: systemd boots again; loaded images live on in its /var volume.
        ContainerChange::Started => {
            // A task's exec died with the container; the markers say where to resume.
            ctx.bootstraps.abort(&name);
            set(
                dm,
                NewCondition::false_(
                    condition::CGROUPS_READY,
                    reason::NOT_READY,
                    "node container restarted",
                ),
            );
        }
    }
    set(
        dm,
        NewCondition::true_(condition::CONTAINER_PROVISIONED, reason::PROVISIONED, ""),
    );

    if control_plane {
        if let Some(dc) = &o.docker_cluster {
            load_balancer::update_backends(dc, &o.cluster, family, ctx).await?;
            dm.status_mut().load_balancer_configured = true;
        }
    }

    // A failed bootstrap is not retried (see below): nothing more to do here.
    if bootstrap_failed(dm) {
        return Ok(Action::await_change());
    }
    // Nothing runs in the node before systemd is up and containerd answers, else
    // kubeadm's preflight races them. A wait, not a failure: look again shortly.
    if let Some(wait) = wait_for_node_boot(dm, o, ctx, &name).await? {
        return Ok(wait);
    }
    if let Some(retry) = preload_images(dm, o, ctx, &name, cp).await? {
        return Ok(retry);
    }
    // v1beta2 has no spec.bootstrapped (CAPD dropped it): the condition says it for
    // this manager, the sentinel in the node for any other (restart, clusterctl move).
    if !bootstrapped(dm) {
        match bootstrap(dm, o, ctx, &name, &secret_name, &cp.regarding()).await? {
            Bootstrap::Completed => {}
            // In the background (CAPD does the same): this worker is free for other
            // machines; the look again is in memory, no API request.
            Bootstrap::Running => {
                summarize_ready(dm, false);
                return Ok(Action::requeue(bootstrap_tasks::POLL));
            }
            Bootstrap::Failed(failure) => {
                crate::events::publish(
                    ctx,
                    &cp.regarding(),
                    true,
                    "BootstrapFailed",
                    "Bootstrap",
                    &failure,
                )
                .await;
                // Not retried: the data is wrong or a command failed; a person must look.
                set(
                    dm,
                    NewCondition::false_(condition::BOOTSTRAP_COMPLETED, reason::FAILED, failure),
                );
                set(
                    dm,
                    NewCondition::false_(condition::READY, reason::FAILED, "bootstrap failed"),
                );
                return Ok(Action::await_change());
            }
        }
        crate::events::publish(
            ctx,
            &cp.regarding(),
            false,
            "BootstrapCompleted",
            "Bootstrap",
            &format!("bootstrap data ran in node container {name}"),
        )
        .await;
    }
    set(
        dm,
        NewCondition::true_(condition::BOOTSTRAP_COMPLETED, reason::COMPLETED, ""),
    );

    // Only the cluster's family: an IPv4 cluster on a dual-stack network reports no IPv6.
    let info = ctx.runtime.inspect_container(&name).await?;
    let ips: Vec<String> = info
        .as_ref()
        .and_then(|i| i.addresses(Some(&ctx.config.network)))
        .map(|a| family.select(a).iter().map(|ip| ip.to_string()).collect())
        .unwrap_or_default();
    if dm.spec.provider_id.is_empty() {
        dm.spec.provider_id = capd_api::docker_machine::provider_id(&name);
    }
    let status = dm.status_mut();
    status.addresses = MachineAddress::for_container(&name, ips.iter().map(String::as_str));
    if let Some(fd) = o.machine.failure_domain() {
        status.failure_domain = fd.to_string();
    }
    dm.set_provisioned(true);

    // Cluster API sets nodeRef only once the Node carries our providerID (set, with the
    // uninitialized taint lifted, in one patch): nothing left to do in the workload
    // cluster, so no request there or for its kubeconfig.
    if o.machine.node_name().is_some() {
        return Ok(Action::requeue(NODE_RECHECK));
    }
    set_node_provider_id(dm, o, ctx, &name).await
}

/// How often a provisioned machine's node container is looked at again. Nothing watches
/// containers: one removed or stopped behind our back would otherwise be reported only
/// at the next event or resync (a MachineHealthCheck keyed on the Machine's conditions
/// would wait that long). A look is engine calls only, no API request when nothing
/// changed.
pub const NODE_RECHECK: Duration = Duration::from_secs(30);

/// What [`ensure_container`] had to do to have the node container running.
enum ContainerChange {
    None,
    /// A provisioned machine's container is gone; not re-created.
    Gone,
    Started,
    Created,
    /// Stopped moments ago: the engine's restart policy may still start it.
    Deferred(Duration),
}

/// What to do about the node container, from what the engine reports (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// It runs: nothing to do.
    Keep,
    /// Ours but stopped (engine restart, reboot): start it again, keeping its disk.
    Start,
    /// Someone else's container has the name and this node was bootstrapped: refuse.
    RefuseForeign,
    /// Someone else's stale container has the name, nothing bootstrapped yet: replace it.
    Replace,
    /// A provisioned node's container vanished: report it, never re-create a blank node
    /// that would say Ready (CAPD leaves it to MachineHealthCheck remediation).
    Vanished,
    Create,
}

/// How much longer to leave a container stopped `stopped_for` ago to the engine's
/// restart policy (`None`: start it now; also when the engine gave no stop time).
pub fn start_deferral(stopped_for: Option<Duration>) -> Option<Duration> {
    let stopped_for = stopped_for?;
    RESTART_POLICY_GRACE
        .checked_sub(stopped_for)
        .filter(|d| !d.is_zero())
}

/// `existing`: (running, ours) of a container with the node's name, if there is one.
pub fn adoption(
    existing: Option<(bool, bool)>,
    bootstrapped: bool,
    provisioned_before: bool,
) -> Adoption {
    match existing {
        Some((true, _)) => Adoption::Keep,
        Some((false, true)) => Adoption::Start,
        Some((false, false)) if bootstrapped => Adoption::RefuseForeign,
        Some((false, false)) => Adoption::Replace,
        None if provisioned_before => Adoption::Vanished,
        None => Adoption::Create,
    }
}

async fn ensure_container(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    name: &str,
    control_plane: bool,
    family: IpFamily,
    regarding: &ObjectReference,
) -> Result<ContainerChange, Error> {
    let cluster_name = o.cluster.name_any();
    let inspected = ctx.runtime.inspect_container(name).await?;
    let existing = inspected.as_ref().map(|info| {
        let ours = info.label(crate::PROVIDER_LABEL).is_some()
            && info.label(label::KIND_CLUSTER) == Some(cluster_name.as_str());
        (info.state.is_running(), ours)
    });
    match adoption(existing, bootstrapped(dm), provisioned_before(dm, o)) {
        Adoption::Keep => return Ok(ContainerChange::None),
        Adoption::Start => {
            let stopped_for = inspected
                .and_then(|i| i.finished_at)
                .and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
            if let Some(wait) = start_deferral(stopped_for) {
                set(
                    dm,
                    NewCondition::false_(
                        condition::CONTAINER_PROVISIONED,
                        reason::NOT_PROVISIONED,
                        format!("container {name} stopped; leaving it to the engine's restart policy for {}s before starting it", wait.as_secs().max(1)),
                    ),
                );
                return Ok(ContainerChange::Deferred(wait));
            }
            info!(container = name, "starting the stopped node container");
            ctx.runtime.start_container(name).await?;
            return Ok(ContainerChange::Started);
        }
        Adoption::RefuseForeign => {
            return Err(Error::invalid(dm, format!("container {name} is not this machine's; refusing to replace a bootstrapped node")));
        }
        Adoption::Replace => {
            warn!(
                container = name,
                "replacing a stale container of the same name"
            );
            ctx.runtime.remove_container(name).await?;
        }
        Adoption::Vanished => {
            warn!(
                container = name,
                "the container of a provisioned machine does not exist anymore"
            );
            set(
                dm,
                NewCondition::false_(
                    condition::CONTAINER_PROVISIONED,
                    reason::NOT_PROVISIONED,
                    format!("container {name} does not exist anymore"),
                ),
            );
            return Ok(ContainerChange::Gone);
        }
        Adoption::Create => {}
    }
    let Some(image) = node::image(&dm.spec.custom_image, o.machine.version()) else {
        set(
            dm,
            NewCondition::false_(
                condition::CONTAINER_PROVISIONED,
                reason::NOT_PROVISIONED,
                "no spec.customImage and no Machine.spec.version to pick kindest/node:<version>",
            ),
        );
        return Err(Error::invalid(
            dm,
            "spec.customImage: needed when Machine.spec.version is empty",
        ));
    };
    ctx.runtime.ensure_image(&image).await?;
    let params = node::NodeParams {
        name,
        cluster: &cluster_name,
        image: &image,
        network: &ctx.config.network,
        control_plane,
        failure_domain: o.machine.failure_domain(),
        family,
    };
    let mut spec = node::spec(dm, &params);
    if let Some((key, pool)) = &o.pool_label {
        spec = spec.label(*key, pool.as_str());
    }
    // The manager's proxy settings, as CAPD passes them (nothing when none is set).
    let lookup = |k: &str| std::env::var(k).ok();
    if node::proxy_configured(lookup) {
        let subnets = ctx.runtime.network_subnets(&ctx.config.network).await?;
        for (k, v) in node::proxy_env(lookup, &subnets, name) {
            spec = spec.env(k, v);
        }
    }
    info!(container = name, %image, "creating node container");
    match ctx.runtime.run_container(&spec).await {
        Ok(_) => {}
        // A slow engine may have made it although the call failed; the next reconcile
        // adopts or replaces it by the rules above.
        Err(e) if e.is_conflict() => {
            warn!(container = name, error = %e, "container name already in use; retrying");
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    crate::events::publish(
        ctx,
        regarding,
        false,
        "NodeContainerCreated",
        "CreateNodeContainer",
        &format!("node container {name} created from {image}"),
    )
    .await;
    Ok(ContainerChange::Created)
}

/// CGroupsReady: CAPD waits for "Reached target .*Multi-User System" in the container
/// log, then for `crictl ps` to succeed. We ask systemd itself
/// (`systemctl is-active multi-user.target`) instead of reading the log: the answer
/// is about the current boot (the log of a restarted container still holds the
/// previous boot's line), it does not depend on the log driver keeping logs or on the
/// TTY the boot messages go to, and it costs one short exec instead of re-reading a
/// growing log. Then `crictl ps`, as CAPD. Each exec is bounded by
/// [`NODE_PROBE_TIMEOUT`]; while not ready the reconcile requeues after
/// [`NODE_BOOT_POLL`] rather than block a worker. Returns the requeue while waiting.
async fn wait_for_node_boot(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    name: &str,
) -> Result<Option<Action>, Error> {
    if conditions::is_true(dm.conditions(), condition::CGROUPS_READY) {
        return Ok(None);
    }
    if provisioned_before(dm, o) {
        set(
            dm,
            NewCondition::true_(condition::CGROUPS_READY, reason::READY, ""),
        );
        return Ok(None);
    }
    let mut systemd = probe(ctx, name, &node::SYSTEMD_READY_COMMAND).await?;
    // Still booting: wait (bounded) for systemd to say it is done, then look again. Its
    // verdict is not the answer (a `degraded` boot exits non-zero too). Right after the
    // start the wait returns at once (systemd does not answer yet): look again shortly,
    // within the same bound, rather than after a requeue.
    let deadline = std::time::Instant::now() + NODE_BOOT_WAIT;
    while systemd.said_no() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        probe_within(ctx, name, &node::SYSTEMD_BOOT_WAIT_COMMAND, left).await?;
        systemd = probe(ctx, name, &node::SYSTEMD_READY_COMMAND).await?;
        if systemd.said_no() {
            tokio::time::sleep(NODE_BOOT_LOOK.min(left)).await;
        }
    }
    let cri = if systemd.succeeded() {
        Some(probe(ctx, name, &node::CRI_READY_COMMAND).await?)
    } else {
        None
    };
    match node::readiness(&systemd, cri.as_ref()) {
        Readiness::Ready => {
            info!(
                container = name,
                "node booted: multi-user.target reached and crictl ps answers"
            );
            set(
                dm,
                NewCondition::true_(condition::CGROUPS_READY, reason::READY, ""),
            );
            Ok(None)
        }
        Readiness::Waiting(message) => {
            info!(container = name, %message, "waiting for the node to boot");
            set(
                dm,
                NewCondition::false_(condition::CGROUPS_READY, reason::NOT_READY, message),
            );
            set(
                dm,
                NewCondition::false_(
                    condition::PRELOADED_IMAGES_READY,
                    reason::WAITING_FOR_CGROUPS,
                    "",
                ),
            );
            set(
                dm,
                NewCondition::false_(
                    condition::BOOTSTRAP_COMPLETED,
                    reason::WAITING_FOR_CGROUPS,
                    "",
                ),
            );
            Ok(Some(Action::requeue(NODE_BOOT_POLL)))
        }
    }
}

async fn probe(ctx: &Context, name: &str, argv: &[&str]) -> Result<node::Probe, Error> {
    probe_within(ctx, name, argv, NODE_PROBE_TIMEOUT).await
}

async fn probe_within(
    ctx: &Context,
    name: &str,
    argv: &[&str],
    bound: Duration,
) -> Result<node::Probe, Error> {
    let request = capd_runtime::ExecRequest::new(argv.iter().copied());
    Ok(node::Probe::from_exec(
        ctx.runtime.exec_timeout(name, request, bound).await,
    )?)
}

/// PreLoadedImagesReady: `spec.preLoadImages` copied from the engine into the node's
/// containerd, once per container (a True condition is not redone); a failure is
/// reported and retried after [`PRELOAD_RETRY`]. Returns the requeue on failure.
async fn preload_images(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    name: &str,
    cp: &mut dyn Checkpoint<DockerMachine>,
) -> Result<Option<Action>, Error> {
    if conditions::is_true(dm.conditions(), condition::PRELOADED_IMAGES_READY) {
        return Ok(None);
    }
    let images = dm.spec.pre_load_images.clone();
    if images.is_empty() || provisioned_before(dm, o) {
        set(
            dm,
            NewCondition::true_(condition::PRELOADED_IMAGES_READY, reason::READY, ""),
        );
        return Ok(None);
    }
    // Loading can take a while: say so before starting.
    set(
        dm,
        NewCondition::false_(
            condition::PRELOADED_IMAGES_READY,
            reason::NOT_READY,
            format!("loading {}", images.join(", ")),
        ),
    );
    set(
        dm,
        NewCondition::false_(
            condition::BOOTSTRAP_COMPLETED,
            reason::WAITING_FOR_PRELOADED_IMAGES,
            "",
        ),
    );
    summarize_ready(dm, false);
    cp.checkpoint(dm).await?;
    let load_all = async {
        for image in &images {
            info!(container = name, image = %image, "pre-loading image");
            ctx.runtime
                .load_image_into_node(name, image)
                .await
                .map_err(|e| format!("loading {image}: {e}"))?;
        }
        Ok::<(), String>(())
    };
    let failure = match tokio::time::timeout(PRELOAD_TIMEOUT, load_all).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "loading {} did not finish within {}s",
            images.join(", "),
            PRELOAD_TIMEOUT.as_secs()
        )),
    };
    if let Some(message) = failure {
        warn!(container = name, %message, retry_in = ?PRELOAD_RETRY, "pre-loading images failed");
        set(
            dm,
            NewCondition::false_(
                condition::PRELOADED_IMAGES_READY,
                reason::NOT_READY,
                format!("{message} (retrying)"),
            ),
        );
        return Ok(Some(Action::requeue(PRELOAD_RETRY)));
    }
    set(
        dm,
        NewCondition::true_(condition::PRELOADED_IMAGES_READY, reason::READY, ""),
    );
    Ok(None)
}

/// A node provisioned by an earlier manager or before `clusterctl move` (CAPD: a
/// providerID is set; here also a completed bootstrap or a Node): never probed or
/// loaded again.
fn provisioned_before(dm: &DockerMachine, o: &Objects) -> bool {
    !dm.spec.provider_id.is_empty() || bootstrapped(dm) || o.machine.node_name().is_some()
}

/// Where [`bootstrap`] left the node's bootstrap.
enum Bootstrap {
    /// Now or before.
    Completed,
    /// A background task runs it.
    Running,
    Failed(String),
}

/// Starts the node's bootstrap in the background, or takes the outcome of the one that
/// ran.
async fn bootstrap(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    node_name: &str,
    secret_name: &str,
    regarding: &ObjectReference,
) -> Result<Bootstrap, Error> {
    // A node that already has a Node (or the CAPD sentinel from an earlier manager or
    // before `clusterctl move`) must never be bootstrapped twice.
    if o.machine.node_name().is_some() {
        return Ok(Bootstrap::Completed);
    }
    match ctx.bootstraps.take(node_name).await {
        bootstrap_tasks::State::None => {}
        bootstrap_tasks::State::Running => return Ok(Bootstrap::Running),
        bootstrap_tasks::State::Completed => return Ok(Bootstrap::Completed),
        bootstrap_tasks::State::Finished(outcome) => {
            return match outcome? {
                BootstrapOutcome::Completed { ran, skipped } => {
                    info!(node = node_name, ran, skipped, "bootstrap completed");
                    Ok(Bootstrap::Completed)
                }
                BootstrapOutcome::Failed(f) => Ok(Bootstrap::Failed(f.to_string())),
            }
        }
    }
    let check = ctx
        .runtime
        .exec(
            node_name,
            capd_runtime::ExecRequest::new(capd_bootstrap::sentinel_check_command()),
        )
        .await?;
    let sentinel = capd_bootstrap::sentinel_check_result(&check.stdout).unwrap_or(false);
    let ns = dm.namespace().unwrap_or_default();
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(secret_name)
        .await?;
    let Some(secret) = secret else {
        set(
            dm,
            wait_condition(
                reason::WAITING_FOR_BOOTSTRAP_DATA,
                &format!("bootstrap data secret {secret_name} not found"),
            ),
        );
        return Err(Error::Invalid {
            kind: "Secret".into(),
            namespace: ns,
            name: secret_name.into(),
            message: "not found".into(),
        });
    };
    let data = secret.data.unwrap_or_default();
    let Some(value) = data.get("value") else {
        return Ok(Bootstrap::Failed(format!(
            "bootstrap data secret {secret_name} has no key `value`"
        )));
    };
    let format =
        match capd_bootstrap::Format::from_secret_value(data.get("format").map(|f| f.0.as_slice()))
        {
            Ok(f) => f,
            Err(e) => {
                return Ok(Bootstrap::Failed(format!(
                    "bootstrap data secret {secret_name}: {e}"
                )))
            }
        };
    let plan = match capd_bootstrap::plan(&value.0, format, &capd_bootstrap::Options::default()) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Bootstrap::Failed(format!(
                "bootstrap data secret {secret_name} ({}): {e}",
                format.as_str()
            )))
        }
    };
    if sentinel && !bootstrap_exec::progress_exists(ctx.runtime.as_ref(), node_name).await? {
        info!(
            node = node_name,
            "bootstrap sentinel present: the node was bootstrapped before"
        );
        return Ok(Bootstrap::Completed);
    }
    if !plan.ignored.is_empty() {
        info!(ignored = ?plan.ignored, "bootstrap data keys that are not executed");
    }
    set(
        dm,
        NewCondition::false_(
            condition::BOOTSTRAP_COMPLETED,
            reason::NOT_COMPLETED,
            "bootstrapping",
        ),
    );
    // The object reconciled (a DockerMachine or a DevMachine) is woken when it ends.
    let wake = bootstrap_tasks::Wake {
        kind: regarding.kind.clone().unwrap_or_default(),
        namespace: regarding.namespace.clone().unwrap_or_default(),
        name: regarding.name.clone().unwrap_or_default(),
    };
    ctx.bootstraps.start(
        ctx.runtime.clone(),
        node_name,
        plan,
        dm.bootstrap_timeout(),
        wake,
    );
    Ok(Bootstrap::Running)
}

/// There is no cloud provider for containers: set `Node.spec.providerID` ourselves once
/// the workload cluster is reachable and the Node has registered.
async fn set_node_provider_id(
    dm: &DockerMachine,
    o: &Objects,
    ctx: &Context,
    node_name: &str,
) -> Result<Action, Error> {
    let ns = dm.namespace().unwrap_or_default();
    let cluster = o.cluster.name_any();
    let known = match ctx.caches.kubeconfig_version(&ns, &cluster) {
        // Not seen, yet the control plane is initialized: maybe a kubeconfig Secret
        // without the cluster-name label (written by hand); read it by name.
        Some(None) if o.cluster.control_plane_initialized() => None,
        known => known,
    };
    let Some(client) = ctx.workload.get(&ctx.client, &ns, &cluster, known).await? else {
        // No kubeconfig yet (or never, without a control plane provider). The Secret
        // watch wakes us when it comes; the look again is a safety net (and the only
        // way without that watch), answered from the cache.
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let nodes: Api<Node> = Api::all(client);
    let node = match nodes.get_opt(node_name).await {
        Ok(n) => n,
        Err(e) => {
            // Likely the control plane still coming up behind the load balancer.
            info!(error = %capd_runtime::error_chain(&e), "workload cluster not reachable yet");
            return Ok(Action::requeue(Duration::from_secs(10)));
        }
    };
    let Some(node) = node else {
        // kubelet has not registered it yet; it usually does within seconds of the join.
        return Ok(Action::requeue(NODE_REGISTRATION_POLL));
    };
    let want = dm.spec.provider_id.clone();
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let Some(patch) = node_patch(
        &current,
        &want,
        &taints,
        node.metadata.resource_version.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    nodes
        .patch(node_name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    info!(node = node_name, provider_id = %want, "initialized the Node: providerID set, uninitialized taint removed");
    if has_uninitialized_taint(&taints) {
        // CAPD gives the Node its InternalIPs when it lifts the taint (what a cloud
        // provider would do); kubelet keeps them from then on.
        let known: Vec<(String, String)> = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        let mut addresses = known.clone();
        for a in dm
            .status
            .as_ref()
            .map(|s| s.addresses.clone())
            .unwrap_or_default()
        {
            let pair = ("InternalIP".to_string(), a.address.clone());
            if a.type_ == capd_api::MachineAddressType::InternalIp && !addresses.contains(&pair) {
                addresses.push(pair);
            }
        }
        if addresses.len() > known.len() {
            let list: Vec<serde_json::Value> = addresses
                .iter()
                .map(|(t, a)| serde_json::json!({"type": t, "address": a}))
                .collect();
            nodes
                .patch_status(
                    node_name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"status": {"addresses": list}})),
                )
                .await?;
        }
    }
    Ok(Action::await_change())
}

/// The cloud provider's taint kubelet puts on a Node with `--cloud-provider=external`;
/// with no cloud provider for containers, CAPD (and we) lift it.
const UNINITIALIZED_TAINT: &str = "node.cloudprovider.kubernetes.io/uninitialized";

fn has_uninitialized_taint(taints: &[k8s_openapi::api::core::v1::Taint]) -> bool {
    taints
        .iter()
        .any(|t| t.key == UNINITIALIZED_TAINT && t.effect == "NoSchedule")
}

/// What to change on the Node, as CAPD: `spec.providerID` only when empty (never
/// overwrite what someone else set), the uninitialized taint removed. `None` when
/// nothing is to change. The taint list is replaced whole, so the patch carries the
/// Node's resourceVersion: a concurrent change of the taints makes it fail and retry.
pub fn node_patch(
    current_provider_id: &str,
    want: &str,
    taints: &[k8s_openapi::api::core::v1::Taint],
    resource_version: Option<&str>,
) -> Option<serde_json::Value> {
    let set_id = current_provider_id.is_empty() && !want.is_empty();
    let lift = has_uninitialized_taint(taints);
    if !set_id && !lift {
        return None;
    }
    let mut spec = serde_json::Map::new();
    if set_id {
        spec.insert("providerID".into(), want.into());
    }
    if lift {
        let kept: Vec<&k8s_openapi::api::core::v1::Taint> = taints
            .iter()
            .filter(|t| !(t.key == UNINITIALIZED_TAINT && t.effect == "NoSchedule"))
            .collect();
        spec.insert(
            "taints".into(),
            serde_json::to_value(kept).unwrap_or_default(),
        );
    }
    let mut patch = serde_json::json!({"spec": spec});
    if let (true, Some(rv)) = (lift, resource_version) {
        patch["metadata"] = serde_json::json!({"resourceVersion": rv});
    }
    Some(patch)
}

/// Removes the node container (and it from the load balancer); the caller drops the
/// finalizer when this succeeds.
pub async fn reconcile_delete(
    dm: &mut DockerMachine,
    o: &Objects,
    ctx: &Context,
    cp: &mut dyn Checkpoint<DockerMachine>,
) -> Result<Action, Error> {
    set(
        dm,
        NewCondition::false_(
            condition::READY,
            reason::DELETING,
            "deleting the node container",
        ),
    );
    set(
        dm,
        NewCondition::false_(condition::CONTAINER_PROVISIONED, reason::DELETING, ""),
    );
    cp.checkpoint(dm).await?;

    let name = node::container_name(&o.cluster.name_any(), &dm.name_any());
    ctx.bootstraps.abort(&name);
    ctx.runtime.remove_container(&name).await?;
    crate::events::publish(
        ctx,
        &cp.regarding(),
        false,
        "NodeContainerDeleted",
        "DeleteNodeContainer",
        &format!("node container {name} removed"),
    )
    .await;
    if o.machine.is_control_plane() {
        if let Some(dc) = &o.docker_cluster {
            remove_backend(dc, o, ctx).await?;
        }
    }
    if o.cluster.metadata.deletion_timestamp.is_some() {
        ctx.workload
            .evict(&dm.namespace().unwrap_or_default(), &o.cluster.name_any())
            .await;
    }
    Ok(Action::await_change())
}

/// Takes a deleted control-plane node out of the load balancer.
async fn remove_backend(dc: &DockerCluster, o: &Objects, ctx: &Context) -> Result<(), Error> {
    // Which addresses to balance to depends on the family; with a clusterNetwork made
    // invalid after the fact there is no knowing, and rewriting the load balancer for
    // the wrong family would cut off the other nodes. Leave it, and let the deletion go.
    let family = match ip_family::of_cluster(&o.cluster) {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "load balancer left as it is");
            return Ok(());
        }
    };
    // The load balancer itself may already be gone when the whole cluster goes.
    if load_balancer::update_backends(dc, &o.cluster, family, ctx).await? == Update::NoLoadBalancer
    {
        info!("no load balancer left to update");
    }
    Ok(())
}

fn bootstrapped(dm: &DockerMachine) -> bool {
    conditions::is_true(dm.conditions(), condition::BOOTSTRAP_COMPLETED)
}

fn bootstrap_failed(dm: &DockerMachine) -> bool {
    conditions::get(dm.conditions(), condition::BOOTSTRAP_COMPLETED)
        .is_some_and(|c| c.status == "False" && c.reason == reason::FAILED)
}

fn wait_condition(reason: &str, message: &str) -> NewCondition {
    NewCondition::false_(condition::CONTAINER_PROVISIONED, reason, message)
}

/// A wait before the node container exists: ContainerProvisioned says why; the later
/// steps wait for the container (CAPD's `WaitingForContainer`), unless already done.
fn wait_before_container(dm: &mut DockerMachine, why: &str, message: &str) {
    set(dm, wait_condition(why, message));
    for type_ in [
        condition::CGROUPS_READY,
        condition::PRELOADED_IMAGES_READY,
        condition::BOOTSTRAP_COMPLETED,
    ] {
        if conditions::get(dm.conditions(), type_)
            .is_none_or(|c| c.status != "True" && c.reason != reason::FAILED)
        {
            set(
                dm,
                NewCondition::false_(type_, reason::WAITING_FOR_CONTAINER, ""),
            );
        }
    }
}

/// The conditions `Ready` summarises, as CAPD does, in the order the flow reaches them
/// (the first one not True explains Ready=False).
const READY_SUMMARY: [&str; 4] = [
    condition::CONTAINER_PROVISIONED,
    condition::CGROUPS_READY,
    condition::PRELOADED_IMAGES_READY,
    condition::BOOTSTRAP_COMPLETED,
];

/// `Ready` summarises [`READY_SUMMARY`], unless a reconcile already said why it is
/// not ready (deleting, failed, error).
pub fn summarize_ready(dm: &mut DockerMachine, failed_now: bool) {
    let c = dm.conditions();
    // Keep what this reconcile decided (deleting, bootstrap failed, its own error); a
    // Ready=False/InternalError left by an earlier attempt is recomputed.
    let keep = conditions::get(c, condition::READY).is_some_and(|r| {
        r.status == "False"
            && (r.reason == reason::DELETING
                || r.reason == reason::FAILED
                || (r.reason == reason::INTERNAL_ERROR && failed_now))
    });
    if keep {
        return;
    }
    let ready = ready_summary(c);
    set(dm, ready);
}

/// Ready=True when every condition of [`READY_SUMMARY`] is True, else False naming
/// the first that is not.
fn ready_summary(c: &[Condition]) -> NewCondition {
    for type_ in READY_SUMMARY {
        match conditions::get(c, type_) {
            Some(k) if k.status == "True" => {}
            Some(k) if k.message.is_empty() => {
                return NewCondition::false_(
                    condition::READY,
                    reason::NOT_READY,
                    format!("{type_}: {}", k.reason),
                )
            }
            Some(k) => {
                return NewCondition::false_(
                    condition::READY,
                    reason::NOT_READY,
                    format!("{type_}: {}: {}", k.reason, k.message),
                )
            }
            None => {
                return NewCondition::false_(
                    condition::READY,
                    reason::NOT_READY,
                    format!("{type_} not yet reported"),
                )
            }
        }
    }
    NewCondition::true_(condition::READY, reason::READY, "")
}

pub fn set(dm: &mut DockerMachine, c: NewCondition) {
    let generation = dm.metadata.generation;
    conditions::set(dm.conditions_mut(), c, generation);
}

#[cfg(test)]
mod node_patch_tests {
    use super::*;
    use k8s_openapi::api::core::v1::Taint;
    use serde_json::json;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }
    }

    #[test]
    fn sets_the_provider_id_only_when_empty() {
        assert_eq!(
            node_patch("", "docker:////n", &[], Some("7")),
            Some(json!({"spec": {"providerID": "docker:////n"}}))
        );
        assert_eq!(
            node_patch("other:////n", "docker:////n", &[], Some("7")),
            None,
            "someone else's providerID stays"
        );
        assert_eq!(
            node_patch("docker:////n", "docker:////n", &[taint("x")], Some("7")),
            None
        );
    }

    #[test]
    fn lifts_only_the_uninitialized_taint_guarded_by_the_resource_version() {
        let taints = [
            taint("node-role.kubernetes.io/control-plane"),
            taint(UNINITIALIZED_TAINT),
        ];
        assert_eq!(
            node_patch("docker:////n", "docker:////n", &taints, Some("7")),
            Some(json!({
                "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
                "metadata": {"resourceVersion": "7"}
            }))
        );
        let both = node_patch("", "docker:////n", &taints[1..], Some("8")).unwrap();
        assert_eq!(both["spec"]["providerID"], "docker:////n");
        assert_eq!(both["spec"]["taints"], json!([]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_api::DockerMachineSpec;

    fn with(conds: &[(&str, bool, &str, &str)]) -> Vec<Condition> {
        let mut c = Vec::new();
        for (type_, status, reason, message) in conds {
            let new = if *status {
                NewCondition::true_(type_, reason, *message)
            } else {
                NewCondition::false_(type_, reason, *message)
            };
            conditions::set(&mut c, new, None);
        }
        c
    }

    #[test]
    fn a_container_stopped_moments_ago_is_left_to_the_restart_policy() {
        let s = Duration::from_secs;
        assert_eq!(start_deferral(Some(s(2))), Some(s(18)));
        assert_eq!(start_deferral(Some(s(20))), None);
        assert_eq!(start_deferral(Some(s(300))), None);
        // No stop time from the engine: start it.
        assert_eq!(start_deferral(None), None);
    }

    #[test]
    fn adoption_keeps_starts_replaces_refuses_or_reports() {
        use Adoption::*;
        // (existing: (running, ours)), bootstrapped, provisioned before → decision
        let table = [
            (Some((true, true)), false, false, Keep),
            (Some((true, false)), true, true, Keep),
            (Some((false, true)), true, true, Start),
            (Some((false, false)), true, false, RefuseForeign),
            (Some((false, false)), false, false, Replace),
            (None, true, true, Vanished),
            (None, false, true, Vanished),
            (None, false, false, Create),
        ];
        for (existing, bootstrapped, provisioned, want) in table {
            assert_eq!(
                adoption(existing, bootstrapped, provisioned),
                want,
                "{existing:?} {bootstrapped} {provisioned}"
            );
        }
    }

    #[test]
    fn ready_summarises_the_four_conditions_capd_does() {
        use condition::*;
        let all = [
            (CONTAINER_PROVISIONED, true, reason::PROVISIONED, ""),
            (CGROUPS_READY, true, reason::READY, ""),
            (PRELOADED_IMAGES_READY, true, reason::READY, ""),
            (BOOTSTRAP_COMPLETED, true, reason::COMPLETED, ""),
        ];
        let ready = ready_summary(&with(&all));
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            (conditions::Status::True, reason::READY)
        );

        let booting = ready_summary(&with(&[
            all[0],
            (
                CGROUPS_READY,
                false,
                reason::NOT_READY,
                "waiting for systemd to reach multi-user.target",
            ),
            (
                PRELOADED_IMAGES_READY,
                false,
                reason::WAITING_FOR_CGROUPS,
                "",
            ),
            (BOOTSTRAP_COMPLETED, false, reason::WAITING_FOR_CGROUPS, ""),
        ]));
        assert_eq!(booting.status, conditions::Status::False);
        assert_eq!(booting.reason, reason::NOT_READY);
        assert_eq!(
            booting.message,
            "CGroupsReady: NotReady: waiting for systemd to reach multi-user.target"
        );

        let loading = ready_summary(&with(&[
            all[0],
            all[1],
            (
                PRELOADED_IMAGES_READY,
                false,
                reason::NOT_READY,
                "loading a:1",
            ),
            all[3],
        ]));
        assert_eq!(
            loading.message,
            "PreLoadedImagesReady: NotReady: loading a:1"
        );

        // Without the new conditions (a machine from before them) it is not Ready.
        let old = ready_summary(&with(&[all[0], all[3]]));
        assert_eq!(old.message, "CGroupsReady not yet reported");
        assert_eq!(
            ready_summary(&[]).message,
            "ContainerProvisioned not yet reported"
        );
    }

    #[test]
    fn waits_before_the_container_name_the_cause_and_keep_what_is_done() {
        let mut dm = DockerMachine::new("m", DockerMachineSpec::default());
        wait_before_container(
            &mut dm,
            reason::WAITING_FOR_BOOTSTRAP_DATA,
            "waiting for the bootstrap data secret",
        );
        let c = dm.conditions();
        assert_eq!(
            conditions::get(c, condition::CONTAINER_PROVISIONED)
                .unwrap()
                .reason,
            reason::WAITING_FOR_BOOTSTRAP_DATA
        );
        for t in [
            condition::CGROUPS_READY,
            condition::PRELOADED_IMAGES_READY,
            condition::BOOTSTRAP_COMPLETED,
        ] {
            let k = conditions::get(c, t).unwrap();
            assert_eq!(
                (k.status.as_str(), k.reason.as_str()),
                ("False", reason::WAITING_FOR_CONTAINER),
                "{t}"
            );
        }
        let summary = ready_summary(dm.conditions());
        assert_eq!(
            summary.message,
            "ContainerProvisioned: WaitingForBootstrapData: waiting for the bootstrap data secret"
        );

        set(
            &mut dm,
            NewCondition::true_(condition::CGROUPS_READY, reason::READY, ""),
        );
        set(
            &mut dm,
            NewCondition::false_(
                condition::BOOTSTRAP_COMPLETED,
                reason::FAILED,
                "kubeadm failed",
            ),
        );
        wait_before_container(
            &mut dm,
            reason::WAITING_FOR_CLUSTER_INFRASTRUCTURE_READY,
            "",
        );
        assert!(conditions::is_true(
            dm.conditions(),
            condition::CGROUPS_READY
        ));
        assert_eq!(
            conditions::get(dm.conditions(), condition::BOOTSTRAP_COMPLETED)
                .unwrap()
                .reason,
            reason::FAILED
        );
    }
}
