//! What cert-manager does for Cluster API's components, done by the suite: these machines
//! cannot build cert-manager's images (no registry, and its release manifest is a Helm
//! rendering), and this provider itself needs no cert-manager.
//!
//! Cluster API's core, kubeadm bootstrap and kubeadm control-plane components each ship a
//! self-signed `Issuer` and a `Certificate` naming a Secret that their Deployment mounts,
//! and annotate their CRDs and webhook configurations with
//! `cert-manager.io/inject-ca-from: <namespace>/<certificate>`. [`issue_pending`] does
//! both halves once: a Secret (CA, serving certificate for the Certificate's `dnsNames`,
//! key) for every Certificate whose Secret is missing (cert-manager's controller), and
//! that CA in the `caBundle` of every annotated object (its cainjector). Run in a loop
//! while `clusterctl init` installs the components.

use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::ByteString;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// cert-manager's annotation naming the Certificate whose CA goes into a caBundle.
pub const INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

fn certificates() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    )
}

/// A CA and a serving certificate for `dns_names`, signed by it: (ca, cert, key) PEM.
pub fn issue(common_name: &str, dns_names: &[String]) -> Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("{common_name}-ca"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(dns_names.to_vec())
        .with_context(|| format!("{common_name}: dnsNames {dns_names:?}"))?;
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &issuer)?;
    Ok((ca_pem, cert.pem(), key.serialize_pem()))
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub secrets_created: usize,
    pub bundles_injected: usize,
}

/// One pass: a Secret for every Certificate without one, then every annotated CRD and
/// webhook configuration given its Certificate's CA.
pub async fn issue_pending(client: &kube::Client) -> Result<Pass> {
    let mut pass = Pass::default();
    let certs: Api<DynamicObject> = Api::all_with(client.clone(), &certificates());
    // No cert-manager CRDs yet: nothing to do.
    let Ok(list) = certs.list(&ListParams::default()).await else {
        return Ok(pass);
    };
    // (namespace/certificate) -> CA PEM
    let mut cas: BTreeMap<String, String> = BTreeMap::new();
    for c in list.items {
        let ns = c.metadata.namespace.clone().unwrap_or_default();
        let name = c.metadata.name.clone().unwrap_or_default();
        let Some(secret_name) = c.data["spec"]["secretName"].as_str() else {
            continue;
        };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        let ca = match secrets.get_opt(secret_name).await? {
            Some(s) => s
                .data
                .and_then(|d| d.get("ca.crt").map(|b| b.0.clone()))
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            None => {
                let dns: Vec<String> = c.data["spec"]["dnsNames"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let (ca, cert, key) =
                    issue(&name, &dns).with_context(|| format!("Certificate {ns}/{name}"))?;
                let data: BTreeMap<String, ByteString> =
                    [("ca.crt", &ca), ("tls.crt", &cert), ("tls.key", &key)]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                        .collect();
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(secret_name.to_string()),
                        namespace: Some(ns.clone()),
                        annotations: Some(
                            [("cert-manager.io/certificate-name".to_string(), name.clone())].into(),
                        ),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(data),
                    ..Default::default()
                };
                match secrets.create(&PostParams::default(), &secret).await {
                    Ok(_) => pass.secrets_created += 1,
                    // Another pass made it first: use that one.
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(anyhow!(e).context(format!("Secret {ns}/{secret_name}"))),
                }
                Some(ca)
            }
        };
        if let Some(ca) = ca {
            cas.insert(format!("{ns}/{name}"), ca);
        }
    }
    pass.bundles_injected = inject(client, &cas).await?;
    Ok(pass)
}

/// The caBundle patch for an annotated object whose bundle differs from `ca`, if any.
/// `paths` are the JSON pointers of its clientConfig objects.
fn bundle_patch(obj: &Value, paths: &[String], ca: &str) -> Option<json_patch::Patch> {
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca);
    let ops: Vec<json_patch::PatchOperation> = paths
        .iter()
        .filter(|p| {
            obj.pointer(&format!("{p}/caBundle"))
                .and_then(Value::as_str)
                != Some(&bundle)
        })
        .filter_map(|p| {
            serde_json::from_value(
                json!({"op": "add", "path": format!("{p}/caBundle"), "value": bundle}),
            )
            .ok()
        })
        .collect();
    (!ops.is_empty()).then_some(json_patch::Patch(ops))
}

/// Puts each annotated object's CA into its caBundle(s); returns how many it patched.
async fn inject(client: &kube::Client, cas: &BTreeMap<String, String>) -> Result<usize> {
    let mut patched = 0;
    let pp = PatchParams::default();
    let ca_for = |annotations: Option<&BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get(INJECT_CA_FROM))
            .and_then(|from| cas.get(from))
    };

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds.list(&ListParams::default()).await? {
        let Some(ca) = ca_for(crd.metadata.annotations.as_ref()) else {
            continue;
        };
        let obj = serde_json::to_value(&crd)?;
        if obj
            .pointer("/spec/conversion/webhook/clientConfig")
            .is_none()
        {
            continue;
        }
        let paths = ["/spec/conversion/webhook/clientConfig".to_string()];
        if let Some(p) = bundle_patch(&obj, &paths, ca) {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &pp, &Patch::<()>::Json(p))
                .await
                .with_context(|| format!("CRD {name}: caBundle"))?;
            patched += 1;
        }
    }

    macro_rules! webhooks {
        ($kind:ty) => {
            let api: Api<$kind> = Api::all(client.clone());
            for w in api.list(&ListParams::default()).await? {
                let Some(ca) = ca_for(w.metadata.annotations.as_ref()) else {
                    continue;
                };
                let obj = serde_json::to_value(&w)?;
                let n = w.webhooks.as_ref().map(Vec::len).unwrap_or(0);
                let paths: Vec<String> = (0..n)
                    .map(|i| format!("/webhooks/{i}/clientConfig"))
                    .collect();
                if let Some(p) = bundle_patch(&obj, &paths, ca) {
                    let name = w.metadata.name.clone().unwrap_or_default();
                    api.patch(&name, &pp, &Patch::<()>::Json(p))
                        .await
                        .with_context(|| format!("{} {name}: caBundle", stringify!($kind)))?;
                    patched += 1;
                }
            }
        };
    }
    webhooks!(ValidatingWebhookConfiguration);
    webhooks!(MutatingWebhookConfiguration);
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificate_names_the_dns_names_and_its_ca() {
        let (ca, cert, key) = issue(
            "capi-serving-cert",
            &["capi-webhook-service.capi-system.svc".to_string()],
        )
        .unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.contains("PRIVATE KEY"), "{key}");
        assert_ne!(ca, cert);
    }

    #[test]
    fn patches_only_bundles_that_differ() {
        let ca = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(ca);
        let obj = json!({"webhooks": [
            {"clientConfig": {"caBundle": "Cg=="}},
            {"clientConfig": {"caBundle": encoded}},
            {"clientConfig": {}},
        ]});
        let paths: Vec<String> = (0..3)
            .map(|i| format!("/webhooks/{i}/clientConfig"))
            .collect();
        let p = bundle_patch(&obj, &paths, ca).unwrap();
        let touched: Vec<String> = p.0.iter().map(|op| op.path().to_string()).collect();
        assert_eq!(
            touched,
            [
                "/webhooks/0/clientConfig/caBundle",
                "/webhooks/2/clientConfig/caBundle"
            ]
        );
        let mut patched = obj.clone();
        json_patch::patch(&mut patched, &p).unwrap();
        assert!(bundle_patch(&patched, &paths, ca).is_none());
    }
}
