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
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often a reconcile looks at a running bootstrap (in memory: no API request). A
/// finished task wakes its object at once (see [`BootstrapTasks::finished`]); this look
/// is the safety net for a wake-up that was dropped.
pub const POLL: Duration = Duration::from_secs(10);

/// Wake-ups kept for a slow controller before the oldest are dropped (POLL covers those).
const WAKE_BACKLOG: usize = 1024;

/// Where a node's bootstrap stands, as far as this process knows.
#[derive(Debug)]
pub enum State {
    /// No task for this node (or it died): start one if it needs bootstrapping.
    None,
    Running,
    /// Finished; the outcome is handed out once and forgotten.
    Finished(Result<Outcome, capd_runtime::Error>),
    /// Completed by this process, its outcome handed out before. A reconcile of an
    /// object read before that status write reached the cache asks again: running the
    /// plan a second time would exec into a node that may be going away (its failure
    /// would then be reported as the bootstrap's).
    Completed,
}

/// The object to reconcile when a node's bootstrap has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

type Slot = Arc<Mutex<Option<Result<Outcome, capd_runtime::Error>>>>;

struct Task {
    handle: JoinHandle<()>,
    /// Filled by the task before it wakes anyone, so the woken reconcile finds it.
    outcome: Slot,
}

pub struct BootstrapTasks {
    tasks: Mutex<HashMap<String, Task>>,
    /// Nodes whose bootstrap completed here; forgotten on [`BootstrapTasks::abort`]
    /// (a new or restarted container, or the machine deleted).
    completed: Mutex<HashSet<String>>,
    wakes: async_broadcast::Sender<Wake>,
    /// Keeps the channel open while no controller listens (tests, start-up).
    _idle: async_broadcast::InactiveReceiver<Wake>,
}

impl Default for BootstrapTasks {
    fn default() -> Self {
        let (mut wakes, rx) = async_broadcast::broadcast(WAKE_BACKLOG);
        wakes.set_overflow(true);
        Self {
            tasks: Mutex::default(),
            completed: Mutex::default(),
            wakes,
            _idle: rx.deactivate(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BootstrapTasks {
    /// The state of `node`'s task; a finished one is removed as it is reported.
    pub async fn take(&self, node: &str) -> State {
        let mut tasks = lock(&self.tasks);
        let Some(task) = tasks.get(node) else {
            if lock(&self.completed).contains(node) {
                return State::Completed;
            }
            return State::None;
        };
        let outcome = lock(&task.outcome).take();
        if let Some(outcome) = outcome {
            tasks.remove(node);
            if matches!(outcome, Ok(Outcome::Completed { .. })) {
                lock(&self.completed).insert(node.to_string());
            }
            return State::Finished(outcome);
        }
        if task.handle.is_finished() {
            // Panicked or aborted: the markers in the node say where to resume.
            tracing::warn!(node, "bootstrap task ended without an outcome");
            tasks.remove(node);
            return State::None;
        }
        State::Running
    }

    /// Starts `plan` in `node` unless a task for it runs already; `wake` is announced
    /// on [`BootstrapTasks::finished`] once the outcome can be taken.
    pub fn start(
        &self,
        runtime: Arc<dyn ContainerRuntime>,
        node: &str,
        plan: Plan,
        timeout: Duration,
        wake: Wake,
    ) {
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(node) {
            return;
        }
        let owned = node.to_string();
        let outcome: Slot = Arc::default();
        let slot = outcome.clone();
        let wakes = self.wakes.clone();
        let span = tracing::info_span!("bootstrap", node = %owned);
        let handle = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let result = bootstrap_exec::run(runtime.as_ref(), &owned, &plan, timeout).await;
                *lock(&slot) = Some(result);
                // No listener, or a full backlog (the oldest is dropped): POLL covers it.
                let _ = wakes.try_broadcast(wake);
            },
            span,
        ));
        tasks.insert(node.to_string(), Task { handle, outcome });
    }

    /// Wake-ups for the objects whose bootstrap has just ended (every controller gets
    /// every one and keeps those of its kind).
    pub fn finished(&self) -> async_broadcast::Receiver<Wake> {
        self.wakes.new_receiver()
    }

    /// Stops `node`'s task and forgets its completion (its machine is being deleted, or
    /// its container is new or restarted).
    pub fn abort(&self, node: &str) {
        lock(&self.completed).remove(node);
        if let Some(t) = lock(&self.tasks).remove(node) {
            t.handle.abort();
        }
    }

    pub fn running(&self) -> usize {
        lock(&self.tasks)
            .values()
            .filter(|t| !t.handle.is_finished())
            .count()
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

    fn wake(name: &str) -> Wake {
        Wake {
            kind: "DockerMachine".into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    async fn finished(tasks: &BootstrapTasks, node: &str) -> Result<Outcome, capd_runtime::Error> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tasks.take(node).await {
                State::Finished(r) => return r,
                State::None | State::Completed => panic!("{node}: no task"),
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
    async fn one_task_per_node_its_outcome_handed_out_once_then_remembered_if_completed() {
        let rt = Arc::new(MemoryRuntime::new());
        node(&rt, "n1").await;
        let tasks = BootstrapTasks::default();
        assert!(matches!(tasks.take("n1").await, State::None));
        tasks.start(rt.clone(), "n1", plan(), Duration::from_secs(10), wake("n"));
        tasks.start(rt.clone(), "n1", plan(), Duration::from_secs(10), wake("n"));
        assert!(matches!(tasks.take("n1").await, State::Running));
        assert_eq!(tasks.running(), 1);
        match finished(&tasks, "n1").await {
            Ok(Outcome::Completed { ran, .. }) => assert_eq!(ran, 2),
            other => panic!("{other:?}"),
        }
        // Asked again (a reconcile of an object read before the completion was written):
        // completed, until the container is replaced or the machine deleted.
        assert!(matches!(tasks.take("n1").await, State::Completed));
        assert!(matches!(tasks.take("n1").await, State::Completed));
        tasks.abort("n1");
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
        tasks.start(
            rt.clone(),
            "missing",
            plan(),
            Duration::from_secs(10),
            wake("n"),
        );
        assert!(finished(&tasks, "missing").await.is_err());
        // Only a completion is remembered: an error leaves the next reconcile to retry.
        assert!(matches!(tasks.take("missing").await, State::None));

        node(&rt, "n2").await;
        tasks.start(rt.clone(), "n2", plan(), Duration::from_secs(10), wake("n"));
        tasks.abort("n2");
        assert!(matches!(tasks.take("n2").await, State::None));
        assert_eq!(tasks.running(), 0);
    }

    #[tokio::test]
    async fn a_finished_task_wakes_its_object_with_the_outcome_ready() {
        use futures::StreamExt;
        let rt = Arc::new(MemoryRuntime::new());
        node(&rt, "n3").await;
        let tasks = BootstrapTasks::default();
        let mut woken = tasks.finished();
        tasks.start(
            rt.clone(),
            "n3",
            plan(),
            Duration::from_secs(10),
            wake("m3"),
        );
        let got = tokio::time::timeout(Duration::from_secs(10), woken.next())
            .await
            .expect("a wake-up within 10 s");
        assert_eq!(got, Some(wake("m3")));
        // The woken reconcile finds the outcome, not a task still running.
        match tasks.take("n3").await {
            State::Finished(Ok(Outcome::Completed { ran, .. })) => assert_eq!(ran, 2),
            other => panic!("{other:?}"),
        }
    }
}
