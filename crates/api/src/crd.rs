//! The CustomResourceDefinitions, as kube derives them plus what the derive cannot say:
//! Cluster API contract and clusterctl labels, CAPD's optional `spec`, and no `nullable`.
//!
//! Every CRD serves the versions CAPD v1.14 serves: v1beta2, stored, and (for the ten kinds
//! that have one) the deprecated v1beta1 of [`crate::v1beta1`], in CAPD's order (v1beta1 first).

use crate::consts::label;
use crate::dev::{DevCluster, DevClusterTemplate, DevMachine, DevMachineTemplate};
use crate::machine_pool::{
    DevMachinePool, DevMachinePoolTemplate, DockerMachinePool, DockerMachinePoolTemplate,
};
use crate::v1beta1;
use crate::{DockerCluster, DockerClusterTemplate, DockerMachine, DockerMachineTemplate, Error};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, ServiceReference,
    WebhookClientConfig, WebhookConversion,
};
use kube::core::crd::merge_crds;
use kube::CustomResourceExt;
use serde_json::{json, Value};

/// The version the API server stores; every other served version is converted to it.
pub const STORAGE_VERSION: &str = "v1beta2";

/// Labels every CRD carries.
///
/// - `cluster.x-k8s.io/<contract>: <our version>`: Cluster API picks the version of our kinds
///   to use for a contract through it. As CAPD: v1beta1 for the v1beta1 contract (the
///   topology controller reads it to learn the contract of v1beta1 objects referenced from
///   ClusterClasses), v1beta2 for the v1beta2 contract.
/// - `clusterctl.cluster.x-k8s.io`: `clusterctl move` discovers kinds through it (clusterctl
///   adds it on `init`; set here so a plain `kubectl apply` install moves too).
/// - `cluster.x-k8s.io/provider`: which provider the component belongs to, as clusterctl sets.
///
/// Not `clusterctl.cluster.x-k8s.io/move`: that would move every object of a kind even
/// outside a Cluster's owner chain; CAPD does not set it, our objects move with their Cluster.
pub fn crd_labels() -> [(&'static str, &'static str); 4] {
    [
        (label::CONTRACT_V1BETA1, "v1beta1"),
        (label::CONTRACT_V1BETA2, "v1beta2"),
        (label::CLUSTERCTL, ""),
        (label::PROVIDER, label::PROVIDER_VALUE),
    ]
}

/// Every CRD of the provider, in a fixed order.
///
/// A kind's `spec` presence is the same in both versions: a v1beta1 object is stored as v1beta2,
/// so one without the spec v1beta2 requires must be refused in v1beta1 too.
pub fn all() -> Result<Vec<CustomResourceDefinition>, Error> {
    use SpecPresence::{Optional, Required};
    Ok(vec![
        finish(
            both(v1beta1::DockerCluster::crd(), DockerCluster::crd()),
            Optional,
        )?,
        finish(
            both(
                v1beta1::DockerClusterTemplate::crd(),
                DockerClusterTemplate::crd(),
            ),
            Required,
        )?,
        finish(
            both(v1beta1::DockerMachine::crd(), DockerMachine::crd()),
            Optional,
        )?,
        finish(
            both(
                v1beta1::DockerMachineTemplate::crd(),
                DockerMachineTemplate::crd(),
            ),
            Required,
        )?,
        // Dev*: `spec.backend` is required, so no defaulted `{}` spec (it would not validate).
        finish(
            both(v1beta1::DevCluster::crd(), DevCluster::crd()),
            Required,
        )?,
        finish(
            both(
                v1beta1::DevClusterTemplate::crd(),
                DevClusterTemplate::crd(),
            ),
            Required,
        )?,
        finish(
            both(v1beta1::DevMachine::crd(), DevMachine::crd()),
            Required,
        )?,
        finish(
            both(
                v1beta1::DevMachineTemplate::crd(),
                DevMachineTemplate::crd(),
            ),
            Required,
        )?,
        // MachinePools: CAPD's spec is optional with no required field inside.
        finish(
            both(v1beta1::DockerMachinePool::crd(), DockerMachinePool::crd()),
            Optional,
        )?,
        finish(
            both(
                v1beta1::DockerMachinePoolTemplate::crd(),
                DockerMachinePoolTemplate::crd(),
            ),
            Required,
        )?,
        // CAPD has no v1beta1 of these two.
        finish(DevMachinePool::crd(), Optional)?,
        finish(DevMachinePoolTemplate::crd(), Required)?,
    ])
}

