//! The patch-helper guard: snapshot an object when reconcile starts; on every exit
//! path compute what the reconcile changed and write exactly that back.
//!
//! - metadata (labels, annotations, ownerReferences) and spec: one JSON merge patch
//!   carrying only the changed keys, so concurrent writers of other keys are untouched;
//! - finalizers: JSON Patch `add .../-` and `test`+`remove` by index, so a concurrent
//!   change to the list makes the patch fail (and the reconcile retry) instead of
//!   silently dropping someone else's finalizer;
//! - status: a merge patch on the status subresource, again only the changed keys
//!   (lists such as `conditions` are replaced whole: this controller owns them).

use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::fmt::Debug;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("serializing {kind} {name}: {source}")]
    Serialize {
        kind: String,
        name: String,
        source: serde_json::Error,
    },
    #[error("patching {what} of {kind} {namespace}/{name}: {source}")]
    Api {
        what: &'static str,
        kind: String,
        namespace: String,
        name: String,
        source: kube::Error,
    },
}

/// Metadata fields a reconcile may change; everything else there belongs to the server.
const OWNED_METADATA: [&str; 3] = ["labels", "annotations", "ownerReferences"];

pub struct PatchGuard<K> {
    api: Api<K>,
    before: Value,
    name: String,
    namespace: String,
    resource_version: Option<String>,
}

/// The patches a change needs; each empty when nothing of that part changed.
#[derive(Debug, Default, PartialEq)]
pub struct Patches {
    /// Finalizers to add: a server-side apply of just these (finalizers are a set, so
    /// the apply adds ours and leaves everyone else's alone, without a version guard
    /// that Cluster API's own concurrent metadata writes would keep tripping).
    pub finalizers_add: Vec<String>,
    /// JSON Patch removing ours, `test`-guarded by index.
    pub finalizers_remove: Option<Vec<Value>>,
    pub object: Option<Value>,
    pub status: Option<Value>,
}

impl Patches {
    pub fn is_empty(&self) -> bool {
        self.finalizers_add.is_empty()
            && self.finalizers_remove.is_none()
            && self.object.is_none()
            && self.status.is_none()
    }
}

/// Field manager of the provider's server-side applies.
pub const FIELD_MANAGER: &str = "capd-rs-manager";

