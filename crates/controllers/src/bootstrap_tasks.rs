//! Bootstraps run as background tasks, as CAPD runs them: a node's `kubeadm init` takes
//! a minute or more, and a reconcile worker waiting for it would hold up every other
//! machine behind it. The reconcile starts the task, looks again shortly, and takes the
//! outcome once it is there.
//!
//! Exactly-once is kept by [`crate::bootstrap_exec`]'s markers in the node, not here: a
//! manager that loses its Lease exits, and its tasks with it; the next one resumes from
//! the markers. This registry only keeps one process from starting a second task for a
//! node while the first still runs.

use crate::bootstrap_exec::{self, Outcome};
use capd_bootstrap::Plan;
use capd_runtime::ContainerRuntime;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often a reconcile looks at a running bootstrap (in memory: no API request).
pub const POLL: Duration = Duration::from_secs(2);

/// Where a node's bootstrap stands, as far as this process knows.
#[derive(Debug)]
pub enum State {
    /// No task for this node (or it died): start one if it needs bootstrapping.
    None,
    Running,
    /// Finished; the outcome is handed out once and forgotten.
    Finished(Result<Outcome, capd_runtime::Error>),
}

#[derive(Default)]
pub struct BootstrapTasks {
    tasks: Mutex<HashMap<String, JoinHandle<Result<Outcome, capd_runtime::Error>>>>,
}

impl BootstrapTasks {
    fn tasks(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<Result<Outcome, capd_runtime::Error>>>>
    {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state of `node`'s task; a finished one is removed as it is reported.
    pub async fn take(&self, node: &str) -> State {
        let handle = {
            let mut tasks = self.tasks();
            match tasks.get(node) {
                None => return State::None,
                Some(h) if !h.is_finished() => return State::Running,
                Some(_) => tasks.remove(node),
            }
        };
        match handle {
            None => State::None,
            Some(h) => match h.await {
                Ok(result) => State::Finished(result),
                // Panicked or aborted: the markers in the node say where to resume.
                Err(e) => {
                    tracing::warn!(node, error = %e, "bootstrap task ended without an outcome");
                    State::None
                }
            },
        }
    }

    /// Starts `plan` in `node` unless a task for it runs already.
    pub fn start(
        &self,
        runtime: Arc<dyn ContainerRuntime>,
        node: &str,
        plan: Plan,
        timeout: Duration,
    ) {
        let mut tasks = self.tasks();
        if tasks.contains_key(node) {
            return;
        }
        let owned = node.to_string();
        let span = tracing::info_span!("bootstrap", node = %owned);
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move { bootstrap_exec::run(runtime.as_ref(), &owned, &plan, timeout).await },
            span,
        ));
        tasks.insert(node.to_string(), task);
    }

    /// Stops `node`'s task (its machine is being deleted).
    pub fn abort(&self, node: &str) {
        if let Some(h) = self.tasks().remove(node) {
            h.abort();
        }
    }

    pub fn running(&self) -> usize {
        self.tasks().values().filter(|h| !h.is_finished()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capd_runtime::memory::MemoryRuntime;
    use capd_runtime::ContainerSpec;

    async fn node(rt: &MemoryRuntime, name: &str) {
        rt.create_container(&ContainerSpec::new(name, "node"))
            .await
            .unwrap();
        rt.start_container(name).await.unwrap();
    }

    fn plan() -> Plan {
        let data = b"#cloud-config\nruncmd:\n- echo one\n- echo two\n";
        capd_bootstrap::plan(
            data,
            capd_bootstrap::Format::CloudConfig,
            &capd_bootstrap::Options::default(),
        )
        .unwrap()
    }

    async fn finished(tasks: &BootstrapTasks, node: &str) -> Result<Outcome, capd_runtime::Error> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tasks.take(node).await {
                State::Finished(r) => return r,
                State::None => panic!("{node}: no task"),
                State::Running if std::time::Instant::now() > deadline => {
                    panic!("{node}: still running")
                }
                State::Running => tokio::task::yield_now().await,
            }
        }
    }

    // Current-thread runtime: a spawned task does not run before the test yields, so
    // "running" right after the start is deterministic.
    #[tokio::test]
    async fn one_task_per_node_its_outcome_handed_out_once() {
        let rt = Arc::new(MemoryRuntime::new());
        node(&rt, "n1").await;
        let tasks = BootstrapTasks::default();
        assert!(matches!(tasks.take("n1").await, State::None));
        tasks.start(rt.clone(), "n1", plan(), Duration::from_secs(10));
        tasks.start(rt.clone(), "n1", plan(), Duration::from_secs(10));
        assert!(matches!(tasks.take("n1").await, State::Running));
        assert_eq!(tasks.running(), 1);
        match finished(&tasks, "n1").await {
            Ok(Outcome::Completed { ran, .. }) => assert_eq!(ran, 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(tasks.take("n1").await, State::None));
        // Each command ran once although start was called twice.
        let ran = rt.calls().iter().filter(|c| c.contains("echo one")).count();
        assert_eq!(ran, 1, "{:?}", rt.calls());
    }

    #[tokio::test]
    async fn an_engine_error_is_the_outcome_and_an_aborted_task_is_forgotten() {
        let rt = Arc::new(MemoryRuntime::new());
        let tasks = BootstrapTasks::default();
        // No such container: the engine's error comes back typed.
        tasks.start(rt.clone(), "missing", plan(), Duration::from_secs(10));
        assert!(finished(&tasks, "missing").await.is_err());

        node(&rt, "n2").await;
        tasks.start(rt.clone(), "n2", plan(), Duration::from_secs(10));
        tasks.abort("n2");
        assert!(matches!(tasks.take("n2").await, State::None));
        assert_eq!(tasks.running(), 0);
    }
}
