//! What the reconciles read: the watch caches (reflector stores) the manager shares
//! between the controllers, one watch per kind, and the lookups the flows need. Reading
//! from them costs no API request; a reconcile GETs only what must be fresh (the
//! bootstrap Secret right before use).

use crate::infra::{InfraCluster, Unsupported};
use capd_api::capi::{Cluster, Machine, MachinePool};
use capd_api::consts::GROUP;
use capd_api::DockerCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
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
    /// The metadata of Secrets labelled with a cluster name (`<cluster>-kubeconfig` among
    /// them): whether a workload kubeconfig exists, and its version, without a GET.
    secrets: Option<Store<PartialObjectMeta<Secret>>>,
}

impl Caches {
    pub fn new(clusters: Store<Cluster>, machines: Store<Machine>) -> Self {
        Self {
            clusters,
            machines,
            machine_pools: None,
            infra_clusters: BTreeMap::new(),
            secrets: None,
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

    pub fn with_secrets(mut self, store: Store<PartialObjectMeta<Secret>>) -> Self {
        self.secrets = Some(store);
        self
    }

    /// What the Secret watch knows of `<cluster>-kubeconfig`: `None` without that watch,
    /// `Some(None)` when there is no such Secret, else its resourceVersion.
    pub fn kubeconfig_version(&self, ns: &str, cluster: &str) -> Option<Option<String>> {
        let store = self.secrets.as_ref()?;
        let name = crate::workload::kubeconfig_secret_name(cluster);
        Some(
            store
                .get(&ObjectRef::new(&name).within(ns))
                .map(|s| s.metadata.resource_version.clone().unwrap_or_default()),
        )
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
///
/// The fan-out is ours, not kube-runtime's `store_shared`/`subscribe`: kube 5.0's
/// subscriber receives an object *reference*, looks it up in the store and, when the
/// object was deleted in between, returns `Pending` without arranging a wake-up, so
/// the subscription (and every controller trigger fed by it) goes silent for good. The
/// bench caught it: a manager started while a run's Clusters were still being deleted
/// saw no Cluster change for 10 minutes, until the periodic resync. Here the message
/// carries the object itself (the store's own `Arc`, no copy), so there is nothing to
/// miss.
pub struct Shared<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    pub store: Store<K>,
    writer: kube::runtime::reflector::store::Writer<K>,
    tx: async_broadcast::Sender<Msg<K>>,
    /// Keeps the channel open while no subscriber is active.
    _rx: async_broadcast::InactiveReceiver<Msg<K>>,
    /// For `PartialObjectMeta<_>` kube asks for metadata only.
    api: kube::Api<K>,
    config: kube::runtime::watcher::Config,
}

/// What the watch tells its subscribers.
#[derive(Clone)]
enum Msg<K: kube::Resource<DynamicType = ()>> {
    /// The object as it is now.
    Changed(Arc<K>),
    /// Gone: nothing to reconcile, but a subscriber's filter forgets it. Boxed: the channel
    /// sets aside room for [`SUBSCRIBER_BUFFER`] messages of the largest variant, and an
    /// `ObjectRef` is five times a pointer's size (with 10 watches, 4 MiB against 1 MiB).
    Deleted(Box<ObjectRef<K>>),
}

impl<K: kube::Resource<DynamicType = ()>> Msg<K> {
    /// What a subscriber with `filter` passes on: a changed object its filter lets
    /// through; nothing for a deleted one, which the filter forgets.
    fn through(self, filter: &crate::filters::Filter<K>) -> Option<Arc<K>> {
        match self {
            Msg::Changed(o) => filter.changed(&o).then_some(o),
            Msg::Deleted(r) => {
                filter.forget(&r);
                None
            }
        }
    }
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
        let writer = kube::runtime::reflector::store::Writer::default();
        let (mut tx, rx) = async_broadcast::broadcast(SUBSCRIBER_BUFFER);
        // Broadcast whether or not a subscriber is active yet (as kube's dispatcher).
        tx.set_await_active(false);
        Self {
            store: writer.as_reader(),
            writer,
            tx,
            _rx: rx.deactivate(),
            api,
            config,
        }
    }

    /// A stream of the objects as they change, passed through `filter`. Every
    /// subscription must be polled (a stalled one holds the watch back). A subscriber
    /// sees only what is sent after it subscribed.
    pub fn subscribe(
        &self,
        filter: crate::filters::Filter<K>,
    ) -> impl futures::Stream<Item = Arc<K>> + Send + 'static {
        use futures::StreamExt;
        self.tx
            .new_receiver()
            .filter_map(move |m| futures::future::ready(m.through(&filter)))
    }

    /// The watch itself: runs until the process ends, retrying with backoff.
    pub fn run(self) -> impl std::future::Future<Output = ()> + Send + 'static {
        use kube::runtime::WatchStreamExt;
        let kind = K::kind(&()).into_owned();
        let events = kube::runtime::watcher(self.api, self.config)
            .backoff(watch_backoff())
            .modify(|o: &mut K| o.meta_mut().managed_fields = None);
        pump(events, self.writer, self.tx, kind)
    }
}

