//! Template immutability as a ValidatingAdmissionPolicy.
//!
//! CAPD's webhooks reject any change of `spec.template.spec` of a Docker/Dev ClusterTemplate or
//! MachineTemplate, except the server-side-apply dry-runs the ClusterClass topology
//! controller sends, which carry the `topology.cluster.x-k8s.io/dry-run` annotation. A CRD's
//! CEL rules cannot read `metadata.annotations` nor know a request is a dry-run; an admission
//! policy can, and needs no webhook server.

use crate::consts::{annotation, label, GROUP};
use serde_json::{json, Value};

// Built as JSON rather than k8s-openapi structs: their shape (Option or not) changes with the
// Kubernetes version feature the final binary picks, and this library must build with any.

/// Name of the policy and of its binding.
pub const TEMPLATE_IMMUTABILITY: &str =
    "capd-template-spec-immutability.infrastructure.cluster.x-k8s.io";

/// Plural resource names the policy guards.
pub const TEMPLATE_RESOURCES: [&str; 4] = [
    "dockerclustertemplates",
    "dockermachinetemplates",
    "devclustertemplates",
    "devmachinetemplates",
];

fn metadata() -> Value {
    json!({
        "name": TEMPLATE_IMMUTABILITY,
        "labels": { label::PROVIDER: label::PROVIDER_VALUE },
    })
}

/// CEL: the request is a topology dry-run (both a dry-run and the annotation, as CAPD's
/// `topology.IsDryRunRequest`: the annotation alone must not unlock a real update).
pub fn topology_dry_run_expression() -> String {
    format!(
        "request.dryRun == true && has(object.metadata.annotations) && '{}' in object.metadata.annotations",
        annotation::TOPOLOGY_DRY_RUN
    )
}

/// The policy (`admissionregistration.k8s.io/v1`): on UPDATE of a template that is not a
/// topology dry-run, `spec.template.spec` must equal the stored one. Status updates
/// (`dockermachinetemplates/status`) are not matched.
pub fn template_immutability_policy() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": metadata(),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": [GROUP],
                    "apiVersions": ["*"],
                    "operations": ["UPDATE"],
                    "resources": TEMPLATE_RESOURCES,
                    "scope": "Namespaced",
                }],
            },
            "matchConditions": [{
                "name": "not-a-topology-dry-run",
                "expression": format!("!({})", topology_dry_run_expression()),
            }],
            "validations": [{
                "expression": "object.spec.template.spec == oldObject.spec.template.spec",
                "message": "spec.template.spec is immutable, create a new template instead",
                "messageExpression": "object.kind + ' ' + object.metadata.name + ': spec.template.spec is immutable, create a new template instead'",
                "reason": "Invalid",
            }],
        },
    })
}

/// Binds the policy cluster-wide, denying violations.
pub fn template_immutability_binding() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": metadata(),
        "spec": {
            "policyName": TEMPLATE_IMMUTABILITY,
            "validationActions": ["Deny"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };

    #[test]
    fn policy_guards_the_templates_on_update_only() {
        // Also proves the JSON has the shape of the real type (unknown fields would be lost).
        let p: ValidatingAdmissionPolicy =
            serde_json::from_value(template_immutability_policy()).unwrap();
        let spec = p.spec.unwrap();
        let rules = spec.match_constraints.unwrap().resource_rules.unwrap();
        assert_eq!(
            rules[0].operations.as_deref(),
            Some(&["UPDATE".to_string()][..])
        );
        assert_eq!(
            rules[0].resources.as_ref().unwrap(),
            &[
                "dockerclustertemplates",
                "dockermachinetemplates",
                "devclustertemplates",
                "devmachinetemplates"
            ]
            .map(String::from)
            .to_vec()
        );
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let validation = &spec.validations.unwrap()[0];
        assert_eq!(
            validation.expression,
            "object.spec.template.spec == oldObject.spec.template.spec"
        );
        assert!(validation
            .message_expression
            .as_ref()
            .unwrap()
            .contains("spec.template.spec"));
    }

    #[test]
    fn dry_run_escape_needs_dry_run_and_annotation() {
        let expr = topology_dry_run_expression();
        assert!(expr.contains("request.dryRun == true"), "{expr}");
        assert!(
            expr.contains("'topology.cluster.x-k8s.io/dry-run' in object.metadata.annotations"),
            "{expr}"
        );
        let policy = template_immutability_policy();
        assert_eq!(
            policy["spec"]["matchConditions"][0]["expression"],
            format!("!({expr})")
        );
    }

    #[test]
    fn binding_denies_through_the_policy() {
        let b: ValidatingAdmissionPolicyBinding =
            serde_json::from_value(template_immutability_binding()).unwrap();
        assert_eq!(b.spec.policy_name, TEMPLATE_IMMUTABILITY);
        assert_eq!(b.spec.validation_actions, vec!["Deny".to_string()]);
    }
}
