//! Who held each object, and for how long. While a provider runs a scenario, the bench
//! watches the scenario's Clusters, DockerClusters and DockerMachines and notes when each
//! first reached each step (owned, done, deleting, gone). From those marks, each unit of
//! work (a cluster, or a machine) gets two figures:
//!
//! - the provider's own time: the spans in which the next step was the provider's
//!   (a DockerCluster owned until provisioned; a DockerMachine owned, with its cluster's
//!   infrastructure provisioned, until bootstrapped; a deleting object until gone). This is
//!   what the raw-Docker floor does, so the two compare fairly;
//! - the rest of the unit's time: Cluster API's steps and waits (owner references,
//!   `infrastructureProvisioned`, deleting the children, its requeues).

use crate::report::median_of;
use crate::scenario::{self, Scenario};
use anyhow::{Context, Result};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Cluster,
    DockerCluster,
    DockerMachine,
}

/// A step an object reaches; each is noted the first time it is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Cluster API set the owner (DockerCluster: Cluster; DockerMachine: Machine).
    Owned,
    /// DockerCluster provisioned and Ready; DockerMachine provisioned and bootstrapped;
    /// Cluster: `infrastructureProvisioned`.
    Done,
    Deleting,
    Gone,
}

/// Seconds on the recorder's clock at which each object first reached each step.
#[derive(Default, Debug, Clone)]
pub struct Marks {
    at: BTreeMap<(Kind, String), BTreeMap<Step, f64>>,
    /// Watch errors and relists after the first list: a step may have been seen late
    /// (a start mark late shortens the provider's span), or a unit left out.
    pub gaps: usize,
}

impl Marks {
    fn note(&mut self, kind: Kind, name: &str, step: Step, at: f64) {
        self.at
            .entry((kind, name.to_string()))
            .or_default()
            .entry(step)
            .or_insert(at);
    }

    fn at(&self, kind: Kind, name: &str, step: Step) -> Option<f64> {
        self.at
            .get(&(kind, name.to_string()))
            .and_then(|s| s.get(&step))
            .copied()
    }

    /// Notes what `o` shows: its owner, its done state, its deletion.
    fn observe(&mut self, kind: Kind, o: &DynamicObject, at: f64) {
        let name = o.name_any();
        let owner = match kind {
            Kind::Cluster => None,
            Kind::DockerCluster => Some("Cluster"),
            Kind::DockerMachine => Some("Machine"),
        };
        if owner.is_some_and(|k| o.owner_references().iter().any(|r| r.kind == k)) {
            self.note(kind, &name, Step::Owned, at);
        }
        if done(kind, &o.data) {
            self.note(kind, &name, Step::Done, at);
        }
        if o.metadata.deletion_timestamp.is_some() {
            self.note(kind, &name, Step::Deleting, at);
        }
    }

    /// The provider's own seconds for one unit, and the unit's whole span: created at
    /// `from.0` until done (machines: from their cluster's load balancer done); for churn,
    /// plus deleted at `from.1` until gone. `None` when a mark is missing.
    pub fn unit(
        &self,
        sc: Scenario,
        cluster: &str,
        machine: &str,
        from: (f64, f64),
    ) -> Option<(f64, f64)> {
        let (create_from, delete_from) = from;
        use Kind::*;
        use Step::*;
        let span = |from: f64, to: f64| (to - from).max(0.0);
        let dc_create = || {
            Some(span(
                self.at(DockerCluster, cluster, Owned)?,
                self.at(DockerCluster, cluster, Done)?,
            ))
        };
        // A DockerMachine is the provider's once it is owned and its cluster's
        // infrastructure is provisioned (the providers wait for both).
        let dm_create = || {
            let from = self
                .at(DockerMachine, machine, Owned)?
                .max(self.at(Cluster, cluster, Done)?);
            Some(span(from, self.at(DockerMachine, machine, Done)?))
        };
        let deleted = |kind: Kind, name: &str| {
            Some(span(
                self.at(kind, name, Deleting)?,
                self.at(kind, name, Gone)?,
            ))
        };
        match sc {
            Scenario::Clusters => Some((
                dc_create()?,
                span(create_from, self.at(DockerCluster, cluster, Done)?),
            )),
            // From the load balancer done: building it is the provider's, and the floor's
            // machines too start after it.
            Scenario::Machines => Some((
                dm_create()?,
                span(
                    self.at(DockerCluster, cluster, Done)?,
                    self.at(DockerMachine, machine, Done)?,
                ),
            )),
            Scenario::Churn => {
                let own = dc_create()?
                    + dm_create()?
                    + deleted(DockerMachine, machine)?
                    + deleted(DockerCluster, cluster)?;
                let whole = span(create_from, self.at(DockerMachine, machine, Done)?)
                    + span(delete_from, self.at(DockerCluster, cluster, Gone)?);
                Some((own, whole))
            }
            Scenario::Workload => None,
        }
    }
}

