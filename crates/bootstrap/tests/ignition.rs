//! Ignition v2: files, systemd units, CAPD's kubeadm.sh / kubeadm.yml handling.

mod common;

use capd_bootstrap::{plan_ignition, Options, Plan};
use common::*;
use serde_json::json;

fn plan(doc: serde_json::Value) -> Plan {
    plan_ignition(doc.to_string().as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn files(files: serde_json::Value) -> serde_json::Value {
    json!({"ignition": {"version": "2.3.0"}, "storage": {"files": files}})
}

fn units(units: serde_json::Value) -> serde_json::Value {
    json!({"ignition": {"version": "2.3.0"}, "systemd": {"units": units}})
}

#[test]
fn percent_encoded_file_with_mode() {
    let p = plan(files(
        json!([{"path": "/etc/hello", "contents": {"source": "data:,hello%20world%0A"}, "mode": 420}]),
    ));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/etc", "/etc/hello", b"hello world\n"),
            chmod("storage.files[0]", "0644", "/etc/hello"),
        ],
    );
    assert!(p.ignored.is_empty());
}

#[test]
fn base64_data_url_and_modes_in_decimal() {
    let p = plan(files(json!([
        {"path": "/k", "contents": {"source": "data:;base64,aGVsbG8="}, "mode": 384},
        {"path": "/s", "contents": {"source": "data:text/plain;charset=utf-8;base64,aGk="}, "mode": 448},
        {"path": "/z", "contents": {"source": "data:,"}, "mode": 0},
        {"path": "/t", "contents": {"source": "data:,x"}, "mode": 4095},
    ])));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/k", b"hello"),
            chmod("storage.files[0]", "0600", "/k"),
            write("storage.files[1]", "/", "/s", b"hi"),
            chmod("storage.files[1]", "0700", "/s"),
            write("storage.files[2]", "/", "/z", b""),
            chmod("storage.files[2]", "0000", "/z"),
            write("storage.files[3]", "/", "/t", b"x"),
            chmod("storage.files[3]", "7777", "/t"),
        ],
    );
}

#[test]
fn gzip_compressed_contents() {
    let body = b"\x00\x01binary\xff\n";
    let p = plan(files(json!([
        {"path": "/g", "contents": {"compression": "gzip", "source": format!("data:;base64,{}", b64(&gzip(body)))}, "mode": 420},
        {"path": "/n", "contents": {"compression": "", "source": "data:,plain"}, "mode": 420},
    ])));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/g", body),
            chmod("storage.files[0]", "0644", "/g"),
            write("storage.files[1]", "/", "/n", b"plain"),
            chmod("storage.files[1]", "0644", "/n"),
        ],
    );
}

#[test]
fn missing_mode_contents_and_source_default_as_in_ignition() {
    let p = plan(files(
        json!([{"path": "/a"}, {"path": "/b", "contents": {}}, {"path": "/c", "contents": {"source": ""}}]),
    ));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/a", b""),
            chmod("storage.files[0]", "0644", "/a"),
            write("storage.files[1]", "/", "/b", b""),
            chmod("storage.files[1]", "0644", "/b"),
            write("storage.files[2]", "/", "/c", b""),
            chmod("storage.files[2]", "0644", "/c"),
        ],
    );
}

#[test]
fn a_source_without_scheme_is_written_as_is_like_capd() {
    let p = plan(files(
        json!([{"path": "/r", "contents": {"source": "  just text  "}, "mode": 420}]),
    ));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/r", b"just text"),
            chmod("storage.files[0]", "0644", "/r"),
        ],
    );
}

#[test]
fn user_and_group_become_chown() {
    let p = plan(files(json!([
        {"path": "/a", "mode": 420, "user": {"name": "core"}, "group": {"name": "core"}},
        {"path": "/b", "mode": 420, "user": {"id": 500}, "group": {"id": 501}},
        {"path": "/c", "mode": 420, "user": {"name": "root"}, "group": {"name": "root"}},
        {"path": "/d", "mode": 420, "group": {"id": 100}},
        {"path": "/e", "mode": 420, "user": {"id": 7, "name": "lp"}},
        {"path": "/f", "mode": 420, "user": {}},
    ])));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/a", b""),
            chmod("storage.files[0]", "0644", "/a"),
            chown("storage.files[0]", "core:core", "/a"),
            write("storage.files[1]", "/", "/b", b""),
            chmod("storage.files[1]", "0644", "/b"),
            chown("storage.files[1]", "500:501", "/b"),
            write("storage.files[2]", "/", "/c", b""),
            chmod("storage.files[2]", "0644", "/c"),
            write("storage.files[3]", "/", "/d", b""),
            chmod("storage.files[3]", "0644", "/d"),
            chown("storage.files[3]", ":100", "/d"),
            write("storage.files[4]", "/", "/e", b""),
            chmod("storage.files[4]", "0644", "/e"),
            chown("storage.files[4]", "lp", "/e"),
            write("storage.files[5]", "/", "/f", b""),
            chmod("storage.files[5]", "0644", "/f"),
        ],
    );
}

