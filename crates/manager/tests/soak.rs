//! Soak (issue 15): clusters created and deleted in a loop (one load balancer and one
//! worker node each, bootstrapped) for `SOAK_MINUTES` (1 in the README's test command;
//! `cargo xtask chaos --soak-minutes 30` for the long run). Reported: the manager's RSS
//! after the first round and at the end, containers and node volumes left behind, and
//! failed reconciles per hour (from the manager's log). Asserted: nothing left, and RSS
//! not growing without bound.

mod common;

use capd_testenv::{poll_until, unique_name};
use common::faults::{docker_out, Row};
use common::*;
use kube::api::{DeleteParams, ListParams};
use serde_json::json;
use std::time::{Duration, Instant};

fn minutes() -> u64 {
    std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// One cluster with one worker: created, provisioned, deleted, gone. Returns the node's
/// volumes (to look for afterwards).
async fn round(f: &Fixture, i: u64) -> Vec<String> {
    let cluster = unique_name(&format!("soak{i}"));
    if let Ok(mut n) = f.cluster_names.lock() {
        n.push(cluster.clone());
    }
    f.create_cluster(&cluster, false, json!({})).await;
    f.wait_provisioned(&cluster, LONG).await;
    let machine = format!("{cluster}-w");
    f.machine(
        &cluster,
        &machine,
        false,
        "#cloud-config\nruncmd:\n- echo ok > /var/ok\n",
        None,
    )
    .await;
    f.wait_machine(&machine, "provisioned", LONG, |dm| {
        dm.is_provisioned()
            && capd_api::conditions::is_true(capd_api::HasConditions::conditions(dm), "Ready")
    })
    .await;
    let (_, v) = docker_out(
        f,
        &[
            "inspect",
            "--format",
            "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
            // Named after the machine, which carries the cluster's name already.
            &machine,
        ],
    );
    f.clusters()
        .delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    poll_until(&format!("cluster {cluster} gone"), LONG, || {
        let left = containers_of(&f.env, &cluster).len();
        let api = f.clusters();
        let name = cluster.clone();
        async move {
            let exists = api
                .get_opt(&name)
                .await
                .map_err(|e| e.to_string())?
                .is_some();
            if !exists && left == 0 {
                Ok(())
            } else {
                Err(format!("Cluster exists: {exists}; {left} containers"))
            }
        }
    })
    .await
    .unwrap();
    v.split_whitespace().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn churn_soak_leaves_nothing_and_memory_settles() {
    let f = Fixture::new("soak").await;
    let m = f.manager(&[]).await;
    let mut volumes = round(&f, 0).await;
    let rss_first = rss_kib(m.pid());
    let start = Instant::now();
    let (mut rounds, mut peak) = (1u64, rss_first);
    while start.elapsed() < Duration::from_secs(60 * minutes()) {
        volumes.extend(round(&f, rounds).await);
        peak = peak.max(rss_kib(m.pid()));
        rounds += 1;
    }
    let elapsed = start.elapsed();
    let rss_end = rss_kib(m.pid());
    let left_volumes = volumes
        .iter()
        .filter(|v| docker_out(&f, &["volume", "inspect", v]).0)
        .count();
    let clusters_left = f
        .clusters()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    let errors = log.matches("reconcile failed").count();
    let per_hour = errors as f64 * 3600.0 / elapsed.as_secs_f64().max(1.0);
    Row {
        fault: format!("soak: {} min of create/provision/delete churn", minutes()),
        trials: rounds as usize,
        duplicates: 0,
        second_bootstraps: 0,
        orphans: left_volumes + clusters_left,
        recovery: elapsed,
        seen: format!(
            "RSS {:.1} MiB after the first round, {:.1} MiB at the end (peak {:.1}); {left_volumes} of {} node volumes and {clusters_left} Clusters left; {errors} failed reconciles ({per_hour:.0}/hour)",
            rss_first as f64 / 1024.0,
            rss_end as f64 / 1024.0,
            peak as f64 / 1024.0,
            volumes.len()
        ),
    }
    .print();
    assert!(
        !volumes.is_empty(),
        "the nodes have /var volumes to look for"
    );
    assert_eq!((left_volumes, clusters_left), (0, 0));
    // Caches and per-object state are released with the objects: the resident set may
    // move with the allocator, not with the number of rounds.
    assert!(
        rss_end < rss_first * 3 / 2 + 8 * 1024,
        "RSS grew from {rss_first} KiB to {rss_end} KiB over {rounds} rounds"
    );
    f.delete_namespace().await;
}