fn done(kind: Kind, o: &Value) -> bool {
    match kind {
        Kind::Cluster => {
            o["status"]["initialization"]["infrastructureProvisioned"].as_bool() == Some(true)
        }
        Kind::DockerCluster => {
            scenario::provisioned(o) && scenario::condition(o, "Ready").0 == "True"
        }
        Kind::DockerMachine => {
            scenario::provisioned(o) && scenario::condition(o, "BootstrapCompleted").0 == "True"
        }
    }
}

/// Per-unit medians of a run: the provider's own seconds, and the rest (Cluster API's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub own_s: f64,
    pub rest_s: f64,
    /// Units with every mark (the medians are over these).
    pub units: usize,
}

/// The units of a scenario of `size`: (cluster, machine) names as `Objects` makes them.
pub fn units(objs: &scenario::Objects, sc: Scenario, size: usize) -> Vec<(String, String)> {
    match sc {
        Scenario::Clusters => (0..size)
            .map(|i| (objs.cluster_name(i), String::new()))
            .collect(),
        Scenario::Machines => {
            let c = objs.cluster_name(0);
            (0..size)
                .map(|i| (c.clone(), format!("{c}-m{i:02}")))
                .collect()
        }
        Scenario::Churn => (0..size)
            .map(|i| {
                let c = objs.cluster_name(i);
                let m = format!("{c}-m00");
                (c, m)
            })
            .collect(),
        Scenario::Workload => Vec::new(),
    }
}

/// Medians over the units that have every mark; `None` if none has. `from`: when the
/// creates and (churn) the deletes were issued, on the marks' clock.
pub fn split(
    marks: &Marks,
    sc: Scenario,
    units: &[(String, String)],
    from: (f64, f64),
) -> Option<Split> {
    let per: Vec<(f64, f64)> = units
        .iter()
        .filter_map(|(c, m)| marks.unit(sc, c, m, from))
        .collect();
    let own = median_of(per.iter().map(|p| p.0).collect())?;
    let rest = median_of(per.iter().map(|p| (p.1 - p.0).max(0.0)).collect())?;
    Some(Split {
        own_s: own,
        rest_s: rest,
        units: per.len(),
    })
}

