//! The Node watch loop: a reflector over all Nodes drives reconcile passes.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::exec::SystemRunner;
use crate::node::NodeInfo;
use crate::reconcile::{Outcome, Reconciler};

/// Full pass at least this often, even without Node changes (repairs routes/rules removed by
/// someone else).
pub const RESYNC: Duration = Duration::from_secs(30);
/// Node changes arriving within this window are handled in one pass.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// Delay before retrying a failed pass.
pub const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("the Node watch stream ended")]
    StreamEnded,
    #[error("reconcile task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The infos of all Nodes in the store, sorted by name.
pub fn snapshot(store: &Store<Node>) -> Vec<NodeInfo> {
    let mut nodes: Vec<NodeInfo> = store
        .state()
        .iter()
        .map(|n| NodeInfo::from_node(n))
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    nodes
}

/// Watches Nodes and reconciles until `shutdown` completes.
pub async fn run(
    client: Client,
    reconciler: Reconciler<SystemRunner>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WatchError> {
    let api: Api<Node> = Api::all(client);
    let (store, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    tokio::pin!(events);
    tokio::pin!(shutdown);

    let mut reconciler = Some(reconciler);
    let mut ready = false;
    let mut due: Option<Instant> = None;
    let mut last: Option<Vec<NodeInfo>> = None;
    let mut was_waiting = false;
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let timer = async move {
            match due {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let force = tokio::select! {
            _ = &mut shutdown => {
                info!("shutting down");
                return Ok(());
            }
            ev = events.next() => {
                match ev {
                    Some(Ok(Event::InitDone)) => {
                        if !ready {
                            info!("initial Node list received");
                        }
                        ready = true;
                        due = Some(Instant::now());
                    }
                    Some(Ok(Event::Apply(_) | Event::Delete(_))) if ready => {
                        due.get_or_insert_with(|| Instant::now() + DEBOUNCE);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => warn!(error = %e, "Node watch error; retrying with backoff"),
                    None => return Err(WatchError::StreamEnded),
                }
                continue;
            }
            _ = resync.tick() => {
                if !ready {
                    continue;
                }
                true
            }
            _ = timer => false,
        };
        due = None;

        let nodes = snapshot(&store);
        if !force && last.as_ref() == Some(&nodes) {
            debug!("no relevant Node change");
            continue;
        }
        for n in &nodes {
            if !n.invalid.is_empty() {
                warn!(node = %n.name, values = ?n.invalid, "ignoring unparsable pod CIDRs/InternalIPs");
            }
        }
        let Some(r) = reconciler.take() else {
            return Ok(());
        };
        let passed = nodes.clone();
        // The pass runs blocking commands (ip, iptables): keep them off the async workers.
        let (r, result) = tokio::task::spawn_blocking(move || {
            let result = r.reconcile(&passed);
            (r, result)
        })
        .await?;
        match result {
            Ok(Outcome::WaitingForPodCidr) => {
                if !was_waiting {
                    info!(node = %r.config().node_name, "waiting for this Node to get a pod CIDR");
                }
                was_waiting = true;
                last = Some(nodes);
            }
            Ok(Outcome::Applied {
                conflist_written,
                routes,
                masq,
            }) => {
                was_waiting = false;
                let masq_changed = masq.iter().any(|(_, c)| !c.is_empty());
                if conflist_written || !routes.is_empty() || masq_changed {
                    info!(
                        conflist_written,
                        routes_replaced = routes.replace.len(),
                        routes_deleted = routes.delete.len(),
                        masq = ?masq.iter().filter(|(_, c)| !c.is_empty()).collect::<Vec<_>>(),
                        "host network updated"
                    );
                } else {
                    debug!("host network up to date");
                }
                last = Some(nodes);
            }
            Err(e) => {
                warn!(error = %e, retry_in = ?RETRY, "reconcile failed");
                last = None;
                due = Some(Instant::now() + RETRY);
            }
        }
        reconciler = Some(r);
    }
}
