//! cloud-config: `write_files` and `runcmd`, in document order, as CAPD runs them.

use serde_yaml_ng::Value;

use crate::action::{sentinel_action, Action, ActionKind, RUNCMD_RETRIES};
use crate::error::{Error, Position};
use crate::{decode, kubeadm, Options, Plan};

/// How a `write_files` entry's content is encoded (cloud-init's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Plain,
    Base64,
    Gzip,
    GzipBase64,
}

fn encoding(path: &str, raw: &str) -> Result<Encoding, Error> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "text/plain" | "plain" => Ok(Encoding::Plain),
        "b64" | "base64" => Ok(Encoding::Base64),
        "gz" | "gzip" => Ok(Encoding::Gzip),
        "gz+b64" | "gz+base64" | "gzip+b64" | "gzip+base64" => Ok(Encoding::GzipBase64),
        _ => Err(Error::UnknownEncoding {
            path: path.to_string(),
            encoding: raw.to_string(),
        }),
    }
}

/// The default mode of a written file; CAPD skips chmod for it.
const DEFAULT_MODE: u32 = 0o644;
/// The default owner; CAPD skips chown for it.
const DEFAULT_OWNER: &str = "root:root";

pub(crate) fn plan(data: &[u8], options: &Options) -> Result<Plan, Error> {
    let text = std::str::from_utf8(data).map_err(|e| Error::InvalidYaml {
        position: Some(position_of(data, e.valid_up_to())),
        message: format!("not UTF-8: {e}"),
    })?;
    decode::check_flow_depth(text).map_err(|(line, column)| Error::InvalidYaml {
        position: Some(Position { line, column }),
        message: format!(
            "more than {} nested flow collections",
            decode::MAX_FLOW_DEPTH
        ),
    })?;
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| Error::InvalidYaml {
        position: e.location().map(|l| Position {
            line: l.line(),
            column: l.column(),
        }),
        message: e.to_string(),
    })?;
    let mut plan = Plan::default();
    let map = match doc {
        Value::Null => return Ok(plan),
        Value::Mapping(map) => map,
        other => {
            return Err(Error::InvalidYaml {
                position: None,
                message: format!(
                    "the document must be a mapping of modules, found {}",
                    type_name(&other)
                ),
            })
        }
    };
    // serde_yaml_ng keeps keys in document order: modules run in that order, as in CAPD.
    for (key, value) in &map {
        match key.as_str() {
            Some("write_files") => write_files(value, options, &mut plan)?,
            Some("runcmd") => runcmd(value, options, &mut plan)?,
            Some(other) => plan.ignored.push(other.to_string()),
            None => plan
                .ignored
                .push(scalar_text(key).unwrap_or_else(|| format!("({} key)", type_name(key)))),
        }
    }
    Ok(plan)
}

/// 1-based line and column of byte `offset`.
fn position_of(data: &[u8], offset: usize) -> Position {
    let before = data.get(..offset).unwrap_or(data);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    Position { line, column }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Text of a string or number scalar.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn optional_string<'a>(
    entry: &'a serde_yaml_ng::Mapping,
    key: &str,
    field: &str,
) -> Result<Option<&'a str>, Error> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::field(
            format!("{field}.{key}"),
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

const WRITE_FILES_KEYS: [&str; 6] = [
    "path",
    "content",
    "encoding",
    "owner",
    "permissions",
    "append",
];

