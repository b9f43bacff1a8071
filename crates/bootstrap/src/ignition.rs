//! Ignition v2 (the Flatcar v2.3 JSON the kubeadm bootstrap provider emits):
//! `storage.files` then `systemd.units`, as CAPD runs them.

use serde_json::{Map, Value};

use crate::action::Action;
use crate::error::{Error, Position};
use crate::{decode, kubeadm, Options, Plan};

/// Ignition's default file mode.
const DEFAULT_MODE: u32 = 0o644;
/// Where unit files go.
const UNIT_DIR: &str = "/etc/systemd/system";

const TOP_KEYS: [&str; 3] = ["ignition", "storage", "systemd"];
const FILE_KEYS: [&str; 7] = [
    "path",
    "contents",
    "mode",
    "user",
    "group",
    "append",
    "filesystem",
];
/// Accepted and without effect here: `overwrite` (files are always written)
/// and `filesystem` (only the root filesystem exists in a node container).
const FILE_KEYS_NO_EFFECT: [&str; 1] = ["overwrite"];
const UNIT_KEYS: [&str; 6] = ["name", "contents", "enabled", "enable", "mask", "dropins"];

pub(crate) fn plan(data: &[u8], options: &Options) -> Result<Plan, Error> {
    let doc: Value = serde_json::from_slice(data).map_err(|e| Error::InvalidJson {
        position: (e.line() > 0).then(|| Position {
            line: e.line(),
            column: e.column(),
        }),
        message: e.to_string(),
    })?;
    let Value::Object(doc) = doc else {
        return Err(Error::InvalidJson {
            position: None,
            message: format!("expected an object, found {}", type_name(&doc)),
        });
    };

    check_version(&doc)?;

    let mut plan = Plan::default();
    for (key, value) in &doc {
        if !TOP_KEYS.contains(&key.as_str()) && !is_empty(value) {
            plan.ignored.push(key.clone());
        }
    }
    if let Some(ignition) = doc.get("ignition").and_then(Value::as_object) {
        for (key, value) in ignition {
            if key != "version" && !is_empty(value) {
                plan.ignored.push(format!("ignition.{key}"));
            }
        }
    }

    let storage = object(&doc, "storage", "storage")?;
    if let Some(storage) = storage {
        for (key, value) in storage {
            if key != "files" && !is_empty(value) {
                plan.ignored.push(format!("storage.{key}"));
            }
        }
        for (i, file) in list(storage, "files", "storage.files")?.iter().enumerate() {
            self::file(i, file, options, &mut plan)?;
        }
    }

    let systemd = object(&doc, "systemd", "systemd")?;
    if let Some(systemd) = systemd {
        for (key, value) in systemd {
            if key != "units" && !is_empty(value) {
                plan.ignored.push(format!("systemd.{key}"));
            }
        }
        for (i, unit) in list(systemd, "units", "systemd.units")?.iter().enumerate() {
            self::unit(i, unit, &mut plan)?;
        }
    }
    Ok(plan)
}

fn check_version(doc: &Map<String, Value>) -> Result<(), Error> {
    let version = doc.get("ignition").and_then(|i| i.get("version"));
    match version {
        Some(Value::String(v)) => {
            let major = v.split('.').next().unwrap_or("");
            if major == "2" && v.len() > 1 {
                Ok(())
            } else {
                Err(Error::UnsupportedIgnitionVersion(v.clone()))
            }
        }
        Some(other) => Err(Error::UnsupportedIgnitionVersion(other.to_string())),
        None => Err(Error::UnsupportedIgnitionVersion(
            "(missing ignition.version)".to_string(),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Null, `""`, `false`, `[]`, `{}`, or an object of empty values: what the
/// config transpiler emits for sections nobody filled in.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(_) => false,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

fn object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, Error> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(Error::field(
            field,
            format!("expected an object, found {}", type_name(other)),
        )),
    }
}

fn list<'a>(parent: &'a Map<String, Value>, key: &str, field: &str) -> Result<&'a [Value], Error> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(Error::field(
            field,
            format!("expected a list, found {}", type_name(other)),
        )),
    }
}