#[test]
fn append_appends() {
    let p = plan(files(
        json!([{"path": "/etc/hosts", "contents": {"source": "data:,x%0A"}, "mode": 420, "append": true}]),
    ));
    assert_actions(
        &p.actions,
        &[
            append("storage.files[0]", "/etc", "/etc/hosts", b"x\n"),
            chmod("storage.files[0]", "0644", "/etc/hosts"),
        ],
    );
}

#[test]
fn kubeadm_script_gets_the_sentinel_and_preflight_flag() {
    let script = "#!/bin/bash\nset -e\nkubeadm init --config /etc/kubeadm.yml\necho kubeadm join x; kubeadm join y\n";
    let doc = files(
        json!([{"path": "/etc/kubeadm.sh", "contents": {"source": format!("data:;base64,{}", b64(script.as_bytes()))}, "mode": 448}]),
    );
    let s = "mkdir -p /run/cluster-api && echo started > /run/cluster-api/capd.bootstrap.started";
    let want = format!(
        "#!/bin/bash\nset -e\n{s} && kubeadm init --ignore-preflight-errors=all --config /etc/kubeadm.yml\n\
         echo {s} && kubeadm join --ignore-preflight-errors=all x; {s} && kubeadm join --ignore-preflight-errors=all y\n"
    );
    let p = plan(doc.clone());
    assert_actions(
        &p.actions,
        &[
            write(
                "storage.files[0]",
                "/etc",
                "/etc/kubeadm.sh",
                want.as_bytes(),
            ),
            chmod("storage.files[0]", "0700", "/etc/kubeadm.sh"),
        ],
    );

    let p = plan_ignition(
        doc.to_string().as_bytes(),
        &Options {
            kubeadm_fixups: false,
            private_cgroupns: false,
        },
    )
    .unwrap();
    let want = format!("#!/bin/bash\nset -e\n{s} && kubeadm init --config /etc/kubeadm.yml\necho {s} && kubeadm join x; {s} && kubeadm join y\n");
    assert_eq!(p.actions[0].stdin.as_deref(), Some(want.as_bytes()));
}

#[test]
fn kubeadm_yml_gets_the_kube_proxy_setting() {
    let cfg = "---\nkind: JoinConfiguration\n";
    let doc = files(
        json!([{"path": "/etc/kubeadm.yml", "contents": {"source": format!("data:;base64,{}", b64(cfg.as_bytes()))}, "mode": 384}]),
    );
    let p = plan(doc.clone());
    let want = "---\nkind: JoinConfiguration\n\n---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nconntrack:\n  # nf_conntrack_max is a host-wide sysctl, read-only inside a node container.\n  maxPerCore: 0\n";
    assert_actions(
        &p.actions,
        &[
            write(
                "storage.files[0]",
                "/etc",
                "/etc/kubeadm.yml",
                want.as_bytes(),
            ),
            chmod("storage.files[0]", "0600", "/etc/kubeadm.yml"),
        ],
    );
    // CAPD does not touch nodeRegistration for Ignition.
    assert!(!String::from_utf8_lossy(p.actions[0].stdin.as_ref().unwrap()).contains("criSocket"));

    let p = plan_ignition(
        doc.to_string().as_bytes(),
        &Options {
            kubeadm_fixups: false,
            private_cgroupns: false,
        },
    )
    .unwrap();
    assert_eq!(p.actions[0].stdin.as_deref(), Some(cfg.as_bytes()));

    // Text that is not YAML still gets the setting appended, as CAPD does.
    let doc = files(
        json!([{"path": "/etc/kubeadm.yml", "contents": {"source": "data:,%3A%20%3A%20%5B"}, "mode": 384}]),
    );
    let p = plan(doc);
    assert!(p.actions[0]
        .stdin
        .as_ref()
        .unwrap()
        .starts_with(b": : [\n---\napiVersion: kubeproxy"));
}

#[test]
fn units_are_written_reloaded_and_enabled() {
    let p = plan(units(json!([
        {"name": "kubeadm.service", "enabled": true, "contents": "[Unit]\nDescription=kubeadm\n\n"},
        {"name": "ntpd.service", "enabled": true},
        {"name": "old.service", "enable": true, "contents": "[Service]\n"},
        {"name": "quiet.service", "contents": "[Service]\n", "enabled": false},
        {"name": "containerd.service", "dropins": [{"name": "10-limits.conf", "contents": "[Service]\nLimitNOFILE=1048576\n"}]},
        {"name": "masked.service", "mask": true},
    ])));
    assert_actions(
        &p.actions,
        &[
            write(
                "systemd.units[0]",
                "/etc/systemd/system",
                "/etc/systemd/system/kubeadm.service",
                b"[Unit]\nDescription=kubeadm",
            ),
            systemctl("systemd.units[0]", "kubeadm.service", &["daemon-reload"]),
            systemctl(
                "systemd.units[0]",
                "kubeadm.service",
                &["enable", "--now", "kubeadm.service"],
            ),
            systemctl(
                "systemd.units[1]",
                "ntpd.service",
                &["enable", "--now", "ntpd.service"],
            ),
            write(
                "systemd.units[2]",
                "/etc/systemd/system",
                "/etc/systemd/system/old.service",
                b"[Service]",
            ),
            systemctl("systemd.units[2]", "old.service", &["daemon-reload"]),
            systemctl(
                "systemd.units[2]",
                "old.service",
                &["enable", "--now", "old.service"],
            ),
            write(
                "systemd.units[3]",
                "/etc/systemd/system",
                "/etc/systemd/system/quiet.service",
                b"[Service]",
            ),
            systemctl("systemd.units[3]", "quiet.service", &["daemon-reload"]),
            write(
                "systemd.units[4].dropins[0]",
                "/etc/systemd/system/containerd.service.d",
                "/etc/systemd/system/containerd.service.d/10-limits.conf",
                b"[Service]\nLimitNOFILE=1048576\n",
            ),
            systemctl("systemd.units[4]", "containerd.service", &["daemon-reload"]),
            systemctl(
                "systemd.units[5]",
                "masked.service",
                &["mask", "masked.service"],
            ),
        ],
    );
}

