//! A MachinePool's machines, CAPD v1.14's way ("MachinePool Machines"): the pool makes
//! one infrastructure machine (DockerMachine or DevMachine) per replica, labelled with its
//! Cluster and MachinePool and owned by the pool; Cluster API makes a Machine for each,
//! and the machine controller provisions and bootstraps its node container like any
//! other. Scaling down deletes Machines (Cluster API drains them; their infrastructure
//! machines and containers go with them). Works on the DockerMachinePool view of a
//! DockerMachinePool or a DevMachinePool.
//!
//! Differences from CAPD, on purpose: CAPD creates a pool's containers first and then the
//! DockerMachines that adopt them; here the pool creates the machines and the machine
//! controller creates every container, so there is one implementation of a node
//! container's creation, adoption and bootstrap. Replicas are counted on a fresh LIST
//! of the machines (not the watch cache), so a reconcile that runs before the cache has
//! seen the machines it just made never makes them twice.

use crate::context::Context;
use crate::error::Error;
use crate::infra::InfraPool;
use crate::node;
use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::conditions::{self, NewCondition};
use capd_api::consts::{annotation, condition, label, reason, GROUP};
use capd_api::machine_pool::DockerMachinePool;
use capd_runtime::LabelFilter;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::info;

/// How soon to look again while machines of the pool are going away: the watch reports
/// a machine's deletion starting, but (kube-runtime's shared reflectors) not its end.
const DELETION_POLL: Duration = Duration::from_secs(5);

/// What the pool reads of one of its machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMachine {
    pub name: String,
    pub provider_id: String,
    pub provisioned: bool,
    /// Being deleted, or its Machine is.
    pub deleting: bool,
    /// Its Machine (Cluster API names it after the infrastructure machine).
    pub owner_machine: Option<String>,
    /// Its Machine carries `cluster.x-k8s.io/delete-machine`: goes first on scale-down.
    pub delete_first: bool,
    /// Its node container runs another image than the pool now asks for.
    pub outdated: bool,
    pub created: Option<Time>,
}

/// What a reconcile of a pool decided (pure, see [`plan`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// How many machines to make.
    pub create: usize,
    /// Machines whose Machine to delete, in order.
    pub delete: Vec<String>,
}

