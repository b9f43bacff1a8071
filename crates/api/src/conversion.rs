//! Conversion between v1beta1 and v1beta2 of every kind, as CAPD v1.14.0 converts them
//! (api/v1beta1/conversion.go there), written on JSON: the versions differ in a handful
//! of places and the conversion webhook receives and returns JSON anyway.
//!
//! What differs (everything else is the same JSON in both versions):
//! - failure domains: a map `name -> {controlPlane, attributes}` in v1beta1, a list of
//!   `{name, controlPlane, attributes}` sorted by name in v1beta2 (cluster specs and statuses);
//! - `status.ready` (v1beta1) ⇄ `status.initialization.provisioned` (v1beta2);
//! - conditions: v1beta1's `status.conditions` (with severity) live in v1beta2 under
//!   `status.deprecated.v1beta1.conditions`, and v1beta2's `status.conditions` live in
//!   v1beta1 under `status.v1beta2.conditions`;
//! - v1beta2-only fields (DockerMachine `status.failureDomain`, a template's `status`,
//!   a pool's new conditions) survive a trip through v1beta1 in the annotation
//!   `cluster.x-k8s.io/conversion-data`, as CAPD keeps them: the v1beta2 object without its
//!   metadata, as JSON. Objects converted by CAPD restore here and the other way round.

use serde_json::{json, Map, Value};

pub const GROUP: &str = "infrastructure.cluster.x-k8s.io";
pub const V1BETA1: &str = "infrastructure.cluster.x-k8s.io/v1beta1";
pub const V1BETA2: &str = "infrastructure.cluster.x-k8s.io/v1beta2";
/// CAPD's (Cluster API's util/conversion) annotation for what v1beta1 cannot hold.
pub const DATA_ANNOTATION: &str = "cluster.x-k8s.io/conversion-data";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("apiVersion {0:?} is not one this provider serves ({V1BETA1}, {V1BETA2})")]
    Version(String),
    #[error("kind {0:?} is not one of this provider's kinds")]
    Kind(String),
    #[error("{field}: {problem}")]
    Field { field: String, problem: String },
    #[error("the object is not a JSON object")]
    NotAnObject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// DockerCluster, DevCluster: failure domains in spec and status, `ready`.
    Cluster,
    /// DockerMachine, DevMachine: `ready`, `failureDomain` kept in the annotation.
    Machine,
    /// DockerClusterTemplate, DevClusterTemplate: failure domains in the template's spec.
    ClusterTemplate,
    /// DockerMachineTemplate, DevMachineTemplate: the v1beta2 `status` (capacity) kept.
    MachineTemplate,
    /// DockerMachinePool, DevMachinePool: conditions moved, v1beta2 conditions kept.
    Pool,
    /// DockerMachinePoolTemplate, DevMachinePoolTemplate: the same JSON in both.
    Same,
}

/// Where the Docker spec sits: `spec`, or `spec.backend.docker` for the Dev* kinds.
fn shape(kind: &str) -> Result<(Shape, bool), Error> {
    let dev = kind.starts_with("Dev");
    let base = kind
        .strip_prefix("Docker")
        .or_else(|| kind.strip_prefix("Dev"))
        .ok_or_else(|| Error::Kind(kind.into()))?;
    let s = match base {
        "Cluster" => Shape::Cluster,
        "Machine" => Shape::Machine,
        "ClusterTemplate" => Shape::ClusterTemplate,
        "MachineTemplate" => Shape::MachineTemplate,
        "MachinePool" => Shape::Pool,
        "MachinePoolTemplate" => Shape::Same,
        _ => return Err(Error::Kind(kind.into())),
    };
    Ok((s, dev))
}

/// Converts `object` to `desired` (`infrastructure.cluster.x-k8s.io/v1beta1` or `/v1beta2`).
/// Converting to the version it already has returns it unchanged.
pub fn convert(mut object: Value, desired: &str) -> Result<Value, Error> {
    let from = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for v in [&from, &desired.to_string()] {
        if v != V1BETA1 && v != V1BETA2 {
            return Err(Error::Version(v.clone()));
        }
    }
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (shape, dev) = shape(&kind)?;
    if from == desired {
        return Ok(object);
    }
    let obj = object.as_object_mut().ok_or(Error::NotAnObject)?;
    if desired == V1BETA2 {
        up(obj, shape, dev)?;
    } else {
        down(obj, shape, dev)?;
    }
    obj.insert("apiVersion".into(), Value::String(desired.into()));
    Ok(object)
}