#[test]
fn files_come_before_units_whatever_the_key_order() {
    let text = r#"{"systemd": {"units": [{"name": "a.service", "enabled": true}]}, "storage": {"files": [{"path": "/f", "mode": 420}]}, "ignition": {"version": "2.2.0"}}"#;
    let p = plan_ignition(text.as_bytes(), &Options::default()).unwrap();
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/f", b""),
            chmod("storage.files[0]", "0644", "/f"),
            systemctl(
                "systemd.units[0]",
                "a.service",
                &["enable", "--now", "a.service"],
            ),
        ],
    );
}

#[test]
fn unsupported_sections_are_reported_and_empty_ones_are_not() {
    let p = plan(json!({
        "ignition": {"version": "2.3.0", "config": {"replace": {"source": "https://example.invalid/x"}}, "security": {"tls": {}}, "timeouts": {}},
        "networkd": {},
        "passwd": {"users": [{"name": "core"}]},
        "storage": {"directories": [{"path": "/d"}], "links": [], "files": [{"path": "/f", "mode": 420, "overwrite": true, "filesystem": "root", "contents": {"source": "data:,", "verification": {"hash": "sha512-00"}}}]},
        "systemd": {"units": [{"name": "x.service", "enabled": false}]},
    }));
    assert_actions(
        &p.actions,
        &[
            write("storage.files[0]", "/", "/f", b""),
            chmod("storage.files[0]", "0644", "/f"),
        ],
    );
    assert_eq!(
        p.ignored,
        [
            "passwd",
            "ignition.config",
            "storage.directories",
            "storage.files[0].contents.verification"
        ]
    );
}

#[test]
fn cabpk_fixture() {
    let p = plan_ignition(
        include_bytes!("../testdata/ignition/cabpk-init.json"),
        &Options::default(),
    )
    .unwrap();
    let descriptions: Vec<&str> = p.actions.iter().map(|a| a.description.as_str()).collect();
    assert_eq!(
        descriptions,
        [
            "storage.files[0]: write /etc/kubernetes/pki/ca.crt",
            "storage.files[0]: chmod 0640 /etc/kubernetes/pki/ca.crt",
            "storage.files[1]: write /etc/kubernetes/pki/ca.key",
            "storage.files[1]: chmod 0600 /etc/kubernetes/pki/ca.key",
            "storage.files[2]: write /etc/motd.d/capd",
            "storage.files[2]: chmod 0644 /etc/motd.d/capd",
            "storage.files[2]: chown 500:500 /etc/motd.d/capd",
            "storage.files[3]: write /etc/kubeadm.sh",
            "storage.files[3]: chmod 0700 /etc/kubeadm.sh",
            "storage.files[4]: write /etc/kubeadm.yml",
            "storage.files[4]: chmod 0600 /etc/kubeadm.yml",
            "systemd.units[0]: write /etc/systemd/system/kubeadm.service",
            "systemd.units[0]: systemctl daemon-reload",
            "systemd.units[0]: systemctl enable --now kubeadm.service",
            "systemd.units[1]: systemctl enable --now ntpd.service",
            "systemd.units[2].dropins[0]: write /etc/systemd/system/containerd.service.d/10-capd.conf",
            "systemd.units[2]: systemctl daemon-reload",
        ]
    );
    assert_eq!(
        p.actions[4].stdin.as_deref(),
        Some(&b"compressed hello\n"[..])
    );
    let script = String::from_utf8(p.actions[7].stdin.clone().unwrap()).unwrap();
    assert!(script.contains("echo started > /run/cluster-api/capd.bootstrap.started && kubeadm init --ignore-preflight-errors=all --config /etc/kubeadm.yml"), "{script}");
    assert_eq!(p.ignored, ["passwd"]);
}

#[test]
fn minimal_fixture() {
    let p = plan_ignition(
        include_bytes!("../testdata/ignition/minimal.json"),
        &Options::default(),
    )
    .unwrap();
    assert_actions(
        &p.actions,
        &[
            append("storage.files[0]", "/etc", "/etc/hello", b"hello world\n"),
            chmod("storage.files[0]", "0644", "/etc/hello"),
        ],
    );
}
