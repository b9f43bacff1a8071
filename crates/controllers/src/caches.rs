//! What the reconciles read: the watch caches (reflector stores) the manager shares
//! between the controllers, one watch per kind, and the lookups the flows need. Reading
//! from them costs no API request; a reconcile GETs only what must be fresh (the
//! bootstrap Secret right before use).

use crate::infra::{InfraCluster, Unsupported};
use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::consts::GROUP;
use capd_api::DockerCluster;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

type InfraClusterLookup =
    Arc<dyn Fn(&str, &str) -> Option<Result<DockerCluster, Unsupported>> + Send + Sync>;

#[derive(Clone)]
pub struct Caches {
    pub clusters: Store<Cluster>,
    pub machines: Store<Machine>,
    /// Cluster API's MachinePools; `None` where the management cluster does not serve
    /// them (Cluster API's `MachinePool` feature gate off).
    pub machine_pools: Option<Store<MachinePool>>,
    /// Infrastructure cluster kind → its store, as the docker backend sees the objects.
    infra_clusters: BTreeMap<&'static str, InfraClusterLookup>,
}

impl Caches {
    pub fn new(clusters: Store<Cluster>, machines: Store<Machine>) -> Self {
        Self {
            clusters,
            machines,
            machine_pools: None,
            infra_clusters: BTreeMap::new(),
        }
    }

    /// Makes objects of `kind` findable as a Cluster's infrastructure.
    pub fn with_infra_cluster<K: InfraCluster>(
        mut self,
        kind: &'static str,
        store: Store<K>,
    ) -> Self {
        let lookup: InfraClusterLookup = Arc::new(move |ns: &str, name: &str| {
            store
                .get(&ObjectRef::new(name).within(ns))
                .map(|o| o.to_view())
        });
        self.infra_clusters.insert(kind, lookup);
        self
    }

    pub fn with_machine_pools(mut self, store: Store<MachinePool>) -> Self {
        self.machine_pools = Some(store);
        self
    }

    pub fn machine_pool(&self, ns: &str, name: &str) -> Option<Arc<MachinePool>> {
        self.machine_pools
            .as_ref()?
            .get(&ObjectRef::new(name).within(ns))
    }

    pub fn cluster(&self, ns: &str, name: &str) -> Option<Arc<Cluster>> {
        self.clusters.get(&ObjectRef::new(name).within(ns))
    }

    pub fn machine(&self, ns: &str, name: &str) -> Option<Arc<Machine>> {
        self.machines.get(&ObjectRef::new(name).within(ns))
    }

    /// The infrastructure cluster `cluster.spec.infrastructureRef` names, whichever of our
    /// kinds it is; `None` when unset, of another provider, or not (yet) seen.
    pub fn infra_cluster(&self, cluster: &Cluster) -> Option<Result<DockerCluster, Unsupported>> {
        let r = &cluster.spec.infrastructure_ref;
        if r.api_group != GROUP || r.name.is_empty() {
            return None;
        }
        let ns = cluster.metadata.namespace.as_deref()?;
        (self.infra_clusters.get(r.kind.as_str())?)(ns, &r.name)
    }
}

/// One watch of `K` shared by every consumer: the store the reconciles read, and
/// subscriptions that trigger reconciles. Objects are kept without `managedFields`
/// (nothing reads them; they are often the larger half of an object).
pub struct Shared<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    writer: kube::runtime::reflector::store::Writer<K>,
    api: kube::Api<K>,
    config: kube::runtime::watcher::Config,
}

/// Events a subscriber may lag behind before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 4096;

impl<K> Shared<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    pub fn new(api: kube::Api<K>, config: kube::runtime::watcher::Config) -> Self {
        let (store, writer) = kube::runtime::reflector::store_shared(SUBSCRIBER_BUFFER);
        Self {
            store,
            writer,
            api,
            config,
        }
    }

    /// A stream of the objects as they change, passed through `filter`. Every
    /// subscription must be polled (a stalled one holds the watch back).
    pub fn subscribe(
        &self,
        filter: crate::filters::Filter<K>,
    ) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        use futures::StreamExt;
        // `store_shared` always makes a subscribable writer.
        let handle = self
            .writer
            .subscribe()
            .map(StreamExt::boxed)
            .unwrap_or_else(|| futures::stream::empty().boxed());
        handle.filter(move |o| futures::future::ready(filter.changed(o)))
    }

    /// The watch itself: runs until the process ends, retrying with backoff.
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        use futures::StreamExt;
        use kube::runtime::WatchStreamExt;
        let kind = K::kind(&()).into_owned();
        kube::runtime::watcher(self.api, self.config)
            .default_backoff()
            .modify(|o: &mut K| o.meta_mut().managed_fields = None)
            .reflect_shared(self.writer)
            .for_each(move |ev| {
                if let Err(e) = ev {
                    tracing::warn!(kind = %kind, error = %e, "watch failed; retrying");
                }
                futures::future::ready(())
            })
    }
}