/// Watches the three kinds in the run's namespace and notes marks until dropped.
pub struct Recorder {
    origin: Instant,
    marks: Arc<Mutex<Marks>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recorder {
    /// Starts the watches; returns once each has listed the (empty) namespace, so no
    /// step of the run is missed.
    pub async fn start(objs: &scenario::Objects) -> Result<Self> {
        // Built first, so an early return drops it and its Drop stops the watches.
        let mut rec = Recorder {
            origin: Instant::now(),
            marks: Arc::new(Mutex::new(Marks::default())),
            tasks: Vec::new(),
        };
        for (kind, r) in [
            (Kind::Cluster, scenario::clusters()),
            (Kind::DockerCluster, scenario::docker_clusters()),
            (Kind::DockerMachine, scenario::docker_machines()),
        ] {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            rec.tasks.push(tokio::spawn(watch(
                objs.api(&r),
                kind,
                rec.marks.clone(),
                rec.origin,
                ready_tx,
            )));
            // The watcher retries a failing list on its own: bound the wait for it.
            tokio::time::timeout(Duration::from_secs(30), ready_rx)
                .await
                .map_err(|_| {
                    anyhow::anyhow!("the timeline's {kind:?} watch did not list within 30 s")
                })?
                .with_context(|| {
                    format!("the timeline's {kind:?} watch ended before its first list")
                })?;
        }
        Ok(rec)
    }

    /// `at` on the marks' clock.
    pub fn seconds(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    pub fn marks(&self) -> Marks {
        self.marks.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn watch(
    api: Api<DynamicObject>,
    kind: Kind,
    marks: Arc<Mutex<Marks>>,
    origin: Instant,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut seen = Seen::new(kind);
    let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
    while let Some(ev) = events.next().await {
        let at = origin.elapsed().as_secs_f64();
        let Ok(mut m) = marks.lock() else { return };
        if seen.event(&mut m, ev, at) {
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
        }
    }
}

/// One watch's view: which objects exist, to note as gone those a relist no longer
/// shows (their Delete event was missed).
struct Seen {
    kind: Kind,
    present: BTreeSet<String>,
    listed: BTreeSet<String>,
    lists: usize,
}

impl Seen {
    fn new(kind: Kind) -> Self {
        Seen {
            kind,
            present: BTreeSet::new(),
            listed: BTreeSet::new(),
            lists: 0,
        }
    }

    /// Notes what `ev` shows at `at`; true when it ends a list.
    fn event(
        &mut self,
        m: &mut Marks,
        ev: Result<Event<DynamicObject>, watcher::Error>,
        at: f64,
    ) -> bool {
        let kind = self.kind;
        match ev {
            Ok(Event::Init) => {
                self.listed.clear();
                if self.lists > 0 {
                    m.gaps += 1;
                }
            }
            Ok(Event::InitApply(o)) => {
                self.listed.insert(o.name_any());
                m.observe(kind, &o, at);
            }
            Ok(Event::InitDone) => {
                for gone in self.present.difference(&self.listed) {
                    m.note(kind, gone, Step::Gone, at);
                }
                self.present = std::mem::take(&mut self.listed);
                self.lists += 1;
                return true;
            }
            Ok(Event::Apply(o)) => {
                self.present.insert(o.name_any());
                m.observe(kind, &o, at);
            }
            Ok(Event::Delete(o)) => {
                self.present.remove(&o.name_any());
                m.note(kind, &o.name_any(), Step::Gone, at);
            }
            // The watcher retries on its own, then relists. Meanwhile steps are seen
            // late, if at all: counted, so the run's figure can be flagged.
            Err(_) => m.gaps += 1,
        }
        false
    }
}

fn watcher(
    api: Api<DynamicObject>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<DynamicObject>, watcher::Error>> {
    use kube::runtime::WatchStreamExt;
    watcher::watcher(api, config).default_backoff()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;
    use Step::*;

    fn marks(notes: &[(Kind, &str, Step, f64)]) -> Marks {
        let mut m = Marks::default();
        for (k, n, s, at) in notes {
            m.note(*k, n, *s, *at);
        }
        m
    }

    #[test]
    fn churn_counts_the_providers_spans_and_leaves_cluster_apis_waits_to_the_rest() {
        let m = marks(&[
            (DockerCluster, "c", Owned, 0.5),
            (DockerCluster, "c", Done, 2.0),
            (Cluster, "c", Done, 2.5),
            (DockerMachine, "c-m00", Owned, 1.0),
            (DockerMachine, "c-m00", Done, 6.5),
            // Deleting from 10.0: Cluster API deletes the machine at 10.2, gone at 10.7;
            // its 5 s requeue, then the DockerCluster at 15.7, gone at 16.0.
            (DockerMachine, "c-m00", Deleting, 10.2),
            (DockerMachine, "c-m00", Gone, 10.7),
            (DockerCluster, "c", Deleting, 15.7),
            (DockerCluster, "c", Gone, 16.0),
        ]);
        let (own, whole) = m
            .unit(Scenario::Churn, "c", "c-m00", (0.0, 10.0))
            .expect("every mark");
        // 1.5 (load balancer) + 4.0 (machine, from the cluster's infrastructure) + 0.5 + 0.3.
        assert!((own - 6.3).abs() < 1e-9, "own {own}");
        // 6.5 creating + 6.0 deleting.
        assert!((whole - 12.5).abs() < 1e-9, "whole {whole}");
        let s = split(
            &m,
            Scenario::Churn,
            &[("c".into(), "c-m00".into())],
            (0.0, 10.0),
        )
        .expect("one unit");
        assert!((s.rest_s - 6.2).abs() < 1e-9, "rest {}", s.rest_s);
        assert_eq!(s.units, 1);
    }

    #[test]
    fn a_unit_missing_a_mark_is_left_out_not_counted_as_zero() {
        let m = marks(&[
            (DockerCluster, "a", Owned, 1.0),
            (DockerCluster, "a", Done, 3.0),
            (DockerCluster, "b", Done, 2.0),
        ]);
        let units = [
            ("a".to_string(), String::new()),
            ("b".to_string(), String::new()),
        ];
        // Created at 0.5 on the marks' clock.
        let s = split(&m, Scenario::Clusters, &units, (0.5, 0.0)).expect("unit a");
        assert_eq!(
            s,
            Split {
                own_s: 2.0,
                rest_s: 0.5,
                units: 1
            }
        );
        assert_eq!(
            split(&Marks::default(), Scenario::Clusters, &units, (0.0, 0.0)),
            None
        );
    }

    fn object(name: &str, owner: Option<&str>) -> DynamicObject {
        let mut v = serde_json::json!({
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "DockerCluster",
            "metadata": {"name": name, "namespace": "ns"}
        });
        if let Some(kind) = owner {
            v["metadata"]["ownerReferences"] = serde_json::json!([
                {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": kind, "name": name, "uid": "u"}
            ]);
        }
        serde_json::from_value(v).expect("a valid object")
    }

    #[test]
    fn a_relist_that_no_longer_shows_an_object_notes_it_gone_and_counts_a_gap() {
        let mut m = Marks::default();
        let mut seen = Seen::new(DockerCluster);
        assert!(!seen.event(&mut m, Ok(Event::Init), 0.0));
        assert!(seen.event(&mut m, Ok(Event::InitDone), 0.1), "a list ends");
        seen.event(&mut m, Ok(Event::Apply(object("a", None))), 1.0);
        seen.event(&mut m, Ok(Event::Apply(object("a", Some("Cluster")))), 1.5);
        seen.event(&mut m, Ok(Event::Apply(object("b", Some("Cluster")))), 2.0);
        assert_eq!(m.gaps, 0);
        // The watch broke; the relist shows only b: a's Delete was missed.
        seen.event(&mut m, Ok(Event::Init), 3.0);
        seen.event(
            &mut m,
            Ok(Event::InitApply(object("b", Some("Cluster")))),
            3.1,
        );
        seen.event(&mut m, Ok(Event::InitDone), 3.2);
        assert_eq!(m.at(DockerCluster, "a", Owned), Some(1.5));
        assert_eq!(m.at(DockerCluster, "a", Gone), Some(3.2));
        assert_eq!(m.at(DockerCluster, "b", Gone), None);
        assert_eq!(m.gaps, 1, "the relist is counted");
        // A Delete event notes gone; a watch error is counted.
        seen.event(&mut m, Ok(Event::Delete(object("b", Some("Cluster")))), 4.0);
        assert_eq!(m.at(DockerCluster, "b", Gone), Some(4.0));
        seen.event(&mut m, Err(watcher::Error::NoResourceVersion), 4.5);
        assert_eq!(m.gaps, 2);
    }

    #[test]
    fn machines_count_from_their_load_balancer_done() {
        let m = marks(&[
            (DockerCluster, "c", Owned, 0.5),
            (DockerCluster, "c", Done, 2.0),
            (Cluster, "c", Done, 2.6),
            (DockerMachine, "c-m00", Owned, 1.0),
            (DockerMachine, "c-m00", Done, 7.6),
        ]);
        let (own, whole) = m
            .unit(Scenario::Machines, "c", "c-m00", (0.0, 0.0))
            .expect("every mark");
        assert!((own - 5.0).abs() < 1e-9, "own {own}");
        // Cluster API's 0.6 s to `infrastructureProvisioned` is the rest; the load
        // balancer's 1.5 s is in neither.
        assert!((whole - 5.6).abs() < 1e-9, "whole {whole}");
    }

    #[test]
    fn a_step_is_noted_the_first_time_it_is_seen() {
        let mut m = Marks::default();
        m.note(Kind::DockerCluster, "a", Step::Owned, 1.0);
        m.note(Kind::DockerCluster, "a", Step::Owned, 4.0);
        assert_eq!(m.at(Kind::DockerCluster, "a", Step::Owned), Some(1.0));
    }
}
