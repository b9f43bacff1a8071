//! The conversion webhook: the API server sends ConversionReviews to `/convert` when an
//! object is read or written in a version other than the stored one (v1beta1 ⇄ v1beta2).
//! The conversion itself is `capd_api::conversion` (pure, tested there); here are the HTTP
//! side and the CRDs' pointer to it.

use crate::http::{self, Reply};
use anyhow::{Context as _, Result};
use base64::Engine as _;
use hyper::StatusCode;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::Status;
use serde_json::{json, Value};
use std::sync::Arc;
use tracing::{info, warn};

pub fn handler() -> Arc<http::Handler> {
    http::handler(|req| async move {
        if req.uri().path() != "/convert" {
            return http::reply(StatusCode::NOT_FOUND, "text/plain", "not found");
        }
        match http::body(req).await {
            Ok(body) => answer(&body),
            Err(e) => http::reply(StatusCode::BAD_REQUEST, "text/plain", e),
        }
    })
}

fn answer(body: &[u8]) -> Reply {
    let review: ConversionReview = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return http::reply(
                StatusCode::BAD_REQUEST,
                "text/plain",
                format!("not a ConversionReview: {e}"),
            )
        }
    };
    let response = match ConversionRequest::from_review(review) {
        Ok(request) => convert(request),
        Err(_) => {
            ConversionResponse::invalid(failure("the ConversionReview has no request".into()))
        }
    };
    match serde_json::to_vec(&response.into_review()) {
        Ok(out) => http::reply(StatusCode::OK, "application/json", out),
        Err(e) => http::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("encoding the ConversionReview: {e}"),
        ),
    }
}

/// All objects or none: the API server takes a failure for the whole request.
pub fn convert(request: ConversionRequest) -> ConversionResponse {
    let desired = request.desired_api_version.clone();
    let objects = request.objects.clone();
    let response = ConversionResponse::for_request(request);
    let mut converted = Vec::with_capacity(objects.len());
    for object in objects {
        let name = describe(&object);
        match capd_api::conversion::convert(object, &desired) {
            Ok(o) => converted.push(o),
            Err(e) => {
                warn!(object = %name, to = %desired, error = %e, "conversion refused");
                return response.failure(failure(format!("converting {name} to {desired}: {e}")));
            }
        }
    }
    response.success(converted)
}

fn describe(o: &Value) -> String {
    let m = &o["metadata"];
    format!(
        "{} {}/{}",
        o["kind"].as_str().unwrap_or("object"),
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or("")
    )
}

fn failure(message: String) -> Status {
    Status::failure(&message, "Invalid").with_code(422)
}

/// Where the API server reaches the webhook.
pub enum Endpoint<'a> {
    /// The in-cluster Service (manifests/webhook).
    Service { namespace: &'a str },
    /// `--webhook-url`: a manager running outside the cluster.
    Url(&'a str),
}

/// Points every CRD of ours at this manager's webhook and trusts `ca_pem` for it. Only
/// when the manager issued its own certificate: with cert-manager, its CA injector owns
/// caBundle and the installed manifests own the rest.
pub async fn wire_crds(
    client: &kube::Client,
    endpoint: Endpoint<'_>,
    ca_pem: &str,
) -> Result<usize> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Only the CRDs that serve two versions (CAPD has no v1beta1 DevMachinePool[Template]).
    let names: Vec<String> = capd_api::crd::all()?
        .into_iter()
        .filter(|c| c.spec.versions.len() > 1)
        .filter_map(|c| c.metadata.name)
        .collect();
    let patch = Patch::Merge(conversion_patch(&endpoint, ca_pem)?);
    for name in &names {
        crds.patch(name, &PatchParams::default(), &patch)
            .await
            .with_context(|| format!("pointing CustomResourceDefinition {name} at the conversion webhook (needs patch on customresourcedefinitions)"))?;
    }
    info!(
        crds = names.len(),
        "CRDs point at this manager's conversion webhook"
    );
    Ok(names.len())
}

/// The CRDs' own conversion stanza (capd_api::crd), with this manager's CA and, for
/// `--webhook-url`, the URL instead of the Service (`null` removes the other in a merge patch).
fn conversion_patch(endpoint: &Endpoint<'_>, ca_pem: &str) -> Result<Value> {
    let namespace = match endpoint {
        Endpoint::Service { namespace } => namespace,
        Endpoint::Url(_) => capd_api::crd::WEBHOOK_NAMESPACE,
    };
    let mut conversion = serde_json::to_value(capd_api::crd::conversion_webhook(namespace))
        .context("encoding the conversion stanza")?;
    let cc = &mut conversion["webhook"]["clientConfig"];
    cc["caBundle"] = json!(base64::engine::general_purpose::STANDARD.encode(ca_pem));
    match endpoint {
        Endpoint::Url(url) => {
            cc["url"] = json!(format!("{}/convert", url.trim_end_matches('/')));
            cc["service"] = Value::Null;
        }
        Endpoint::Service { .. } => cc["url"] = Value::Null,
    }
    Ok(json!({"spec": {"conversion": conversion}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_name_either_the_service_or_the_url_never_both() {
        let p = conversion_patch(&Endpoint::Url("https://127.0.0.1:9443/"), "PEM").unwrap();
        let cc = &p["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(cc["url"], "https://127.0.0.1:9443/convert");
        assert!(
            cc["service"].is_null() && cc.as_object().unwrap().contains_key("service"),
            "merge patch must remove the service"
        );
        assert_eq!(
            cc["caBundle"],
            base64::engine::general_purpose::STANDARD.encode("PEM")
        );
        let p = conversion_patch(
            &Endpoint::Service {
                namespace: "capd-system",
            },
            "PEM",
        )
        .unwrap();
        let cc = &p["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(cc["service"]["namespace"], "capd-system");
        assert_eq!(cc["service"]["name"], "capd-webhook-service");
        assert!(cc["url"].is_null());
    }

    #[test]
    fn a_review_that_is_not_one_is_a_bad_request() {
        assert_eq!(answer(b"{").status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_failed_conversion_fails_the_whole_review_naming_the_object() {
        let review: ConversionReview = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u1", "desiredAPIVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "objects": [
                {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "NoSuchKind", "metadata": {"name": "x", "namespace": "ns"}}
            ]}
        }))
        .unwrap();
        let out = convert(ConversionRequest::from_review(review).unwrap()).into_review();
        let v = serde_json::to_value(out).unwrap();
        assert_eq!(v["response"]["uid"], "u1");
        assert_eq!(v["response"]["result"]["status"], "Failure");
        let msg = v["response"]["result"]["message"].as_str().unwrap();
        assert!(msg.contains("NoSuchKind ns/x"), "{msg}");
    }
}
