//! Owner lookups and pause rules of the Cluster API contract.

use capd_api::consts::CAPI_GROUP;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Name of the owner of `kind` (`Cluster`, `Machine`) in the Cluster API group, if set.
pub fn capi_owner(meta: &ObjectMeta, kind: &str) -> Option<String> {
    meta.owner_references.as_ref()?.iter().find_map(|o| {
        let group = o.api_version.split('/').next().unwrap_or_default();
        (o.kind == kind && group == CAPI_GROUP).then(|| o.name.clone())
    })
}

pub use capd_api::annotations::{is_externally_managed, is_paused};

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn owner(api_version: &str, kind: &str, name: &str) -> OwnerReference {
        OwnerReference { api_version: api_version.into(), kind: kind.into(), name: name.into(), uid: "u".into(), ..Default::default() }
    }

    #[test]
    fn finds_owner_of_capi_group_only() {
        let meta = ObjectMeta {
            owner_references: Some(vec![owner("example.com/v1", "Cluster", "other"), owner("cluster.x-k8s.io/v1beta2", "Cluster", "c1")]),
            ..Default::default()
        };
        assert_eq!(capi_owner(&meta, "Cluster").as_deref(), Some("c1"));
        assert_eq!(capi_owner(&meta, "Machine"), None);
        assert_eq!(capi_owner(&ObjectMeta::default(), "Cluster"), None);
    }
}