/// The docker spec of an object: `spec`, below `template.spec` for templates, below
/// `backend.docker` for the Dev* kinds.
fn docker_spec(
    obj: &mut Map<String, Value>,
    template: bool,
    dev: bool,
) -> Option<&mut Map<String, Value>> {
    let mut at = obj.get_mut("spec")?;
    if template {
        at = at.get_mut("template")?.get_mut("spec")?;
    }
    if dev {
        at = at.get_mut("backend")?.get_mut("docker")?;
    }
    at.as_object_mut()
}

/// The kinds whose v1beta2-only fields travel in the conversion-data annotation (CAPD
/// reads and writes it on these only; on the others it is left alone).
fn keeps_data(shape: Shape) -> bool {
    matches!(
        shape,
        Shape::Cluster | Shape::Machine | Shape::MachineTemplate | Shape::Pool
    )
}

fn up(obj: &mut Map<String, Value>, shape: Shape, dev: bool) -> Result<(), Error> {
    let restored = if keeps_data(shape) {
        take_data(obj)?
    } else {
        None
    };
    match shape {
        Shape::Cluster | Shape::ClusterTemplate => {
            let base = if dev { "spec.backend.docker" } else { "spec" };
            let base = if shape == Shape::ClusterTemplate {
                format!("spec.template.{base}")
            } else {
                base.to_string()
            };
            if let Some(spec) = docker_spec(obj, shape == Shape::ClusterTemplate, dev) {
                domains_to_list(spec, &format!("{base}.failureDomains"))?;
            }
        }
        _ => {}
    }
    if shape == Shape::MachineTemplate {
        // v1beta1 templates have no status; v1beta2's (capacity) comes back from the data.
        if let Some(s) = restored.as_ref().and_then(|r| r.get("status")) {
            obj.insert("status".into(), s.clone());
        }
    }
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    match shape {
        Shape::Cluster | Shape::Machine => {
            if shape == Shape::Cluster {
                domains_to_list(status, "status.failureDomains")?;
            }
            let ready = status
                .get("ready")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let was = restored
                .as_ref()
                .and_then(|r| r.pointer("/status/initialization/provisioned"))
                .and_then(Value::as_bool);
            // CAPD's Convert_bool_To_Pointer_bool: true stays true; false stays unset
            // unless the v1beta2 object had said false.
            let provisioned = if ready {
                Some(true)
            } else {
                was.filter(|p| !p)
            };
            if let Some(p) = provisioned {
                status
                    .entry("initialization")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|i| i.insert("provisioned".into(), Value::Bool(p)));
            }
            conditions_up(status);
            if shape == Shape::Machine {
                if let Some(fd) = restored
                    .as_ref()
                    .and_then(|r| r.pointer("/status/failureDomain"))
                {
                    status.insert("failureDomain".into(), fd.clone());
                }
            }
        }
        Shape::Pool => {
            let v1beta1 = status.remove("conditions");
            if let Some(c) = v1beta1 {
                status.insert("deprecated".into(), json!({"v1beta1": {"conditions": c}}));
            }
            if let Some(c) = restored
                .as_ref()
                .and_then(|r| r.pointer("/status/conditions"))
            {
                status.insert("conditions".into(), c.clone());
            }
        }
        Shape::ClusterTemplate | Shape::MachineTemplate | Shape::Same => {}
    }
    Ok(())
}

fn down(obj: &mut Map<String, Value>, shape: Shape, dev: bool) -> Result<(), Error> {
    // What v1beta1 cannot hold, for the way back (CAPD: MarshalData, on these kinds).
    let data = keeps_data(shape).then(|| {
        let mut hub = obj.clone();
        hub.remove("metadata");
        Value::Object(hub)
    });
    if matches!(shape, Shape::Cluster | Shape::ClusterTemplate) {
        if let Some(spec) = docker_spec(obj, shape == Shape::ClusterTemplate, dev) {
            domains_to_map(spec);
        }
    }
    if matches!(shape, Shape::Machine | Shape::MachineTemplate) {
        // v1beta1's providerID is a pointer: "" there would be a value, here it is "unset".
        // It sits beside `backend` in the Dev* kinds, not inside it.
        let template = shape == Shape::MachineTemplate;
        if let Some(spec) = docker_spec(obj, template, false) {
            if spec.get("providerID").and_then(Value::as_str) == Some("") {
                spec.remove("providerID");
            }
        }
    }
    if shape == Shape::MachineTemplate {
        obj.remove("status");
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        match shape {
            Shape::Cluster | Shape::Machine => {
                let provisioned = status
                    .get("initialization")
                    .and_then(|i| i.get("provisioned"))
                    .and_then(Value::as_bool);
                let ready = match shape {
                    // Clusters and DevMachines: ready is provisioned (unset: false).
                    // DockerMachines: only a set provisioned overrides ready (CAPD).
                    Shape::Machine if !dev => provisioned.unwrap_or_else(|| {
                        status
                            .get("ready")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)
                    }),
                    _ => provisioned.unwrap_or(false),
                };
                status.insert("ready".into(), Value::Bool(ready));
                status.remove("initialization");
                status.remove("failureDomain");
                if shape == Shape::Cluster {
                    domains_to_map(status);
                }
                conditions_down(status);
            }
            Shape::Pool => {
                status.remove("conditions");
                if let Some(c) = take_deprecated_conditions(status) {
                    status.insert("conditions".into(), c);
                }
            }
            _ => {}
        }
    }
    if let Some(data) = data {
        let text = serde_json::to_string(&data).map_err(|e| Error::Field {
            field: "conversion data".into(),
            problem: e.to_string(),
        })?;
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(ann) = ann.as_object_mut() {
                ann.insert(DATA_ANNOTATION.into(), Value::String(text));
            }
        }
    }
    Ok(())
}