/// CAPD's rules: make machines until as many as `replicas` match the pool's template;
/// once more are provisioned than wanted, remove outdated ones first, then those marked
/// with the delete annotation, then the newest. Machines still provisioning are never
/// removed for being surplus (they may be the ones a scale-up is waiting for).
pub fn plan(machines: &[PoolMachine], replicas: usize) -> Plan {
    let live: Vec<&PoolMachine> = machines.iter().filter(|m| !m.deleting).collect();
    let matching = live.iter().filter(|m| !m.outdated).count();
    let provisioned = live.iter().filter(|m| m.provisioned).count();
    let mut over = provisioned.saturating_sub(replicas);
    let mut outdated: Vec<&&PoolMachine> = live.iter().filter(|m| m.outdated).collect();
    outdated.sort_by(|a, b| {
        b.delete_first
            .cmp(&a.delete_first)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut ready: Vec<&&PoolMachine> = live
        .iter()
        .filter(|m| !m.outdated && m.provisioned)
        .collect();
    // Marked first, then newest first (ties by name, so every reconcile picks the same).
    ready.sort_by(|a, b| {
        b.delete_first
            .cmp(&a.delete_first)
            .then_with(|| {
                b.created
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&a.created.as_ref().map(|t| t.0))
            })
            .then_with(|| b.name.cmp(&a.name))
    });
    let mut delete = Vec::new();
    for m in outdated.into_iter().chain(ready) {
        if over == 0 {
            break;
        }
        delete.push(m.name.clone());
        over -= 1;
    }
    Plan {
        create: replicas.saturating_sub(matching),
        delete,
    }
}

pub async fn reconcile_normal<K: InfraPool>(
    view: &mut DockerMachinePool,
    pool: &MachinePool,
    cluster: &Cluster,
    ctx: &Context,
) -> Result<Action, Error> {
    view.status
        .get_or_insert_with(Default::default)
        .infrastructure_machine_kind = K::MACHINE_KIND.to_string();
    if pool.bootstrap_data_secret_name().is_none() {
        info!("waiting for the bootstrap provider to set the MachinePool's bootstrap data");
        set(
            view,
            NewCondition::false_(
                condition::REPLICAS_READY,
                reason::WAITING_FOR_BOOTSTRAP_DATA,
                "waiting for the MachinePool's bootstrap data secret",
            ),
        );
        return Ok(Action::await_change());
    }
    let replicas = usize::try_from(pool.replicas()).map_err(|_| {
        Error::invalid(
            pool,
            format!("spec.replicas: {} is negative", pool.replicas()),
        )
    })?;
    let machines = pool_machines::<K>(view, pool, cluster, ctx).await?;
    let todo = plan(&machines, replicas);
    let api = machines_api::<K>(ctx, &ns_of(view));
    for _ in 0..todo.create {
        let made = api
            .create(
                &PostParams::default(),
                &new_machine::<K>(view, pool, cluster)?,
            )
            .await?;
        info!(machine = %made.name_any(), kind = K::MACHINE_KIND, "created a machine for the pool");
    }
    for name in &todo.delete {
        if let Some(m) = machines
            .iter()
            .find(|m| &m.name == name)
            .and_then(|m| m.owner_machine.clone())
        {
            info!(machine = %m, "scaling down: deleting the Machine");
            delete_ignoring_gone(
                &Api::<Machine>::namespaced(ctx.client.clone(), &ns_of(view)),
                &m,
            )
            .await?;
        }
    }

    // Status as CAPD reports it.
    let mut ids: Vec<String> = machines
        .iter()
        .map(|m| m.provider_id.clone())
        .filter(|p| !p.is_empty())
        .collect();
    ids.sort();
    let all = machines.len();
    view.spec.provider_id_list = ids;
    if view.spec.provider_id.is_empty() {
        view.spec.provider_id =
            format!("docker:////{}-dmp-{}", cluster.name_any(), view.name_any());
    }
    let ready = view.spec.provider_id_list.len() == replicas
        && all == replicas
        && todo.create == 0
        && todo.delete.is_empty();
    let status = view.status.get_or_insert_with(Default::default);
    status.replicas = Some(i32::try_from(all).unwrap_or(i32::MAX));
    if ready {
        // Like `initialization.provisioned`, never set back (the contract's rule).
        status.ready = true;
        set(
            view,
            NewCondition::true_(condition::REPLICAS_READY, reason::READY, ""),
        );
    } else {
        let provisioned = machines
            .iter()
            .filter(|m| m.provisioned && !m.deleting)
            .count();
        let (why, verb) = if all < replicas || todo.create > 0 {
            (reason::SCALING_UP, "scaling up")
        } else if all > replicas {
            (reason::SCALING_DOWN, "scaling down")
        } else {
            (reason::WAITING_FOR_REPLICAS, "waiting for machines")
        };
        set(
            view,
            NewCondition::false_(
                condition::REPLICAS_READY,
                why,
                format!("{verb}: {provisioned} of {replicas} machines provisioned, {all} exist"),
            ),
        );
    }
    if machines.iter().any(|m| m.deleting) || !todo.delete.is_empty() {
        return Ok(Action::requeue(DELETION_POLL));
    }
    Ok(Action::await_change())
}

/// Deletes the pool's machines (through their Machines where they have one); once none
/// is left, any container still labelled with the pool. Returns `None` when all is gone,
/// else when to look again.
pub async fn reconcile_delete<K: InfraPool>(
    view: &mut DockerMachinePool,
    pool: Option<&MachinePool>,
    cluster: &Cluster,
    ctx: &Context,
) -> Result<Option<Action>, Error> {
    set(
        view,
        NewCondition::false_(
            condition::REPLICAS_READY,
            reason::DELETING,
            "deleting the pool's machines",
        ),
    );
    let ns = ns_of(view);
    let machines = match pool {
        Some(p) => pool_machines::<K>(view, p, cluster, ctx).await?,
        None => Vec::new(),
    };
    if !machines.is_empty() {
        let machine_api = Api::<Machine>::namespaced(ctx.client.clone(), &ns);
        let infra_api = machines_api::<K>(ctx, &ns);
        for m in machines.iter().filter(|m| !m.deleting) {
            match &m.owner_machine {
                Some(owner) => delete_ignoring_gone(&machine_api, owner).await?,
                // Without a Machine nothing else will ever delete it.
                None => delete_ignoring_gone(&infra_api, &m.name).await?,
            }
        }
        info!(
            left = machines.len(),
            "waiting for the pool's machines to be deleted"
        );
        return Ok(Some(Action::requeue(DELETION_POLL)));
    }
    let filter = LabelFilter::new()
        .with(label::KIND_CLUSTER, cluster.name_any())
        .with(K::CONTAINER_LABEL, view.name_any());
    for c in ctx.runtime.list_containers(&filter).await? {
        info!(container = %c.name, "removing a container left by the pool");
        ctx.runtime.remove_container(&c.name).await?;
    }
    Ok(None)
}

/// Ready mirrors ReplicasReady (CAPD's summary of a pool has that one input).
pub fn summarize_ready(view: &mut DockerMachinePool, failed_now: bool) {
    let replicas = conditions::get(conditions_of(view), condition::REPLICAS_READY).cloned();
    let ready = match replicas {
        _ if failed_now => return,
        Some(c) if c.status == "True" => NewCondition::true_(condition::READY, reason::READY, ""),
        Some(c) => NewCondition::false_(
            condition::READY,
            reason::NOT_READY,
            format!("ReplicasReady: {}", c.message),
        ),
        None => NewCondition::unknown(condition::READY, reason::READY_UNKNOWN, ""),
    };
    set(view, ready);
}

pub fn set(view: &mut DockerMachinePool, c: NewCondition) {
    use capd_api::HasConditions;
    view.set_condition(c);
}

fn conditions_of(
    view: &DockerMachinePool,
) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    use capd_api::HasConditions;
    view.conditions()
}

