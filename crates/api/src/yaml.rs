//! Canonical YAML: mapping keys sorted, so output does not depend on the field order of
//! the Rust types nor on whether some crate in the build turned on serde_json's
//! `preserve_order`.

use crate::Error;
use serde::Serialize;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

fn canonical(v: &Json) -> Yaml {
    match v {
        Json::Null => Yaml::Null,
        Json::Bool(b) => Yaml::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Yaml::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Yaml::Number(u.into())
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // JSONSchemaProps keeps minimum/maximum as f64; print whole numbers as integers.
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Yaml::Number((f as i64).into())
                } else {
                    Yaml::Number(f.into())
                }
            }
        }
        Json::String(s) => Yaml::String(s.clone()),
        Json::Array(items) => Yaml::Sequence(items.iter().map(canonical).collect()),
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_yaml_ng::Mapping::new();
            for k in keys {
                out.insert(Yaml::String(k.clone()), canonical(&map[k]));
            }
            Yaml::Mapping(out)
        }
    }
}

/// One YAML document (no leading `---`), keys sorted.
pub(crate) fn to_yaml(what: &str, value: &impl Serialize) -> Result<String, Error> {
    let json = serde_json::to_value(value).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })?;
    serde_yaml_ng::to_string(&canonical(&json)).map_err(|source| Error::Yaml {
        what: what.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"z": true, "y": [{"d": "x", "c": null}]}});
        let out = to_yaml("test", &v).unwrap();
        assert_eq!(out, "a:\n  y:\n  - c: null\n    d: x\n  z: true\nb: 1\n");
    }

    #[test]
    fn whole_floats_print_as_integers() {
        let v = serde_json::json!({"max": 65535.0, "ratio": 0.5});
        assert_eq!(to_yaml("test", &v).unwrap(), "max: 65535\nratio: 0.5\n");
    }
}
