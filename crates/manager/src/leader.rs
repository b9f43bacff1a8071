//! `--leader-elect`: hold a Lease before reconciling; give it back on shutdown so a
//! standby instance takes over at once; stop if it is lost.

use anyhow::{Context, Result};
use kube_lease_manager::LeaseManagerBuilder;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info};

pub struct Leadership {
    is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
}

/// CAPD's three leader-election timings in kube-lease-manager's terms: the Lease lasts
/// `lease_duration`; the holder renews `grace` seconds before it ends, i.e. within the
/// renew deadline. (The retry period has no knob there: candidates retry as the Lease expires.)
pub struct Timing {
    duration: u64,
    grace: u64,
}

impl From<&crate::flags::Flags> for Timing {
    fn from(f: &crate::flags::Flags) -> Self {
        let duration = f.leader_elect_lease_duration.as_secs().max(2);
        let renew = f.leader_elect_renew_deadline.as_secs().min(duration - 1);
        Self {
            duration,
            grace: (duration - renew).max(1),
        }
    }
}

/// Waits until this instance holds the Lease, or `shutdown` fires (then `None`).
pub async fn acquire(
    client: kube::Client,
    namespace: &str,
    name: &str,
    timing: Timing,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<Leadership>> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity())
        .with_duration(timing.duration)
        .with_grace(timing.grace)
        .build()
        .await
        .with_context(|| format!("setting up leader election on Lease {namespace}/{name}"))?;
    let (mut is_leader, task) = manager.watch().await;
    info!(lease = %format!("{namespace}/{name}"), "waiting to become leader");
    while !*is_leader.borrow_and_update() {
        tokio::select! {
            changed = is_leader.changed() => {
                if changed.is_err() {
                    anyhow::bail!("leader election on Lease {namespace}/{name} stopped");
                }
            }
            _ = shutdown.changed() => return Ok(None),
        }
    }
    info!(lease = %format!("{namespace}/{name}"), "became leader");
    Ok(Some(Leadership { is_leader, task }))
}

impl Leadership {
    /// Resolves when the Lease is lost.
    pub async fn lost(&mut self) {
        loop {
            if self.is_leader.changed().await.is_err() || !*self.is_leader.borrow() {
                error!("lost leadership");
                return;
            }
        }
    }

    /// Gives the Lease back (closing the channel makes the manager task release it).
    pub async fn release(self) {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => info!("released leadership"),
            Ok(Err(e)) => error!(error = %e, "releasing the Lease"),
            Err(e) => error!(error = %e, "leader election task"),
        }
    }
}

/// Resolves once the Lease names a holder other than this instance (which is then a
/// standby). Polls every 2 s; the caller stops it when the election is decided.
pub async fn held_by_another(client: kube::Client, namespace: &str, name: &str) {
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, namespace);
    let me = identity();
    loop {
        if let Ok(Some(lease)) = leases.get_opt(name).await {
            let holder = lease
                .spec
                .and_then(|s| s.holder_identity)
                .unwrap_or_default();
            if !holder.is_empty() && holder != me {
                info!(lease = %format!("{namespace}/{name}"), %holder, "standing by");
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "capd-rs".into());
    format!("{host}_{}", std::process::id())
}