impl<K> PatchGuard<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    pub fn new(api: Api<K>, obj: &K) -> Result<Self, PatchError> {
        let meta = obj.meta();
        let name = meta.name.clone().unwrap_or_default();
        let before = serde_json::to_value(obj).map_err(|source| PatchError::Serialize {
            kind: K::kind(&()).into_owned(),
            name: name.clone(),
            source,
        })?;
        Ok(Self {
            api,
            before,
            namespace: meta.namespace.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            name,
        })
    }

    /// Writes back what changed so far and takes `current` as the new snapshot, for a
    /// reconcile that must publish a state (e.g. `Deleting`) before it goes on.
    pub async fn checkpoint(&mut self, current: &K) -> Result<usize, PatchError> {
        let sent = self.send(current).await?;
        self.before = serde_json::to_value(current).map_err(|source| PatchError::Serialize {
            kind: K::kind(&()).into_owned(),
            name: self.name.clone(),
            source,
        })?;
        self.resource_version = None;
        Ok(sent)
    }

    /// Adds `finalizer` now, alone (a server-side apply of just it), when the snapshot does
    /// not carry it yet, and takes it into the snapshot: the first write of a reconcile,
    /// before anything exists outside the API server. Returns whether it wrote.
    pub async fn add_finalizer(&mut self, finalizer: &str) -> Result<bool, PatchError> {
        let list = self
            .before
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array);
        if list.is_some_and(|l| l.iter().any(|f| f.as_str() == Some(finalizer))) {
            return Ok(false);
        }
        let apply = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"name": self.name, "finalizers": [finalizer]},
        });
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Apply(apply),
            )
            .await
            .map_err(|source| PatchError::Api {
                what: "finalizers",
                kind: K::kind(&()).into_owned(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source,
            })?;
        if let Some(meta) = self
            .before
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            let list = meta
                .entry("finalizers")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Some(l) = list.as_array_mut() {
                l.push(Value::String(finalizer.to_string()));
            }
        }
        Ok(true)
    }

    /// Writes back what changed between the snapshot and `after`. Returns how many
    /// requests it sent (0 when nothing changed).
    pub async fn patch(self, after: &K) -> Result<usize, PatchError> {
        self.send(after).await
    }

    async fn send(&self, after: &K) -> Result<usize, PatchError> {
        let kind = K::kind(&()).into_owned();
        let after_v = serde_json::to_value(after).map_err(|source| PatchError::Serialize {
            kind: kind.clone(),
            name: self.name.clone(),
            source,
        })?;
        let patches = compute(&self.before, &after_v, self.resource_version.as_deref());
        let mut sent = 0;
        let err = |what: &'static str| {
            let (kind, namespace, name) = (kind.clone(), self.namespace.clone(), self.name.clone());
            move |source| PatchError::Api {
                what,
                kind,
                namespace,
                name,
                source,
            }
        };
        let pp = PatchParams::default();
        // Adding our finalizer goes first: nothing may exist outside without it.
        // Removing goes last: once the last finalizer is gone the object may vanish.
        if !patches.finalizers_add.is_empty() {
            let apply = json!({
                "apiVersion": K::api_version(&()),
                "kind": K::kind(&()),
                "metadata": {"name": self.name, "finalizers": patches.finalizers_add},
            });
            self.api
                .patch(
                    &self.name,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Apply(apply),
                )
                .await
                .map_err(err("finalizers"))?;
            sent += 1;
        }
        // Spec before status: readers of `status.initialization.provisioned` (Cluster API)
        // must find what it promises, e.g. `spec.providerID`, already there.
        if let Some(p) = patches.object {
            self.api
                .patch(&self.name, &pp, &Patch::Merge(p))
                .await
                .map_err(err("metadata/spec"))?;
            sent += 1;
        }
        if let Some(p) = patches.status {
            self.api
                .patch_status(&self.name, &pp, &Patch::Merge(p))
                .await
                .map_err(err("status"))?;
            sent += 1;
        }
        if let Some(ops) = patches.finalizers_remove {
            let p: json_patch::Patch =
                serde_json::from_value(Value::Array(ops)).map_err(|source| {
                    PatchError::Serialize {
                        kind: kind.clone(),
                        name: self.name.clone(),
                        source,
                    }
                })?;
            self.api
                .patch(&self.name, &pp, &Patch::Json::<()>(p))
                .await
                .map_err(err("finalizers"))?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// Computes the patches that turn `before` into `after` (pure; unit-tested).
pub fn compute(before: &Value, after: &Value, _resource_version: Option<&str>) -> Patches {
    let mut out = Patches::default();

    let empty = Value::Null;
    let bf = before.pointer("/metadata/finalizers").unwrap_or(&empty);
    let af = after.pointer("/metadata/finalizers").unwrap_or(&empty);
    if bf != af {
        let (add, remove) = finalizer_changes(bf, af);
        out.finalizers_add = add;
        out.finalizers_remove = remove;
    }

    let mut object = Map::new();
    let mut meta = Map::new();
    for key in OWNED_METADATA {
        let b = before
            .pointer(&format!("/metadata/{key}"))
            .unwrap_or(&empty);
        let a = after.pointer(&format!("/metadata/{key}")).unwrap_or(&empty);
        if let Some(d) = merge_diff(b, a) {
            meta.insert(key.to_string(), d);
        }
    }
    if !meta.is_empty() {
        object.insert("metadata".into(), Value::Object(meta));
    }
    if let Some(d) = merge_diff(
        before.get("spec").unwrap_or(&empty),
        after.get("spec").unwrap_or(&empty),
    ) {
        object.insert("spec".into(), d);
    }
    if !object.is_empty() {
        out.object = Some(Value::Object(object));
    }
    if let Some(d) = merge_diff(
        before.get("status").unwrap_or(&empty),
        after.get("status").unwrap_or(&empty),
    ) {
        out.status = Some(json!({ "status": d }));
    }
    out
}

/// RFC 7386 merge patch from `before` to `after`: changed keys only, `null` for removed
/// keys; anything that is not an object on both sides is replaced whole.
pub fn merge_diff(before: &Value, after: &Value) -> Option<Value> {
    if before == after {
        return None;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut m = Map::new();
            for (k, av) in a {
                match b.get(k) {
                    Some(bv) => {
                        if let Some(d) = merge_diff(bv, av) {
                            m.insert(k.clone(), d);
                        }
                    }
                    None => {
                        m.insert(k.clone(), av.clone());
                    }
                }
            }
            for k in b.keys() {
                if !a.contains_key(k) {
                    m.insert(k.clone(), Value::Null);
                }
            }
            (!m.is_empty()).then_some(Value::Object(m))
        }
        _ => Some(after.clone()),
    }
}