fn ns_of(view: &DockerMachinePool) -> String {
    view.namespace().unwrap_or_default()
}

fn machines_api<K: InfraPool>(ctx: &Context, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(GROUP, "v1beta2", K::MACHINE_KIND);
    Api::namespaced_with(ctx.client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

async fn delete_ignoring_gone<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pool's machines, listed fresh (see the module comment), with what [`plan`] needs.
async fn pool_machines<K: InfraPool>(
    view: &DockerMachinePool,
    pool: &MachinePool,
    cluster: &Cluster,
    ctx: &Context,
) -> Result<Vec<PoolMachine>, Error> {
    let ns = ns_of(view);
    let selector = format!(
        "{}={},{}={}",
        label::CLUSTER_NAME,
        cluster.name_any(),
        label::MACHINE_POOL_NAME,
        pool.name_any()
    );
    let list = machines_api::<K>(ctx, &ns)
        .list(&ListParams::default().labels(&selector))
        .await?;
    // The image each node container runs, to tell outdated machines (CAPD compares the
    // container's image with the one the pool's version and customImage ask for).
    let filter = LabelFilter::new().with(label::KIND_CLUSTER, cluster.name_any());
    let images: BTreeMap<String, String> = ctx
        .runtime
        .list_containers(&filter)
        .await?
        .into_iter()
        .map(|c| (c.name, c.image))
        .collect();
    let want = wanted_image(view, pool);
    Ok(list
        .items
        .into_iter()
        .map(|o| {
            let owner = o
                .owner_references()
                .iter()
                .find(|r| r.kind == "Machine")
                .map(|r| r.name.clone());
            let machine = owner.as_deref().and_then(|m| ctx.caches.machine(&ns, m));
            let container = node::container_name(&cluster.name_any(), &o.name_any());
            PoolMachine {
                provider_id: o.data["spec"]["providerID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                provisioned: o.data["status"]["initialization"]["provisioned"]
                    .as_bool()
                    .unwrap_or(false),
                deleting: o.metadata.deletion_timestamp.is_some()
                    || machine
                        .as_ref()
                        .is_some_and(|m| m.metadata.deletion_timestamp.is_some()),
                delete_first: machine
                    .as_ref()
                    .is_some_and(|m| m.annotations().contains_key(annotation::DELETE_MACHINE)),
                outdated: match (images.get(&container), &want) {
                    (Some(have), Some(want)) => have != want,
                    _ => false,
                },
                created: o.metadata.creation_timestamp.clone(),
                owner_machine: owner,
                name: o.name_any(),
            }
        })
        .collect())
}

/// The node image the pool asks for now: its `customImage`, else kind's image for the
/// MachinePool's version.
fn wanted_image(view: &DockerMachinePool, pool: &MachinePool) -> Option<String> {
    node::image(&view.spec.template.custom_image, pool.version())
}

/// A new machine of the pool: CAPD's labels and owner, the pool's template as its spec.
fn new_machine<K: InfraPool>(
    view: &DockerMachinePool,
    pool: &MachinePool,
    cluster: &Cluster,
) -> Result<DynamicObject, Error> {
    let uid = view
        .uid()
        .ok_or_else(|| Error::invalid(view, "metadata.uid: not set"))?;
    let value = serde_json::json!({
        "apiVersion": format!("{GROUP}/v1beta2"),
        "kind": K::MACHINE_KIND,
        "metadata": {
            "generateName": "worker-",
            "namespace": ns_of(view),
            "labels": {label::CLUSTER_NAME: cluster.name_any(), label::MACHINE_POOL_NAME: pool.name_any()},
            "ownerReferences": [{"apiVersion": format!("{GROUP}/v1beta2"), "kind": K::kind(&()), "name": view.name_any(), "uid": uid}],
        },
        "spec": K::machine_spec(&view.spec.template),
    });
    serde_json::from_value(value).map_err(|e| Error::invalid(view, format!("spec.template: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, provisioned: bool) -> PoolMachine {
        PoolMachine {
            name: name.into(),
            provider_id: if provisioned {
                format!("docker:////{name}")
            } else {
                String::new()
            },
            provisioned,
            deleting: false,
            owner_machine: Some(name.into()),
            delete_first: false,
            outdated: false,
            created: None,
        }
    }

    #[test]
    fn scales_up_to_the_replicas_that_match() {
        assert_eq!(
            plan(&[], 2),
            Plan {
                create: 2,
                delete: vec![]
            }
        );
        assert_eq!(
            plan(&[m("a", true)], 3),
            Plan {
                create: 2,
                delete: vec![]
            }
        );
        let mut old = m("old", true);
        old.outdated = true;
        // One outdated: a replacement is made, the old one goes once it is surplus.
        assert_eq!(
            plan(&[old.clone(), m("b", true)], 2),
            Plan {
                create: 1,
                delete: vec![]
            }
        );
        assert_eq!(
            plan(&[old, m("b", true), m("c", true)], 2),
            Plan {
                create: 0,
                delete: vec!["old".into()]
            }
        );
    }

    #[test]
    fn scales_down_marked_first_then_newest_and_never_provisioning_ones() {
        let mut a = m("a", true);
        a.created = Some(Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap()));
        let mut b = m("b", true);
        b.created = Some(Time(k8s_openapi::jiff::Timestamp::from_second(2).unwrap()));
        let c = m("c", false);
        assert_eq!(
            plan(&[a.clone(), b.clone(), c.clone()], 1),
            Plan {
                create: 0,
                delete: vec!["b".into()]
            }
        );
        let mut marked = a.clone();
        marked.delete_first = true;
        assert_eq!(
            plan(&[marked, b.clone(), c], 1),
            Plan {
                create: 0,
                delete: vec!["a".into()]
            }
        );
        // A machine already being deleted neither counts nor is deleted again.
        let mut gone = b.clone();
        gone.deleting = true;
        assert_eq!(plan(&[a.clone(), gone], 1), Plan::default());
        assert_eq!(
            plan(&[a, b], 0),
            Plan {
                create: 0,
                delete: vec!["b".into(), "a".into()]
            }
        );
    }
}