fn string<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, Error> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::field(
            format!("{field}.{key}"),
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

fn boolean(parent: &Map<String, Value>, key: &str, field: &str) -> Result<bool, Error> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::field(
            format!("{field}.{key}"),
            format!("expected a boolean, found {}", type_name(other)),
        )),
    }
}

fn report_unknown(obj: &Map<String, Value>, known: &[&str], field: &str, plan: &mut Plan) {
    for (key, value) in obj {
        if !known.contains(&key.as_str())
            && !FILE_KEYS_NO_EFFECT.contains(&key.as_str())
            && !is_empty(value)
        {
            plan.ignored.push(format!("{field}.{key}"));
        }
    }
}

/// `user`/`group`: `{"id": 1000}` or `{"name": "core"}` (the name wins, as in Ignition).
fn principal(file: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, Error> {
    let Some(obj) = object(file, key, &format!("{field}.{key}"))? else {
        return Ok(None);
    };
    let sub = format!("{field}.{key}");
    if let Some(name) = string(obj, "name", &sub)?.filter(|n| !n.is_empty()) {
        if name.contains('\0') || name.contains(':') {
            return Err(Error::field(
                format!("{sub}.name"),
                "contains a NUL byte or ':'",
            ));
        }
        return Ok(Some(name.to_string()));
    }
    match obj.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|id| id <= u64::from(u32::MAX)) => {
            Ok(Some(n.to_string()))
        }
        Some(other) => Err(Error::field(
            format!("{sub}.id"),
            format!("expected a user/group id, found {other}"),
        )),
    }
}

fn file(i: usize, value: &Value, options: &Options, plan: &mut Plan) -> Result<(), Error> {
    let field = format!("storage.files[{i}]");
    let Value::Object(file) = value else {
        return Err(Error::field(
            field,
            format!("expected an object, found {}", type_name(value)),
        ));
    };
    report_unknown(file, &FILE_KEYS, &field, plan);

    let raw_path = string(file, "path", &field)?
        .ok_or_else(|| Error::field(format!("{field}.path"), "missing"))?;
    let invalid = |reason: &str| Error::InvalidPath {
        field: format!("{field}.path"),
        path: raw_path.to_string(),
        reason: reason.to_string(),
    };
    if !raw_path.starts_with('/') {
        return Err(invalid("not absolute"));
    }
    if raw_path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if raw_path.ends_with('/') {
        return Err(invalid("names a directory"));
    }
    let path = raw_path;

    let mut content = Vec::new();
    if let Some(contents) = object(file, "contents", &format!("{field}.contents"))? {
        let sub = format!("{field}.contents");
        report_unknown(contents, &["source", "compression"], &sub, plan);
        let source = string(contents, "source", &sub)?.unwrap_or("").trim();
        content = match decode::url_scheme(source) {
            Some(scheme) if scheme.eq_ignore_ascii_case("data") => decode::data_url(path, source)?,
            Some(scheme) => {
                return Err(Error::UnsupportedSource {
                    path: path.to_string(),
                    scheme: scheme.to_string(),
                })
            }
            // No scheme: CAPD writes the text as it is (an empty source is an empty file).
            None => source.as_bytes().to_vec(),
        };
        match string(contents, "compression", &sub)?.unwrap_or("") {
            "" => {}
            "gzip" => content = decode::gunzip(path, &content)?,
            other => {
                return Err(Error::UnsupportedCompression {
                    path: path.to_string(),
                    compression: other.to_string(),
                })
            }
        }
    }

    let mode = match file.get("mode") {
        None | Some(Value::Null) => DEFAULT_MODE,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if m <= 0o7777 => u32::try_from(m).unwrap_or(DEFAULT_MODE),
            _ => {
                return Err(Error::BadPermissions {
                    path: path.to_string(),
                    value: n.to_string(),
                    reason: "must be a decimal integer between 0 and 4095 (0o7777)".to_string(),
                })
            }
        },
        Some(other) => {
            return Err(Error::BadPermissions {
                path: path.to_string(),
                value: other.to_string(),
                reason: "must be a decimal integer, e.g. 420 for 0644".to_string(),
            })
        }
    };

    let user = principal(file, "user", &field)?;
    let group = principal(file, "group", &field)?;
    let owner = match (user, group) {
        (None, None) => None,
        (Some(u), None) => Some(u),
        (None, Some(g)) => Some(format!(":{g}")),
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
    };
    let append = boolean(file, "append", &field)?;

    if path == kubeadm::IGNITION_SCRIPT_PATH {
        content = kubeadm::rewrite_ignition_script(&content, options.kubeadm_fixups);
    }
    if path == kubeadm::IGNITION_CONFIG_PATH && options.kubeadm_fixups {
        content = kubeadm::patch_ignition_config(&content);
    }

    plan.actions
        .push(Action::write_file(&field, path, content, append));
    // CAPD always sets the mode of an Ignition file.
    plan.actions.push(Action::chmod(&field, path, mode));
    if let Some(owner) = owner.filter(|o| o != "root:root") {
        plan.actions.push(Action::chown(&field, path, &owner));
    }
    Ok(())
}