/// kube's default watch backoff grows to 30 s: after an API server outage a watch could
/// stay silent that long after the server answers again. Here it grows to 5 s (a
/// failed attempt costs a refused connection), reset after 2 minutes of health.
fn watch_backoff() -> impl kube::runtime::utils::Backoff + Send {
    use kube::runtime::utils::ResetTimerBackoff;
    use kube::runtime::watcher::ExponentialBackoff;
    let builder = backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(500))
        .with_max_delay(std::time::Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(
        ExponentialBackoff::from(builder),
        std::time::Duration::from_secs(120),
    )
}

/// Applies each watch event to the store, then sends what changed to the subscribers:
/// the object of an `Apply`, and after a (re-)list every object listed (as kube's own
/// dispatcher; a Delete is sent to no one).
async fn pump<K, S>(
    events: S,
    mut writer: kube::runtime::reflector::store::Writer<K>,
    tx: async_broadcast::Sender<Msg<K>>,
    kind: String,
) where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
    S: futures::Stream<
        Item = Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>,
    >,
{
    use futures::StreamExt;
    use kube::runtime::watcher::Event;
    let store = writer.as_reader();
    let mut events = std::pin::pin!(events);
    while let Some(ev) = events.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(kind = %kind, error = %e, "watch failed; retrying");
                continue;
            }
        };
        // A re-list replaces the store: what it no longer holds was deleted meanwhile.
        let before: Vec<ObjectRef<K>> = match &ev {
            Event::InitDone => store
                .state()
                .iter()
                .map(|o| ObjectRef::from_obj(o.as_ref()))
                .collect(),
            _ => Vec::new(),
        };
        writer.apply_watcher_event(&ev);
        let messages: Vec<Msg<K>> = match &ev {
            Event::Apply(o) => store
                .get(&ObjectRef::from_obj(o))
                .map(Msg::Changed)
                .into_iter()
                .collect(),
            Event::InitDone => {
                let now = store.state();
                let mut m: Vec<Msg<K>> = before
                    .into_iter()
                    .filter(|r| store.get(r).is_none())
                    .map(|r| Msg::Deleted(Box::new(r)))
                    .collect();
                m.extend(now.into_iter().map(Msg::Changed));
                m
            }
            Event::Delete(o) => vec![Msg::Deleted(Box::new(ObjectRef::from_obj(o)))],
            Event::Init | Event::InitApply(_) => Vec::new(),
        };
        for m in messages {
            // Fails only when every receiver is gone: then no one is listening.
            let _ = tx.broadcast_direct(m).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::Event;

    fn cm(name: &str, v: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns"}, "data": {"v": v}
        }))
        .unwrap()
    }

    fn value(o: &ConfigMap) -> (String, String) {
        (
            o.metadata.name.clone().unwrap_or_default(),
            o.data
                .as_ref()
                .and_then(|d| d.get("v"))
                .cloned()
                .unwrap_or_default(),
        )
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The channel sets aside room for `SUBSCRIBER_BUFFER` messages of this size.
    #[test]
    fn a_message_is_two_words() {
        assert!(std::mem::size_of::<Msg<ConfigMap>>() <= 2 * std::mem::size_of::<usize>());
    }

    async fn changed(m: Msg<ConfigMap>) -> Option<(String, String)> {
        match m {
            Msg::Changed(o) => Some(value(&o)),
            Msg::Deleted(_) => None,
        }
    }

    /// A subscriber's filter forgets what was deleted, by a watch Delete or by missing
    /// from a re-list (deleted while the watch was down), and lets a re-created one in.
    #[tokio::test]
    async fn a_filter_forgets_deleted_objects() {
        let api: kube::Api<ConfigMap> = kube::Api::all(
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap()))
                .unwrap(),
        );
        let shared = Shared::new(api, kube::runtime::watcher::Config::default());
        let filter = Arc::new(crate::filters::Filter::new(|_: &ConfigMap| 0));
        let seen = filter.clone();
        let sub = shared
            .tx
            .new_receiver()
            .filter_map(move |m| futures::future::ready(m.through(&filter).map(|o| value(&o))));
        let events = futures::stream::iter(
            vec![
                Event::Init,
                Event::InitApply(cm("a", "1")),
                Event::InitApply(cm("b", "1")),
                Event::InitDone,
                Event::Delete(cm("a", "1")),
                // The watch restarts; b was deleted while it was down.
                Event::Init,
                Event::InitApply(cm("c", "1")),
                Event::InitDone,
                Event::Apply(cm("a", "2")),
            ]
            .into_iter()
            .map(Ok),
        );
        let Shared {
            writer, tx, _rx, ..
        } = shared;
        pump(events, writer, tx, "ConfigMap".into()).await;
        drop(_rx);
        let mut got: Vec<(String, String)> = sub.collect().await;
        got[..2].sort();
        let want = owned(&[("a", "1"), ("b", "1"), ("c", "1"), ("a", "2")]);
        // a re-created passes the filter again (its fingerprint was forgotten).
        assert_eq!(got, want);
        // c and a are remembered; b (gone in the re-list) and the first a are not.
        assert_eq!(seen.remembered(), 2);
    }

    /// The stall kube 5.0's subscriber has: a listed object deleted before the
    /// subscriber reads it. Here the subscriber gets it, and everything after.
    #[tokio::test]
    async fn an_object_deleted_right_after_the_list_does_not_silence_a_subscriber() {
        let writer = kube::runtime::reflector::store::Writer::<ConfigMap>::default();
        let store = writer.as_reader();
        let (mut tx, rx) = async_broadcast::broadcast(16);
        tx.set_await_active(false);
        let sub = tx.new_receiver();
        let events = futures::stream::iter(
            vec![
                Event::Init,
                Event::InitApply(cm("a", "1")),
                Event::InitApply(cm("b", "1")),
                Event::InitDone,
                Event::Delete(cm("a", "1")),
                Event::Apply(cm("b", "2")),
                Event::Apply(cm("c", "1")),
            ]
            .into_iter()
            .map(Ok),
        );
        pump(events, writer, tx, "ConfigMap".into()).await;
        drop(rx);
        let mut got: Vec<(String, String)> = sub.filter_map(changed).collect().await;
        // The list's order is the store's (a map); sort it alone.
        got[..2].sort();
        let want = owned(&[("a", "1"), ("b", "1"), ("b", "2"), ("c", "1")]);
        assert_eq!(got, want);
        // The store reflects the delete.
        let mut names: Vec<String> = store.state().iter().map(|o| value(o).0).collect();
        names.sort();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn the_watch_backoff_stays_within_five_seconds() {
        let waits: Vec<std::time::Duration> = watch_backoff().take(20).collect();
        assert_eq!(waits.len(), 20, "never gives up");
        assert!(
            waits
                .iter()
                .all(|w| *w <= std::time::Duration::from_secs(10)),
            "{waits:?}"
        );
        assert!(waits[0] < std::time::Duration::from_secs(2), "{waits:?}");
    }

    #[tokio::test]
    async fn a_watch_error_is_skipped_and_later_events_still_arrive() {
        let writer = kube::runtime::reflector::store::Writer::<ConfigMap>::default();
        let (mut tx, _rx) = async_broadcast::broadcast(16);
        tx.set_await_active(false);
        let sub = tx.new_receiver();
        let events = futures::stream::iter(vec![
            Err(kube::runtime::watcher::Error::NoResourceVersion),
            Ok(Event::Apply(cm("a", "1"))),
        ]);
        pump(events, writer, tx, "ConfigMap".into()).await;
        let got: Vec<(String, String)> = sub.filter_map(changed).collect().await;
        assert_eq!(got, [("a".to_string(), "1".to_string())]);
    }
}
