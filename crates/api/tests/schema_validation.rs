//! Against the test environment's real kube-apiserver: the generated CRDs and admission
//! policy accept what CAPD accepts and reject, naming the field, what CAPD's webhooks and
//! schema reject.

mod common;

use anyhow::Result;
use capd_api::consts::annotation;
use capd_api::{
    DockerCluster, DockerClusterSpec, DockerClusterTemplate, DockerMachine, DockerMachineSpec,
    DockerMachineTemplate,
};
use capd_testenv::poll_until;
use common::{assert_invalid, client, dynamic, in_namespace, install, object, MANAGER};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use std::time::Duration;

const API_VERSION: &str = "infrastructure.cluster.x-k8s.io/v1beta2";

fn obj(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec})
}

fn machine_template(spec: Value) -> Value {
    json!({"template": {"spec": spec}})
}

fn cluster_template(spec: Value) -> Value {
    json!({"template": {"spec": spec}})
}

/// One invalid object per case, each with a single fault, and the field the rejection must name.
fn invalid_cases() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    let long = "h".repeat(513);
    vec![
        (
            "DockerCluster",
            json!({"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 0}}),
            "spec.controlPlaneEndpoint.port",
            "port 0",
        ),
        (
            "DockerCluster",
            json!({"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 65536}}),
            "spec.controlPlaneEndpoint.port",
            "port above 65535",
        ),
        (
            "DockerCluster",
            json!({"controlPlaneEndpoint": {"host": "10.0.0.1", "port": "6443"}}),
            "spec.controlPlaneEndpoint.port",
            "port as a string",
        ),
        (
            "DockerCluster",
            json!({"controlPlaneEndpoint": {"host": "", "port": 6443}}),
            "spec.controlPlaneEndpoint.host",
            "empty host",
        ),
        (
            "DockerCluster",
            json!({"controlPlaneEndpoint": {"host": long, "port": 6443}}),
            "spec.controlPlaneEndpoint.host",
            "host longer than 512",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": [{"name": "fd2"}, {"name": "fd1"}]}),
            "spec.failureDomains",
            "failure domains not sorted",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": [{"name": "fd1"}, {"name": "fd1"}]}),
            "spec.failureDomains[1]",
            "duplicate failure domain",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": [{"controlPlane": true}]}),
            "spec.failureDomains[0].name",
            "failure domain without name",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": []}),
            "spec.failureDomains",
            "empty failure domain list",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": [{"name": "x".repeat(257)}]}),
            "spec.failureDomains[0].name",
            "failure domain name too long",
        ),
        (
            "DockerCluster",
            json!({"failureDomains": [{"name": "fd1", "attributes": {"rack": 3}}]}),
            "spec.failureDomains[0].attributes.rack",
            "non-string attribute",
        ),
        (
            "DockerCluster",
            json!({"loadBalancer": {"imageTag": ["v1"]}}),
            "spec.loadBalancer.imageTag",
            "image tag not a string",
        ),
        (
            "DockerMachine",
            json!({"extraMounts": [{"containerPath": "var/lib", "hostPath": "/srv"}]}),
            "spec.extraMounts[0].containerPath",
            "relative container path",
        ),
        (
            "DockerMachine",
            json!({"extraMounts": [{"containerPath": "/data", "hostPath": "srv/data"}]}),
            "spec.extraMounts[0].hostPath",
            "relative host path",
        ),
        (
            "DockerMachine",
            json!({"extraMounts": [{"containerPath": "/data", "hostPath": "/srv", "readOnly": "yes"}]}),
            "spec.extraMounts[0].readOnly",
            "readOnly not a boolean",
        ),
        (
            "DockerMachine",
            json!({"bootstrapTimeout": "5 minutes"}),
            "spec.bootstrapTimeout",
            "duration with words",
        ),
        (
            "DockerMachine",
            json!({"bootstrapTimeout": "300"}),
            "spec.bootstrapTimeout",
            "duration without unit",
        ),
        (
            "DockerMachine",
            json!({"bootstrapTimeout": "-5m"}),
            "spec.bootstrapTimeout",
            "negative duration",
        ),
        (
            "DockerMachine",
            json!({"providerID": ""}),
            "spec.providerID",
            "empty providerID",
        ),
        (
            "DockerMachine",
            json!({"preLoadImages": "kindest/node:v1.36.0"}),
            "spec.preLoadImages",
            "preLoadImages not a list",
        ),
        (
            "DockerMachineTemplate",
            json!({}),
            "spec.template",
            "template missing",
        ),
        (
            "DockerMachineTemplate",
            machine_template(
                json!({"extraMounts": [{"containerPath": "data", "hostPath": "/srv"}]}),
            ),
            "spec.template.spec.extraMounts[0].containerPath",
            "template: relative container path",
        ),
        (
            "DockerMachineTemplate",
            machine_template(json!({"bootstrapTimeout": "soon"})),
            "spec.template.spec.bootstrapTimeout",
            "template: bad duration",
        ),
        (
            "DockerClusterTemplate",
            json!({"template": {"metadata": {}}}),
            "spec.template.spec",
            "template spec missing",
        ),
        (
            "DockerClusterTemplate",
            cluster_template(json!({"failureDomains": [{"name": "b"}, {"name": "a"}]})),
            "spec.template.spec.failureDomains",
            "template: unsorted failure domains",
        ),
        (
            "DockerClusterTemplate",
            cluster_template(json!({"controlPlaneEndpoint": {"host": "h", "port": 70000}})),
            "spec.template.spec.controlPlaneEndpoint.port",
            "template: port out of range",
        ),
    ]
}

fn api_for(client: &Client, ns: &str, kind: &str) -> Api<kube::api::DynamicObject> {
    match kind {
        "DockerCluster" => dynamic::<DockerCluster>(client, ns),
        "DockerMachine" => dynamic::<DockerMachine>(client, ns),
        "DockerClusterTemplate" => dynamic::<DockerClusterTemplate>(client, ns),
        "DockerMachineTemplate" => dynamic::<DockerMachineTemplate>(client, ns),
        other => panic!("unknown kind {other}"),
    }
}

#[tokio::test]
async fn invalid_objects_are_rejected_naming_the_field() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-invalid", |client, ns| async move {
        let cases = invalid_cases();
        assert!(cases.len() >= 20);
        for (i, (kind, spec, field, what)) in cases.into_iter().enumerate() {
            let api = api_for(&client, &ns, kind);
            let result = api
                .create(
                    &PostParams::default(),
                    &object(obj(kind, &format!("bad-{i}"), spec)),
                )
                .await;
            assert_invalid(result, field, &format!("{kind}: {what}"));
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn invalid_status_is_rejected_naming_the_field() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-status", |client, ns| async move {
        let machines = api_for(&client, &ns, "DockerMachine");
        machines
            .create(
                &PostParams::default(),
                &object(obj("DockerMachine", "m", json!({}))),
            )
            .await?;
        let pp = PatchParams::default();
        let bad_condition = json!({"status": {"conditions": [{
            "type": "Ready", "status": "Maybe", "reason": "Ready", "message": "",
            "lastTransitionTime": "2026-01-02T03:04:05Z"}]}});
        assert_invalid(
            machines
                .patch_status("m", &pp, &Patch::Merge(&bad_condition))
                .await,
            "status.conditions[0].status",
            "condition status outside True/False/Unknown",
        );
        let bad_address =
            json!({"status": {"addresses": [{"type": "PublicIP", "address": "1.2.3.4"}]}});
        assert_invalid(
            machines
                .patch_status("m", &pp, &Patch::Merge(&bad_address))
                .await,
            "status.addresses[0].type",
            "unknown address type",
        );
        let bad_reason = json!({"status": {"conditions": [{
            "type": "Ready", "status": "True", "reason": "not camel case!", "message": "",
            "lastTransitionTime": "2026-01-02T03:04:05Z"}]}});
        assert_invalid(
            machines
                .patch_status("m", &pp, &Patch::Merge(&bad_reason))
                .await,
            "status.conditions[0].reason",
            "condition reason with spaces",
        );
        Ok(())
    })
    .await
}

/// Objects as CAPD's examples, templates and controllers write them are accepted and read
/// back as written.
#[tokio::test]
async fn capd_style_objects_are_accepted_and_read_back_equal() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-valid", |client, ns| async move {
        let pp = PostParams::default();

        // examples/simple-cluster.yaml writes a DockerCluster with no spec at all.
        let clusters = api_for(&client, &ns, "DockerCluster");
        clusters
            .create(&pp, &object(json!({"apiVersion": API_VERSION, "kind": "DockerCluster", "metadata": {"name": "bare"}})))
            .await?;
        let typed: Api<DockerCluster> = Api::namespaced(client.clone(), &ns);
        assert_eq!(typed.get("bare").await?.spec, DockerClusterSpec::default());

        // A full spec, read back unchanged.
        let full = json!({
            "controlPlaneEndpoint": {"host": "172.18.0.3", "port": 6443},
            "failureDomains": [
                {"name": "fd1", "controlPlane": true},
                {"name": "fd2", "controlPlane": false, "attributes": {"rack": "r2"}}
            ],
            "loadBalancer": {
                "imageRepository": "kindest", "imageTag": "v20230606-42a2262b",
                "customHAProxyConfigTemplateRef": {"name": "my-haproxy-config"}
            }
        });
        clusters.create(&pp, &object(obj("DockerCluster", "full", full.clone()))).await?;
        let want: DockerClusterSpec = serde_json::from_value(full)?;
        assert_eq!(typed.get("full").await?.spec, want);

        // The status a controller writes survives the status subresource unchanged.
        let status = json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                            "lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": 1}],
            "initialization": {"provisioned": true},
            "ready": true,
            "failureDomains": [{"name": "fd1", "controlPlane": true}],
            "deprecated": {"v1beta1": {"conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}
        });
        let written = typed
            .patch_status("full", &PatchParams::default(), &Patch::Merge(&json!({"status": status})))
            .await?;
        assert_eq!(serde_json::to_value(written.status.as_ref().unwrap())?, status);
        assert!(typed.get("full").await?.is_provisioned());

        // CAPD's defaults: port 6443 when only a host is given, controlPlane false.
        clusters
            .create(&pp, &object(obj("DockerCluster", "defaults", json!({
                "controlPlaneEndpoint": {"host": "10.0.0.1"},
                "failureDomains": [{"name": "fd1"}]}))))
            .await?;
        let defaulted = typed.get("defaults").await?.spec;
        assert_eq!(defaulted.control_plane_endpoint.port, 6443);
        assert_eq!(defaulted.failure_domains[0].control_plane, Some(false));
        // ... and the port-only endpoint CAPD's webhook writes into every DockerCluster.
        clusters
            .create(&pp, &object(obj("DockerCluster", "capd-default", json!({"controlPlaneEndpoint": {"port": 6443}}))))
            .await?;
        // ... and any port without a host (the load balancer's frontend port), as CAPD.
        clusters
            .create(&pp, &object(obj("DockerCluster", "port-only", json!({"controlPlaneEndpoint": {"port": 7777}}))))
            .await?;

        // A DockerMachine as the Machine controller creates it from a template, every field set.
        let machine_spec = json!({
            "providerID": "docker:////my-cluster-md-0-abcde",
            "customImage": "kindest/node:v1.36.0",
            "preLoadImages": ["registry.k8s.io/pause:3.10"],
            "extraMounts": [
                {"containerPath": "/var/run/docker.sock", "hostPath": "/var/run/docker.sock"},
                {"containerPath": "/data", "hostPath": "/srv/data", "readOnly": true}
            ],
            "bootstrapTimeout": "1h30m"
        });
        let machines: Api<DockerMachine> = Api::namespaced(client.clone(), &ns);
        api_for(&client, &ns, "DockerMachine")
            .create(&pp, &object(obj("DockerMachine", "m", machine_spec.clone())))
            .await?;
        let want: DockerMachineSpec = serde_json::from_value(machine_spec)?;
        assert_eq!(machines.get("m").await?.spec, want);
        for (i, timeout) in ["5m", "90s", "1.5h", "250ms", "0", "2h45m30s"].iter().enumerate() {
            api_for(&client, &ns, "DockerMachine")
                .create(&pp, &object(obj("DockerMachine", &format!("t{i}"), json!({"bootstrapTimeout": timeout}))))
                .await
                .map_err(|e| anyhow::anyhow!("bootstrapTimeout {timeout} rejected: {e}"))?;
        }

        // Templates as CAPD's examples and the ClusterClass docs write them.
        let dmt = json!({"template": {"spec": {"extraMounts": [
            {"containerPath": "/var/run/docker.sock", "hostPath": "/var/run/docker.sock"}]}}});
        api_for(&client, &ns, "DockerMachineTemplate")
            .create(&pp, &object(obj("DockerMachineTemplate", "controlplane", dmt.clone())))
            .await?;
        let templates: Api<DockerMachineTemplate> = Api::namespaced(client.clone(), &ns);
        assert_eq!(serde_json::to_value(&templates.get("controlplane").await?.spec)?, dmt);

        let dct = json!({"template": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            "spec": {"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 6443},
                     "failureDomains": [{"name": "fd1", "controlPlane": true}]}}});
        api_for(&client, &ns, "DockerClusterTemplate")
            .create(&pp, &object(obj("DockerClusterTemplate", "quick-start", dct.clone())))
            .await?;
        let cluster_templates: Api<DockerClusterTemplate> = Api::namespaced(client.clone(), &ns);
        assert_eq!(serde_json::to_value(&cluster_templates.get("quick-start").await?.spec)?, dct);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn custom_image_is_immutable_on_machines() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-image", |client, ns| async move {
        let api = api_for(&client, &ns, "DockerMachine");
        let pp = PostParams::default();
        api.create(
            &pp,
            &object(obj(
                "DockerMachine",
                "with",
                json!({"customImage": "kindest/node:v1.35.0"}),
            )),
        )
        .await?;
        api.create(&pp, &object(obj("DockerMachine", "without", json!({}))))
            .await?;
        let merge = PatchParams::default();

        let change = json!({"spec": {"customImage": "kindest/node:v1.36.0"}});
        assert_invalid(
            api.patch("with", &merge, &Patch::Merge(&change)).await,
            "spec.customImage",
            "changing customImage",
        );
        let unset = json!({"spec": {"customImage": null}});
        assert_invalid(
            api.patch("with", &merge, &Patch::Merge(&unset)).await,
            "spec.customImage",
            "unsetting customImage",
        );
        assert_invalid(
            api.patch("without", &merge, &Patch::Merge(&change)).await,
            "spec.customImage",
            "setting customImage later",
        );

        // Other fields stay mutable (the controller sets providerID after creation).
        let provider = json!({"spec": {"providerID": "docker:////with"}});
        api.patch("with", &merge, &Patch::Merge(&provider)).await?;
        Ok(())
    })
    .await
}

