//! Every error: its variant, its fields, and that its message names what failed.

mod common;

use capd_bootstrap::{plan, plan_cloud_config, plan_ignition, Error, Format, Options, Position};
use common::{b64, gzip};

fn cc(doc: &str) -> Error {
    plan_cloud_config(doc.as_bytes(), &Options::default()).expect_err(doc)
}

fn ign(doc: &str) -> Error {
    plan_ignition(doc.as_bytes(), &Options::default()).expect_err(doc)
}

fn file(path: &str, rest: &str) -> String {
    format!(
        r#"{{"ignition": {{"version": "2.3.0"}}, "storage": {{"files": [{{"path": "{path}"{rest}}}]}}}}"#
    )
}

fn field(e: &Error) -> (&str, &str) {
    match e {
        Error::InvalidField { field, reason } => (field, reason),
        other => panic!("not InvalidField: {other:?}"),
    }
}

#[test]
fn unknown_format() {
    assert_eq!(
        Format::from_secret_value(Some(b"cloud-init")),
        Err(Error::UnknownFormat("cloud-init".into()))
    );
    assert_eq!(
        "Ignition".parse::<Format>().unwrap_err().to_string(),
        "unknown bootstrap data format \"Ignition\" (expected \"cloud-config\" or \"ignition\")"
    );
    assert_eq!(Format::from_secret_value(None), Ok(Format::CloudConfig));
    assert_eq!(
        Format::from_secret_value(Some(b"")),
        Ok(Format::CloudConfig)
    );
    assert_eq!(
        Format::from_secret_value(Some(b"cloud-config")),
        Ok(Format::CloudConfig)
    );
    assert_eq!(
        Format::from_secret_value(Some(b"ignition")),
        Ok(Format::Ignition)
    );
    assert_eq!(Format::Ignition.to_string(), "ignition");
}