/// Takes the v1beta2 data a previous down-conversion left, removing the annotation
/// (and `annotations` if it was the only one).
fn take_data(obj: &mut Map<String, Value>) -> Result<Option<Value>, Error> {
    let Some(ann) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return Ok(None);
    };
    let Some(text) = ann.remove(DATA_ANNOTATION) else {
        return Ok(None);
    };
    if ann.is_empty() {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("annotations");
        }
    }
    let text = text.as_str().unwrap_or_default().to_string();
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Field {
            field: format!("metadata.annotations[{DATA_ANNOTATION}]"),
            problem: format!("not the JSON a conversion wrote: {e}"),
        })
}

fn conditions_up(status: &mut Map<String, Value>) {
    let v1beta1 = status.remove("conditions");
    let v1beta2 = status
        .remove("v1beta2")
        .and_then(|mut v| v.as_object_mut().and_then(|o| o.remove("conditions")));
    if let Some(c) = v1beta2 {
        status.insert("conditions".into(), c);
    }
    if let Some(c) = v1beta1 {
        status.insert("deprecated".into(), json!({"v1beta1": {"conditions": c}}));
    }
}

fn conditions_down(status: &mut Map<String, Value>) {
    let v1beta2 = status.remove("conditions");
    if let Some(c) = take_deprecated_conditions(status) {
        status.insert("conditions".into(), c);
    }
    if let Some(c) = v1beta2 {
        status.insert("v1beta2".into(), json!({"conditions": c}));
    }
}

fn take_deprecated_conditions(status: &mut Map<String, Value>) -> Option<Value> {
    let mut deprecated = status.remove("deprecated")?;
    deprecated
        .get_mut("v1beta1")?
        .as_object_mut()?
        .remove("conditions")
}

/// v1beta1 map → v1beta2 list sorted by name (CAPD sorts the map's keys).
fn domains_to_list(at: &mut Map<String, Value>, field: &str) -> Result<(), Error> {
    let Some(domains) = at.remove("failureDomains") else {
        return Ok(());
    };
    let Value::Object(map) = domains else {
        return Err(Error::Field {
            field: field.into(),
            problem: "expected a map of failure domains (v1beta1)".into(),
        });
    };
    if map.is_empty() {
        return Ok(()); // Go's omitempty: no field, not `[]` (v1beta2 wants at least one item)
    }
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let list: Vec<Value> = entries
        .into_iter()
        .map(|(name, spec)| {
            let mut fd = Map::new();
            fd.insert("name".into(), Value::String(name));
            fd.insert(
                "controlPlane".into(),
                Value::Bool(
                    spec.get("controlPlane")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
            );
            if let Some(a) = spec.get("attributes") {
                fd.insert("attributes".into(), a.clone());
            }
            Value::Object(fd)
        })
        .collect();
    at.insert("failureDomains".into(), Value::Array(list));
    Ok(())
}

/// v1beta2 list → v1beta1 map.
fn domains_to_map(at: &mut Map<String, Value>) {
    let Some(Value::Array(list)) = at.remove("failureDomains") else {
        return;
    };
    if list.is_empty() {
        return;
    }
    let map: Map<String, Value> = list
        .into_iter()
        .filter_map(|fd| {
            let name = fd.get("name")?.as_str()?.to_string();
            let mut spec = Map::new();
            spec.insert(
                "controlPlane".into(),
                Value::Bool(
                    fd.get("controlPlane")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
            );
            if let Some(a) = fd.get("attributes") {
                spec.insert("attributes".into(), a.clone());
            }
            Some((name, Value::Object(spec)))
        })
        .collect();
    at.insert("failureDomains".into(), Value::Object(map));
}

#[cfg(test)]
mod tests;