/// Patches `spec.template.spec.customImage` of a DockerMachineTemplate until the admission
/// policy refuses (a freshly created binding takes a moment to reach the admission plugin).
async fn wait_for_template_policy(client: &Client, ns: &str) -> Result<()> {
    api_for(client, ns, "DockerMachineTemplate")
        .create(
            &PostParams::default(),
            &object(obj(
                "DockerMachineTemplate",
                "probe",
                machine_template(json!({})),
            )),
        )
        .await?;
    let mut attempt = 0u32;
    poll_until(
        "template immutability policy active",
        Duration::from_secs(60),
        || {
            attempt += 1;
            let api = api_for(client, ns, "DockerMachineTemplate");
            let patch = machine_template(json!({"customImage": format!("probe:{attempt}")}));
            async move {
                match api
                    .patch(
                        "probe",
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"spec": patch})),
                    )
                    .await
                {
                    Err(kube::Error::Api(s))
                        if s.message.contains("spec.template.spec is immutable") =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(format!("unexpected error {e}")),
                    Ok(_) => Err("spec change still accepted".to_string()),
                }
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn template_spec_is_immutable_except_for_topology_dry_runs() -> Result<()> {
    let client = client().await?;
    install(&client).await?;
    in_namespace(&client, "api-tmpl", |client, ns| async move {
        wait_for_template_policy(&client, &ns).await?;
        let pp = PostParams::default();
        let api = api_for(&client, &ns, "DockerMachineTemplate");
        api.create(
            &pp,
            &object(obj(
                "DockerMachineTemplate",
                "md-0",
                machine_template(json!({"customImage": "kindest/node:v1.35.0"})),
            )),
        )
        .await?;
        let typed: Api<DockerMachineTemplate> = Api::namespaced(client.clone(), &ns);
        let original = typed.get("md-0").await?.spec;

        let change =
            json!({"spec": machine_template(json!({"customImage": "kindest/node:v1.36.0"}))});
        let merge = PatchParams::default();
        let dry_run = PatchParams {
            dry_run: true,
            ..Default::default()
        };
        let annotated = {
            let mut c = change.clone();
            c["metadata"] = json!({"annotations": {annotation::TOPOLOGY_DRY_RUN: ""}});
            c
        };

        // A plain spec change is refused, naming the field.
        assert_invalid(
            api.patch("md-0", &merge, &Patch::Merge(&change)).await,
            "spec.template.spec",
            "template spec change",
        );
        // The annotation alone does not unlock a real update, nor a dry-run alone.
        assert_invalid(
            api.patch("md-0", &merge, &Patch::Merge(&annotated)).await,
            "spec.template.spec",
            "annotated real update",
        );
        assert_invalid(
            api.patch("md-0", &dry_run, &Patch::Merge(&change)).await,
            "spec.template.spec",
            "dry-run without annotation",
        );

        // The topology controller's request: server-side apply, dry-run, annotated. Let through.
        let topology_apply = json!({
            "apiVersion": API_VERSION, "kind": "DockerMachineTemplate",
            "metadata": {"name": "md-0", "annotations": {annotation::TOPOLOGY_DRY_RUN: ""}},
            "spec": machine_template(json!({"customImage": "kindest/node:v1.36.0"})),
        });
        let apply_dry_run = PatchParams {
            dry_run: true,
            ..PatchParams::apply("capi-topology").force()
        };
        let answered = api
            .patch("md-0", &apply_dry_run, &Patch::Apply(&topology_apply))
            .await?;
        assert_eq!(
            answered.data["spec"]["template"]["spec"]["customImage"],
            "kindest/node:v1.36.0"
        );
        // A merge-patch dry-run with the annotation passes too.
        api.patch("md-0", &dry_run, &Patch::Merge(&annotated))
            .await?;
        // Nothing was stored.
        assert_eq!(typed.get("md-0").await?.spec, original);

        // Metadata stays mutable (Cluster API adds owner references and labels).
        api.patch(
            "md-0",
            &merge,
            &Patch::Merge(&json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await?;
        // Status is not the template's spec.
        let status = json!({"status": {"capacity": {"cpu": "2"}}});
        typed
            .patch_status("md-0", &merge, &Patch::Merge(&status))
            .await?;

        // DockerClusterTemplate: same rule.
        let clusters = api_for(&client, &ns, "DockerClusterTemplate");
        clusters
            .create(
                &pp,
                &object(obj(
                    "DockerClusterTemplate",
                    "cc",
                    cluster_template(json!({"loadBalancer": {"imageTag": "a"}})),
                )),
            )
            .await?;
        let change = json!({"spec": cluster_template(json!({"loadBalancer": {"imageTag": "b"}}))});
        assert_invalid(
            clusters.patch("cc", &merge, &Patch::Merge(&change)).await,
            "spec.template.spec",
            "cluster template spec change",
        );
        let _ = MANAGER;
        Ok(())
    })
    .await
}