fn write_files(value: &Value, options: &Options, plan: &mut Plan) -> Result<(), Error> {
    let entries = match value {
        Value::Null => return Ok(()),
        Value::Sequence(s) => s,
        other => {
            return Err(Error::field(
                "write_files",
                format!("expected a list, found {}", type_name(other)),
            ))
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("write_files[{i}]");
        let Value::Mapping(entry) = entry else {
            return Err(Error::field(
                field,
                format!("expected a mapping, found {}", type_name(entry)),
            ));
        };
        for key in entry.keys() {
            match key.as_str() {
                Some(k) if WRITE_FILES_KEYS.contains(&k) => {}
                Some(k) => plan.ignored.push(format!("{field}.{k}")),
                None => plan
                    .ignored
                    .push(format!("{field}.({} key)", type_name(key))),
            }
        }

        let raw_path = optional_string(entry, "path", &field)?
            .ok_or_else(|| Error::field(format!("{field}.path"), "missing"))?;
        let path = normalize_path(&field, raw_path)?;

        let encoding = encoding(
            &path,
            optional_string(entry, "encoding", &field)?.unwrap_or(""),
        )?;
        let raw_content = optional_string(entry, "content", &field)?.unwrap_or("");
        let mut content = match encoding {
            Encoding::Plain => raw_content.as_bytes().to_vec(),
            Encoding::Base64 => decode::base64(&path, raw_content.as_bytes())?,
            Encoding::Gzip => decode::gunzip(&path, raw_content.as_bytes())?,
            Encoding::GzipBase64 => {
                decode::gunzip(&path, &decode::base64(&path, raw_content.as_bytes())?)?
            }
        };

        let mode = match entry.get("permissions") {
            None | Some(Value::Null) => DEFAULT_MODE,
            Some(Value::String(s)) if s.trim().is_empty() => DEFAULT_MODE,
            Some(Value::String(s)) => decode::octal_mode(&path, s)?,
            Some(other) => {
                return Err(Error::BadPermissions {
                    path,
                    value: scalar_text(other).unwrap_or_else(|| type_name(other).to_string()),
                    reason: "must be a quoted octal string such as '0644'".to_string(),
                })
            }
        };

        let owner = match optional_string(entry, "owner", &field)?.map(str::trim) {
            None | Some("") => DEFAULT_OWNER.to_string(),
            Some(o) if o.contains('\0') => {
                return Err(Error::field(
                    format!("{field}.owner"),
                    "contains a NUL byte",
                ))
            }
            Some(o) => o.to_string(),
        };

        let append = match entry.get("append") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::field(
                    format!("{field}.append"),
                    format!("expected a boolean, found {}", type_name(other)),
                ))
            }
        };

        if options.kubeadm_fixups {
            let target = match path.as_str() {
                kubeadm::CLOUD_CONFIG_INIT_PATH => Some(("InitConfiguration", true)),
                kubeadm::CLOUD_CONFIG_JOIN_PATH => Some(("JoinConfiguration", false)),
                _ => None,
            };
            if let Some((kind, kube_proxy)) = target {
                let invalid = |reason: String| Error::InvalidKubeadmConfig {
                    path: path.clone(),
                    reason,
                };
                let text = std::str::from_utf8(&content)
                    .map_err(|e| invalid(format!("not UTF-8: {e}")))?;
                content = kubeadm::patch_config(text, kind, kube_proxy, options)
                    .map_err(invalid)?
                    .into_bytes();
            }
        }

        plan.actions
            .push(Action::write_file(&field, &path, content, append));
        if mode != DEFAULT_MODE {
            plan.actions.push(Action::chmod(&field, &path, mode));
        }
        if owner != DEFAULT_OWNER {
            plan.actions.push(Action::chown(&field, &path, &owner));
        }
    }
    Ok(())
}

/// cloud-init trims the path and makes it absolute (relative to `/`).
fn normalize_path(field: &str, raw: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidPath {
        field: format!("{field}.path"),
        path: raw.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    if trimmed.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if trimmed.ends_with('/') {
        return Err(invalid("names a directory"));
    }
    if trimmed.starts_with('/') {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("/{trimmed}"))
    }
}

fn runcmd(value: &Value, options: &Options, plan: &mut Plan) -> Result<(), Error> {
    let entries = match value {
        Value::Null => return Ok(()),
        Value::Sequence(s) => s,
        other => {
            return Err(Error::field(
                "runcmd",
                format!("expected a list, found {}", type_name(other)),
            ))
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("runcmd[{i}]");
        let argv = match entry {
            // A string runs in a shell, as cloud-init's runcmd script would.
            Value::String(s) => vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()],
            // A list is the argv itself.
            Value::Sequence(items) => {
                let mut argv = Vec::with_capacity(items.len());
                for (j, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => argv.push(s.clone()),
                        Value::Number(n) => argv.push(n.to_string()),
                        other => {
                            return Err(Error::field(
                                format!("{field}[{j}]"),
                                format!("expected a string, found {}", type_name(other)),
                            ))
                        }
                    }
                }
                if argv.first().is_none_or(|p| p.is_empty()) {
                    return Err(Error::field(field, "empty command"));
                }
                argv
            }
            other => {
                return Err(Error::field(
                    field,
                    format!(
                        "expected a string or a list of strings, found {}",
                        type_name(other)
                    ),
                ))
            }
        };
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(Error::field(field, "contains a NUL byte"));
        }
        let (argv, is_kubeadm) = kubeadm::rewrite_runcmd(argv, options.kubeadm_fixups);
        if is_kubeadm {
            plan.actions.push(sentinel_action());
        }
        let mut action = Action {
            argv,
            stdin: None,
            retries: RUNCMD_RETRIES,
            description: String::new(),
            kind: ActionKind::RunCommand {
                index: i,
                kubeadm: is_kubeadm,
            },
        };
        action.description = format!("{field}: {}", action.command_line());
        plan.actions.push(action);
    }
    Ok(())
}