fn finalizer_changes(before: &Value, after: &Value) -> (Vec<String>, Option<Vec<Value>>) {
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (b, a) = (list(before), list(after));
    let mut ops = Vec::new();
    // Remove from the highest index down so earlier indices stay valid.
    for (i, f) in b.iter().enumerate().rev() {
        if !a.contains(f) {
            ops.push(
                json!({"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": f}),
            );
            ops.push(json!({"op": "remove", "path": format!("/metadata/finalizers/{i}")}));
        }
    }
    let added = a.iter().filter(|f| !b.contains(f)).cloned().collect();
    (added, (!ops.is_empty()).then_some(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_change_no_patch() {
        let o = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"a": 1}, "status": {"ready": true}});
        assert!(compute(&o, &o, Some("1")).is_empty());
    }

    #[test]
    fn spec_and_labels_carry_only_changed_keys() {
        let b = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "resourceVersion": "5"}, "spec": {"a": 1, "b": {"c": 1, "d": 2}}});
        let a = json!({"metadata": {"name": "a", "labels": {"x": "1", "z": "3"}, "resourceVersion": "5"}, "spec": {"a": 1, "b": {"c": 1, "d": 3}}});
        let p = compute(&b, &a, Some("5"));
        assert_eq!(
            p.object,
            Some(json!({"metadata": {"labels": {"y": null, "z": "3"}}, "spec": {"b": {"d": 3}}}))
        );
        assert_eq!(p.status, None);
        assert!(p.finalizers_add.is_empty() && p.finalizers_remove.is_none());
    }

    #[test]
    fn server_owned_metadata_is_never_patched() {
        let b = json!({"metadata": {"name": "a", "resourceVersion": "5", "managedFields": []}});
        let a =
            json!({"metadata": {"name": "a", "resourceVersion": "6", "managedFields": [{"x": 1}]}});
        assert!(compute(&b, &a, Some("5")).is_empty());
    }

    #[test]
    fn status_lists_replace_whole() {
        let b = json!({"status": {"conditions": [{"type": "A"}], "ready": false}});
        let a = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}], "ready": false}});
        assert_eq!(
            compute(&b, &a, None).status,
            Some(json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]}}))
        );
    }

    #[test]
    fn added_finalizers_go_to_server_side_apply() {
        let b = json!({"metadata": {"name": "a"}});
        let a = json!({"metadata": {"name": "a", "finalizers": ["f"]}});
        let p = compute(&b, &a, Some("7"));
        assert_eq!(p.finalizers_add, vec!["f".to_string()]);
        assert_eq!(p.finalizers_remove, None);
        assert_eq!(p.object, None);
    }

    #[test]
    fn appending_and_removing_finalizers_keep_others() {
        let b = json!({"metadata": {"finalizers": ["other", "mine"]}});
        let a = json!({"metadata": {"finalizers": ["other"]}});
        assert_eq!(
            compute(&b, &a, None).finalizers_remove,
            Some(vec![
                json!({"op": "test", "path": "/metadata/finalizers/1", "value": "mine"}),
                json!({"op": "remove", "path": "/metadata/finalizers/1"}),
            ])
        );
        let a = json!({"metadata": {"finalizers": ["other", "mine", "new"]}});
        let p = compute(&b, &a, None);
        assert_eq!(
            (p.finalizers_add, p.finalizers_remove),
            (vec!["new".to_string()], None)
        );
    }
}
