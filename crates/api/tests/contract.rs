//! The Cluster API contract, against the Cluster API core controller running in the test
//! environment: it finds our DockerCluster through the CRD's contract label, adopts it, and
//! reads what the v1beta2 contract says it reads.

mod common;

use anyhow::Result;
use capd_api::capi::Cluster;
use capd_api::DockerCluster;
use capd_testenv::poll_until;
use common::{client, dynamic, in_namespace, install, object};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn cluster_adopts_docker_cluster_and_reads_its_contract_fields() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-contract", |client, ns| async move {
        let name = "c1";
        let pp = PostParams::default();
        dynamic::<DockerCluster>(&client, &ns)
            .create(&pp, &object(json!({
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2",
                "kind": "DockerCluster",
                "metadata": {"name": name},
                "spec": {"failureDomains": [{"name": "fd1", "controlPlane": true}, {"name": "fd2"}]},
            })))
            .await?;
        dynamic::<Cluster>(&client, &ns)
            .create(&pp, &object(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta2",
                "kind": "Cluster",
                "metadata": {"name": name},
                "spec": {
                    "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
                    "infrastructureRef": {
                        "apiGroup": "infrastructure.cluster.x-k8s.io",
                        "kind": "DockerCluster",
                        "name": name,
                    },
                },
            })))
            .await?;
        let clusters: Api<Cluster> = Api::namespaced(client.clone(), &ns);
        let cluster_uid = clusters.get(name).await?.uid().unwrap_or_default();

        // 1. The Cluster controller sets an owner reference from the Cluster on the DockerCluster.
        let docker_clusters: Api<DockerCluster> = Api::namespaced(client.clone(), &ns);
        poll_until("owner reference from the Cluster on the DockerCluster", TIMEOUT, || {
            let api = docker_clusters.clone();
            let uid = cluster_uid.clone();
            async move {
                let dc = api.get(name).await.map_err(|e| e.to_string())?;
                let owners = dc.owner_references();
                if owners
                    .iter()
                    .any(|o| o.kind == "Cluster" && o.name == name && o.uid == uid && o.api_version == "cluster.x-k8s.io/v1beta2")
                {
                    Ok(())
                } else {
                    Err(format!("ownerReferences: {owners:?}"))
                }
            }
        })
        .await?;

        // 2. Once we report the infrastructure provisioned, Cluster API copies the endpoint
        //    and failure domains, and marks the Cluster's infrastructure provisioned.
        docker_clusters
            .patch(name, &PatchParams::default(), &Patch::Merge(&json!({
                "spec": {"controlPlaneEndpoint": {"host": "172.18.0.3", "port": 6443}}})))
            .await?;
        let mut dc = docker_clusters.get(name).await?;
        dc.set_provisioned(true);
        dc.sync_failure_domains();
        docker_clusters
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&json!({"status": dc.status})))
            .await?;
        poll_until("Cluster to read the DockerCluster's contract fields", TIMEOUT, || {
            let api = clusters.clone();
            async move {
                let c = api.get(name).await.map_err(|e| e.to_string())?;
                let endpoint = c.spec.control_plane_endpoint.to_string();
                if c.infrastructure_provisioned() && endpoint == "172.18.0.3:6443" {
                    Ok(c)
                } else {
                    Err(format!("provisioned={} endpoint={endpoint}", c.infrastructure_provisioned()))
                }
            }
        })
        .await?;
        let raw = dynamic::<Cluster>(&client, &ns).get(name).await?;
        let domains: Vec<&str> = raw.data["status"]["failureDomains"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(domains, ["fd1", "fd2"], "failure domains copied to the Cluster");
        Ok(())
    })
    .await
}