/// A unit or drop-in name: one path component.
fn unit_name<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, Error> {
    let name = string(obj, "name", field)?
        .ok_or_else(|| Error::field(format!("{field}.name"), "missing"))?;
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('-')
        || name.contains('/')
        || name.contains('\0')
    {
        return Err(Error::field(
            format!("{field}.name"),
            format!("invalid unit file name {name:?}"),
        ));
    }
    Ok(name)
}

fn unit(i: usize, value: &Value, plan: &mut Plan) -> Result<(), Error> {
    let field = format!("systemd.units[{i}]");
    let Value::Object(unit) = value else {
        return Err(Error::field(
            field,
            format!("expected an object, found {}", type_name(value)),
        ));
    };
    report_unknown(unit, &UNIT_KEYS, &field, plan);
    let name = unit_name(unit, &field)?;
    let contents = string(unit, "contents", &field)?.unwrap_or("");
    let enable = boolean(unit, "enabled", &field)? || boolean(unit, "enable", &field)?;
    let mask = boolean(unit, "mask", &field)?;

    let mut wrote = false;
    // CAPD trims the unit text. A unit without contents is not written (as in
    // Ignition), so enabling a unit the image ships does not blank it.
    let contents = contents.trim();
    if !contents.is_empty() {
        let path = format!("{UNIT_DIR}/{name}");
        plan.actions.push(Action::write_file(
            &field,
            &path,
            contents.as_bytes().to_vec(),
            false,
        ));
        wrote = true;
    }
    for (j, dropin) in list(unit, "dropins", &format!("{field}.dropins"))?
        .iter()
        .enumerate()
    {
        let sub = format!("{field}.dropins[{j}]");
        let Value::Object(dropin) = dropin else {
            return Err(Error::field(
                sub,
                format!("expected an object, found {}", type_name(dropin)),
            ));
        };
        report_unknown(dropin, &["name", "contents"], &sub, plan);
        let dropin_name = unit_name(dropin, &sub)?;
        let text = string(dropin, "contents", &sub)?.unwrap_or("");
        let path = format!("{UNIT_DIR}/{name}.d/{dropin_name}");
        plan.actions.push(Action::write_file(
            &sub,
            &path,
            text.as_bytes().to_vec(),
            false,
        ));
        wrote = true;
    }
    if wrote {
        plan.actions
            .push(Action::systemctl(&field, name, &["daemon-reload"]));
    }
    if mask {
        plan.actions
            .push(Action::systemctl(&field, name, &["mask", name]));
    }
    if enable {
        plan.actions
            .push(Action::systemctl(&field, name, &["enable", "--now", name]));
    }
    Ok(())
}