/// One CRD serving both versions, v1beta2 stored, versions in CAPD's order.
///
/// Both derives name the same kind in the same group and scope, one version each, so the
/// merge cannot fail; `merge_crds` keeps v1beta2's `names`, and a test checks v1beta1's are
/// the same.
fn both(
    v1beta1: CustomResourceDefinition,
    v1beta2: CustomResourceDefinition,
) -> CustomResourceDefinition {
    let mut crd = merge_crds(vec![v1beta1, v1beta2], STORAGE_VERSION).expect(
        "derived CRDs of one kind have one version each and the same group, kind and scope",
    );
    crd.spec.versions.sort_by(|a, b| a.name.cmp(&b.name));
    crd.spec.conversion = Some(conversion_webhook(WEBHOOK_NAMESPACE));
    crd
}

/// The webhook that converts between the versions: the manager's Service in `namespace`, as
/// CAPD's CRDs name theirs. Its `caBundle` is set at run time, by the manager when it issued
/// its own certificate or by cert-manager's CA injector (docs/configuration.md).
pub fn conversion_webhook(namespace: &str) -> CustomResourceConversion {
    CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            conversion_review_versions: vec!["v1".into()],
            client_config: Some(WebhookClientConfig {
                service: Some(ServiceReference {
                    name: WEBHOOK_SERVICE.into(),
                    namespace: namespace.into(),
                    path: Some("/convert".into()),
                    port: Some(443),
                }),
                ..Default::default()
            }),
        }),
    }
}

/// The conversion webhook's Service (manifests/webhook), in the namespace the components
/// install into (clusterctl rewrites it with the rest on `init --target-namespace`).
pub const WEBHOOK_SERVICE: &str = "capd-webhook-service";
pub const WEBHOOK_NAMESPACE: &str = "capd-system";

#[derive(Clone, Copy, PartialEq, Eq)]
enum SpecPresence {
    /// CAPD's `spec` has `omitempty` and its examples write DockerClusters with no spec at all.
    /// The schema defaults it to `{}` so stored objects (and our typed reads) always have one.
    Optional,
    Required,
}

fn finish(
    mut crd: CustomResourceDefinition,
    spec: SpecPresence,
) -> Result<CustomResourceDefinition, Error> {
    let labels = crd.metadata.labels.get_or_insert_with(Default::default);
    for (k, v) in crd_labels() {
        labels.insert(k.to_string(), v.to_string());
    }
    let what = crd.metadata.name.clone().unwrap_or_default();
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        let what = format!("{what} {}", version.name);
        let mut value = serde_json::to_value(&*schema).map_err(|source| Error::Json {
            what: what.clone(),
            source,
        })?;
        strip_nullable(&mut value);
        unwrap_descriptions(&mut value);
        if let Some(root) = value.as_object_mut() {
            root.remove("title"); // schemars' type name, noise in `kubectl explain`
        }
        if spec == SpecPresence::Optional {
            make_spec_optional(&mut value);
        }
        *schema =
            serde_json::from_value::<JSONSchemaProps>(value).map_err(|source| Error::Json {
                what: what.clone(),
                source,
            })?;
    }
    Ok(crd)
}

/// schemars marks every `Option` field `nullable: true`; CAPD's schema has none, and without
/// it the API server prunes an explicit `null` instead of storing it.
fn strip_nullable(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("nullable");
            map.values_mut().for_each(strip_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

/// Doc comments wrap at ~100 columns; join wrapped lines so `kubectl explain` can reflow them.
/// Blank lines (paragraphs) stay.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d
                    .split("\n\n")
                    .map(|para| para.lines().map(str::trim).collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            for (key, child) in map.iter_mut() {
                // `properties` maps field names to schemas; a field may itself be called "description".
                if key != "description" || !child.is_string() {
                    unwrap_descriptions(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

fn make_spec_optional(root: &mut Value) {
    if let Some(required) = root.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r != "spec");
        if required.is_empty() {
            if let Some(map) = root.as_object_mut() {
                map.remove("required");
            }
        }
    }
    if let Some(spec) = root
        .pointer_mut("/properties/spec")
        .and_then(Value::as_object_mut)
    {
        spec.insert("default".to_string(), json!({}));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn descriptions_are_unwrapped_but_keep_paragraphs() {
        let mut v = json!({"description": "one\ntwo\n\nthree", "properties": {"description": {"description": "a\nb"}}});
        unwrap_descriptions(&mut v);
        assert_eq!(v["description"], "one two\n\nthree");
        assert_eq!(v["properties"]["description"]["description"], "a b");
    }
}