#[test]
fn invalid_yaml_has_a_position() {
    let e = cc("write_files:\n- path: /a\n  content: [unclosed\n");
    let Error::InvalidYaml { position, .. } = &e else {
        panic!("{e:?}")
    };
    let p = position.expect("a position");
    assert_eq!(p.line, 4, "{e}");
    assert!(
        e.to_string()
            .starts_with("cloud-config is not valid YAML at line 4, column"),
        "{e}"
    );

    let e = cc("a: 1\n\tb: 2\n");
    assert!(
        matches!(
            e,
            Error::InvalidYaml {
                position: Some(Position { line: 2, .. }),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn deep_flow_nesting_is_refused_before_parsing() {
    // The YAML parser's time grows with the square of the flow depth.
    let started = std::time::Instant::now();
    let e = cc(&"{a: ".repeat(100_000));
    assert_eq!(
        e,
        Error::InvalidYaml {
            position: Some(Position {
                line: 1,
                column: 2049
            }),
            message: "more than 512 nested flow collections".into()
        }
    );
    let e = cc(&format!(
        "write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  content: \"{}\"\n",
        "[".repeat(600)
    ));
    assert!(matches!(&e, Error::InvalidYaml { .. }), "{e:?}");
    let content = b64(&gzip("{a: ".repeat(100_000).as_bytes()));
    let e = cc(&format!("write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  encoding: gz+b64\n  content: {content}\n"));
    assert!(
        matches!(&e, Error::InvalidKubeadmConfig { reason, .. } if reason == "document 1 nests flow collections too deeply (line 1, column 2049)"),
        "{e:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Balanced brackets, however many, are fine.
    let ok = plan_cloud_config(
        format!("runcmd:\n- '{}'\n", "[x] ".repeat(10_000)).as_bytes(),
        &Options::default(),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn duplicate_keys_and_several_documents_are_invalid_yaml() {
    assert!(matches!(
        cc("runcmd: []\nruncmd: []\n"),
        Error::InvalidYaml { .. }
    ));
    assert!(matches!(
        cc("runcmd: []\n---\nruncmd: []\n"),
        Error::InvalidYaml { .. }
    ));
}

#[test]
fn non_mapping_document() {
    let e = cc("- write_files\n");
    assert_eq!(
        e.to_string(),
        "cloud-config is not valid YAML: the document must be a mapping of modules, found a list"
    );
    assert!(matches!(cc("just a string"), Error::InvalidYaml { .. }));
}

#[test]
fn non_utf8_cloud_config_has_a_position() {
    let e = plan_cloud_config(b"runcmd:\n- ec\xffho\n", &Options::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidYaml {
                position: Some(Position { line: 2, column: 5 }),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn unknown_encoding_names_path_and_encoding() {
    let e = cc("write_files:\n- {path: /etc/x.conf, encoding: base32, content: abc}\n");
    assert_eq!(
        e,
        Error::UnknownEncoding {
            path: "/etc/x.conf".into(),
            encoding: "base32".into()
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("/etc/x.conf") && msg.contains("base32"),
        "{msg}"
    );
}

#[test]
fn undecodable_base64_names_the_path() {
    let e = cc("write_files:\n- {path: /etc/ca.crt, encoding: b64, content: 'not*base64'}\n");
    let Error::InvalidBase64 { path, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, "/etc/ca.crt");
    assert!(
        e.to_string()
            .starts_with("file \"/etc/ca.crt\": content is not valid base64"),
        "{e}"
    );
}

#[test]
fn undecodable_gzip_names_the_path() {
    let e = cc(&format!(
        "write_files:\n- {{path: /etc/gz, encoding: gzip+base64, content: {}}}\n",
        b64(b"plain, not gzip")
    ));
    let Error::InvalidGzip { path, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, "/etc/gz");
    assert!(
        e.to_string()
            .contains("\"/etc/gz\": content is not valid gzip"),
        "{e}"
    );

    // A valid gzip stream cut short.
    let mut cut = gzip(&[7u8; 4096]);
    cut.truncate(cut.len() / 2);
    let e = cc(&format!(
        "write_files:\n- {{path: /etc/cut, encoding: gz+b64, content: {}}}\n",
        b64(&cut)
    ));
    assert!(
        matches!(&e, Error::InvalidGzip { path, .. } if path == "/etc/cut"),
        "{e:?}"
    );
}

#[test]
fn bad_permissions_name_the_path_and_value() {
    for (value, shown) in [
        ("'0999'", "0999"),
        ("'rw-r--r--'", "rw-r--r--"),
        ("'17777'", "17777"),
        ("644", "644"),
        ("true", "true"),
        ("[1]", "a list"),
    ] {
        let e = cc(&format!(
            "write_files:\n- {{path: /p, content: x, permissions: {value}}}\n"
        ));
        let Error::BadPermissions {
            path, value: got, ..
        } = &e
        else {
            panic!("{value}: {e:?}")
        };
        assert_eq!((path.as_str(), got.as_str()), ("/p", shown));
        assert!(
            e.to_string()
                .starts_with(&format!("file \"/p\": invalid permissions \"{shown}\"")),
            "{e}"
        );
    }
}

#[test]
fn malformed_write_files() {
    assert_eq!(
        field(&cc("write_files: {path: /a}\n")),
        ("write_files", "expected a list, found a mapping")
    );
    assert_eq!(
        field(&cc("write_files: [/a]\n")),
        ("write_files[0]", "expected a mapping, found a string")
    );
    assert_eq!(
        field(&cc("write_files: [{content: x}]\n")),
        ("write_files[0].path", "missing")
    );
    assert_eq!(
        field(&cc("write_files: [{path: [a]}]\n")),
        ("write_files[0].path", "expected a string, found a list")
    );
    assert_eq!(
        field(&cc("write_files: [{path: /a, content: 12}]\n")),
        (
            "write_files[0].content",
            "expected a string, found a number"
        )
    );
    assert_eq!(
        field(&cc("write_files: [{path: /a, encoding: 64}]\n")),
        (
            "write_files[0].encoding",
            "expected a string, found a number"
        )
    );
    assert_eq!(
        field(&cc("write_files: [{path: /a, owner: 0}]\n")),
        ("write_files[0].owner", "expected a string, found a number")
    );
    assert_eq!(
        field(&cc("write_files: [{path: /a, owner: \"a\\0b\"}]\n")),
        ("write_files[0].owner", "contains a NUL byte")
    );
    assert_eq!(
        field(&cc("write_files: [{path: /a, append: 'yes'}]\n")),
        (
            "write_files[0].append",
            "expected a boolean, found a string"
        )
    );
}

#[test]
fn invalid_paths() {
    for (path, reason) in [
        ("''", "empty"),
        ("'   '", "empty"),
        ("/etc/", "names a directory"),
        ("\"/a\\0b\"", "contains a NUL byte"),
    ] {
        let e = cc(&format!("write_files:\n- {{path: {path}, content: x}}\n"));
        let Error::InvalidPath {
            field, reason: got, ..
        } = &e
        else {
            panic!("{path}: {e:?}")
        };
        assert_eq!(
            (field.as_str(), got.as_str()),
            ("write_files[0].path", reason)
        );
    }
}

#[test]
fn malformed_runcmd() {
    assert_eq!(
        field(&cc("runcmd: echo\n")),
        ("runcmd", "expected a list, found a string")
    );
    assert_eq!(
        field(&cc("runcmd:\n- {a: b}\n")),
        (
            "runcmd[0]",
            "expected a string or a list of strings, found a mapping"
        )
    );
    assert_eq!(
        field(&cc("runcmd:\n- []\n")),
        ("runcmd[0]", "empty command")
    );
    assert_eq!(
        field(&cc("runcmd:\n- ['', x]\n")),
        ("runcmd[0]", "empty command")
    );
    assert_eq!(
        field(&cc("runcmd:\n- echo\n- [ls, [a]]\n")),
        ("runcmd[1][1]", "expected a string, found a list")
    );
    assert_eq!(
        field(&cc("runcmd:\n- [ls, null]\n")),
        ("runcmd[0][1]", "expected a string, found null")
    );
    assert_eq!(
        field(&cc("runcmd:\n- \"echo \\0\"\n")),
        ("runcmd[0]", "contains a NUL byte")
    );
    assert_eq!(
        field(&cc("runcmd:\n- null\n")),
        (
            "runcmd[0]",
            "expected a string or a list of strings, found null"
        )
    );
}

#[test]
fn unreadable_kubeadm_config_with_fixups() {
    let e = cc("write_files:\n- {path: /run/kubeadm/kubeadm.yaml, content: \"kind: ClusterConfiguration\\n\"}\n");
    assert_eq!(
        e,
        Error::InvalidKubeadmConfig {
            path: "/run/kubeadm/kubeadm.yaml".into(),
            reason: "no InitConfiguration document".into()
        }
    );
    let e =
        cc("write_files:\n- {path: /run/kubeadm/kubeadm-join-config.yaml, content: \"kind: [\"}\n");
    assert!(
        matches!(&e, Error::InvalidKubeadmConfig { path, reason } if path == "/run/kubeadm/kubeadm-join-config.yaml" && reason.starts_with("document 1 is not valid YAML")),
        "{e:?}"
    );
    let e = cc("write_files:\n- {path: /run/kubeadm/kubeadm-join-config.yaml, content: \"kind: JoinConfiguration\\nnodeRegistration: [1]\\n\"}\n");
    assert!(
        matches!(&e, Error::InvalidKubeadmConfig { reason, .. } if reason == "nodeRegistration is not a mapping"),
        "{e:?}"
    );
    let e = cc("write_files:\n- {path: /run/kubeadm/kubeadm-join-config.yaml, content: \"kind: JoinConfiguration\\nnodeRegistration: {kubeletExtraArgs: 3}\\n\"}\n");
    assert!(
        matches!(&e, Error::InvalidKubeadmConfig { reason, .. } if reason.contains("neither a list nor a mapping")),
        "{e:?}"
    );
    // Without the fixups the same data is fine.
    let ok = plan_cloud_config(
        b"write_files:\n- {path: /run/kubeadm/kubeadm.yaml, content: \"kind: ClusterConfiguration\\n\"}\n",
        &Options { kubeadm_fixups: false, private_cgroupns: true },
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn invalid_json_has_a_position() {
    let e = ign("{\n  \"ignition\": {\"version\": \"2.3.0\"},\n  \"storage\": [\n}");
    let Error::InvalidJson { position, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(position.map(|p| p.line), Some(4), "{e}");
    assert!(
        e.to_string()
            .starts_with("Ignition config is not valid JSON at line 4, column"),
        "{e}"
    );
    assert_eq!(
        ign("[]").to_string(),
        "Ignition config is not valid JSON: expected an object, found a list"
    );
    assert!(matches!(ign(""), Error::InvalidJson { .. }));
    assert!(matches!(
        plan_ignition(b"{\"a\": \"\xff\"}", &Options::default()),
        Err(Error::InvalidJson { .. })
    ));
}

#[test]
fn unsupported_ignition_versions() {
    assert_eq!(
        ign(r#"{"ignition": {"version": "3.4.0"}}"#),
        Error::UnsupportedIgnitionVersion("3.4.0".into())
    );
    assert_eq!(
        ign(r#"{"ignition": {"version": "2"}}"#),
        Error::UnsupportedIgnitionVersion("2".into())
    );
    assert_eq!(
        ign(r#"{"ignition": {"version": 2.3}}"#),
        Error::UnsupportedIgnitionVersion("2.3".into())
    );
    assert_eq!(
        ign(r#"{"storage": {}}"#),
        Error::UnsupportedIgnitionVersion("(missing ignition.version)".into())
    );
    assert!(ign(r#"{"ignition": {"version": "3.0.0"}}"#)
        .to_string()
        .contains("\"3.0.0\""));
    for v in ["2.0.0", "2.1.0", "2.2.0", "2.3.0", "2.4.0-experimental"] {
        let doc = format!(r#"{{"ignition": {{"version": "{v}"}}}}"#);
        assert!(
            plan_ignition(doc.as_bytes(), &Options::default()).is_ok(),
            "{v}"
        );
    }
}

#[test]
fn remote_sources_are_refused_with_the_path() {
    for (url, scheme) in [
        ("https://example.invalid/a", "https"),
        ("s3://bucket/key", "s3"),
        ("tftp://h/f", "tftp"),
    ] {
        let e = ign(&file(
            "/etc/remote",
            &format!(r#", "contents": {{"source": "{url}"}}"#),
        ));
        assert_eq!(
            e,
            Error::UnsupportedSource {
                path: "/etc/remote".into(),
                scheme: scheme.into()
            }
        );
    }
}

#[test]
fn bad_data_urls_and_compression() {
    let e = ign(&file(
        "/d",
        r#", "contents": {"source": "data:text/plain"}"#,
    ));
    assert!(
        matches!(&e, Error::InvalidDataUrl { path, .. } if path == "/d"),
        "{e:?}"
    );
    let e = ign(&file(
        "/d",
        r#", "contents": {"source": "data:;base64,%%%"}"#,
    ));
    assert!(
        matches!(&e, Error::InvalidBase64 { path, .. } if path == "/d"),
        "{e:?}"
    );
    let e = ign(&file(
        "/d",
        r#", "contents": {"source": "data:,x", "compression": "xz"}"#,
    ));
    assert_eq!(
        e,
        Error::UnsupportedCompression {
            path: "/d".into(),
            compression: "xz".into()
        }
    );
    let e = ign(&file(
        "/d",
        r#", "contents": {"source": "data:,notgzip", "compression": "gzip"}"#,
    ));
    assert!(
        matches!(&e, Error::InvalidGzip { path, .. } if path == "/d"),
        "{e:?}"
    );
}

#[test]
fn bad_ignition_modes() {
    for (mode, shown) in [
        ("-1", "-1"),
        ("4096", "4096"),
        ("\"0644\"", "\"0644\""),
        ("1.5", "1.5"),
        ("true", "true"),
    ] {
        let e = ign(&file("/m", &format!(r#", "mode": {mode}"#)));
        let Error::BadPermissions { path, value, .. } = &e else {
            panic!("{mode}: {e:?}")
        };
        assert_eq!((path.as_str(), value.as_str()), ("/m", shown));
    }
}

#[test]
fn malformed_ignition_files_and_units() {
    let e = ign(&file("etc/relative", ""));
    assert!(
        matches!(&e, Error::InvalidPath { field, reason, .. } if field == "storage.files[0].path" && reason == "not absolute"),
        "{e:?}"
    );
    let e = ign(&file("/etc/", ""));
    assert!(
        matches!(&e, Error::InvalidPath { reason, .. } if reason == "names a directory"),
        "{e:?}"
    );
    assert_eq!(
        field(&ign(
            r#"{"ignition": {"version": "2.3.0"}, "storage": {"files": {}}}"#
        )),
        ("storage.files", "expected a list, found an object")
    );
    assert_eq!(
        field(&ign(r#"{"ignition": {"version": "2.3.0"}, "storage": []}"#)),
        ("storage", "expected an object, found a list")
    );
    assert_eq!(
        field(&ign(
            r#"{"ignition": {"version": "2.3.0"}, "storage": {"files": [1]}}"#
        )),
        ("storage.files[0]", "expected an object, found a number")
    );
    assert_eq!(
        field(&ign(
            r#"{"ignition": {"version": "2.3.0"}, "storage": {"files": [{}]}}"#
        )),
        ("storage.files[0].path", "missing")
    );
    assert_eq!(
        field(&ign(&file("/a", r#", "append": "yes""#))),
        (
            "storage.files[0].append",
            "expected a boolean, found a string"
        )
    );
    assert_eq!(
        field(&ign(&file("/a", r#", "user": {"id": -1}"#))),
        (
            "storage.files[0].user.id",
            "expected a user/group id, found -1"
        )
    );
    assert_eq!(
        field(&ign(&file("/a", r#", "user": {"name": "a:b"}"#))),
        ("storage.files[0].user.name", "contains a NUL byte or ':'")
    );
    assert_eq!(
        field(&ign(&file("/a", r#", "contents": {"source": 1}"#))),
        (
            "storage.files[0].contents.source",
            "expected a string, found a number"
        )
    );

    let unit = |u: &str| {
        format!(r#"{{"ignition": {{"version": "2.3.0"}}, "systemd": {{"units": [{u}]}}}}"#)
    };
    assert_eq!(
        field(&ign(&unit(r#"{"contents": "x"}"#))),
        ("systemd.units[0].name", "missing")
    );
    for name in ["../etc/passwd", "", "..", "-H.service"] {
        let e = ign(&unit(&format!(r#"{{"name": "{name}"}}"#)));
        assert_eq!(field(&e).0, "systemd.units[0].name", "{name}");
    }
    assert_eq!(
        field(&ign(&unit(r#""x""#))),
        ("systemd.units[0]", "expected an object, found a string")
    );
    assert_eq!(
        field(&ign(&unit(r#"{"name": "a.service", "enabled": "true"}"#))),
        (
            "systemd.units[0].enabled",
            "expected a boolean, found a string"
        )
    );
    assert_eq!(
        field(&ign(&unit(
            r#"{"name": "a.service", "dropins": [{"name": "../x"}]}"#
        )))
        .0,
        "systemd.units[0].dropins[0].name"
    );
    assert_eq!(
        field(&ign(&unit(r#"{"name": "a.service", "dropins": [3]}"#))),
        (
            "systemd.units[0].dropins[0]",
            "expected an object, found a number"
        )
    );
}

#[test]
fn plan_dispatches_on_format() {
    let yaml = b"runcmd: [[ls]]\n";
    assert!(plan(yaml, Format::CloudConfig, &Options::default()).is_ok());
    assert!(matches!(
        plan(yaml, Format::Ignition, &Options::default()),
        Err(Error::InvalidJson { .. })
    ));
}
