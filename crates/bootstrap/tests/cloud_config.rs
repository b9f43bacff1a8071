//! cloud-config: every supported key and encoding, CAPD's order and kubeadm handling.

mod common;

use capd_bootstrap::{plan_cloud_config, ActionKind, Options, Plan};
use common::*;

fn plan(doc: &str) -> Plan {
    plan_cloud_config(doc.as_bytes(), &Options::default()).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn no_fixups() -> Options {
    Options {
        kubeadm_fixups: false,
        private_cgroupns: false,
    }
}

#[test]
fn plain_file_with_defaults_is_one_write() {
    let p = plan("write_files:\n- path: /etc/motd\n  content: hello\n");
    assert_actions(
        &p.actions,
        &[write("write_files[0]", "/etc", "/etc/motd", b"hello")],
    );
    assert!(p.ignored.is_empty());
}

#[test]
fn block_scalar_content_keeps_its_newline() {
    let p = plan(
        "write_files:\n-   path: /etc/a/b/c.conf\n    content: |\n      line 1\n      line 2\n",
    );
    assert_actions(
        &p.actions,
        &[write(
            "write_files[0]",
            "/etc/a/b",
            "/etc/a/b/c.conf",
            b"line 1\nline 2\n",
        )],
    );
}

#[test]
fn missing_content_writes_an_empty_file() {
    let p = plan("write_files:\n- path: /etc/empty\n- path: /etc/null\n  content:\n");
    assert_actions(
        &p.actions,
        &[
            write("write_files[0]", "/etc", "/etc/empty", b""),
            write("write_files[1]", "/etc", "/etc/null", b""),
        ],
    );
}

#[test]
fn permissions_other_than_0644_add_chmod() {
    let p = plan(
        "write_files:\n\
         - {path: /a, content: x, permissions: '0600'}\n\
         - {path: /b, content: x, permissions: '0644'}\n\
         - {path: /c, content: x, permissions: '755'}\n\
         - {path: /d, content: x, permissions: '0o4750'}\n\
         - {path: /e, content: x, permissions: ''}\n\
         - {path: /f, content: x, permissions: 0640}\n",
    );
    assert_actions(
        &p.actions,
        &[
            write("write_files[0]", "/", "/a", b"x"),
            chmod("write_files[0]", "0600", "/a"),
            write("write_files[1]", "/", "/b", b"x"),
            write("write_files[2]", "/", "/c", b"x"),
            chmod("write_files[2]", "0755", "/c"),
            write("write_files[3]", "/", "/d", b"x"),
            chmod("write_files[3]", "4750", "/d"),
            write("write_files[4]", "/", "/e", b"x"),
            // An unquoted 0640 is not an integer in YAML 1.2: it stays the string "0640".
            write("write_files[5]", "/", "/f", b"x"),
            chmod("write_files[5]", "0640", "/f"),
        ],
    );
}

#[test]
fn owner_other_than_root_adds_chown() {
    let p = plan(
        "write_files:\n\
         - {path: /a, content: x, owner: 'nobody:nogroup'}\n\
         - {path: /b, content: x, owner: root:root}\n\
         - {path: /c, content: x, owner: ' 1000:1000 '}\n\
         - {path: /d, content: x, owner: '', permissions: '0400'}\n",
    );
    assert_actions(
        &p.actions,
        &[
            write("write_files[0]", "/", "/a", b"x"),
            chown("write_files[0]", "nobody:nogroup", "/a"),
            write("write_files[1]", "/", "/b", b"x"),
            write("write_files[2]", "/", "/c", b"x"),
            chown("write_files[2]", "1000:1000", "/c"),
            write("write_files[3]", "/", "/d", b"x"),
            chmod("write_files[3]", "0400", "/d"),
        ],
    );
}

#[test]
fn append_uses_the_append_script() {
    let p = plan("write_files:\n- {path: /etc/hosts, content: \"10.0.0.1 a\\n\", append: true}\n- {path: /etc/x, content: y, append: false}\n");
    assert_actions(
        &p.actions,
        &[
            append("write_files[0]", "/etc", "/etc/hosts", b"10.0.0.1 a\n"),
            write("write_files[1]", "/etc", "/etc/x", b"y"),
        ],
    );
}

#[test]
fn every_encoding_name_decodes() {
    let body = b"some \x00 binary \xff content\n";
    let b64_plain = b64(body);
    let b64_gz = b64(&gzip(body));
    let cases: &[(&str, &str)] = &[
        ("b64", &b64_plain),
        ("base64", &b64_plain),
        (" BASE64 ", &b64_plain),
        ("gz+b64", &b64_gz),
        ("gz+base64", &b64_gz),
        ("gzip+b64", &b64_gz),
        ("gzip+base64", &b64_gz),
        ("GZIP+BASE64", &b64_gz),
    ];
    for (encoding, content) in cases {
        let doc =
            format!("write_files:\n- path: /f\n  encoding: '{encoding}'\n  content: {content}\n");
        let p = plan(&doc);
        assert_actions(&p.actions, &[write("write_files[0]", "/", "/f", body)]);
    }
    for encoding in ["text/plain", "plain", "", "TEXT/PLAIN"] {
        let doc =
            format!("write_files:\n- path: /f\n  encoding: '{encoding}'\n  content: aGVsbG8=\n");
        let p = plan(&doc);
        assert_actions(
            &p.actions,
            &[write("write_files[0]", "/", "/f", b"aGVsbG8=")],
        );
    }
}

#[test]
fn base64_content_may_be_wrapped_in_a_block_scalar() {
    let p = plan("write_files:\n- path: /f\n  encoding: base64\n  content: |\n    aGVs\n    bG8gd29y\n    bGQ=\n");
    assert_actions(
        &p.actions,
        &[write("write_files[0]", "/", "/f", b"hello world")],
    );
}

#[test]
fn gzip_only_encoding_reads_the_string_bytes() {
    // A YAML string cannot hold raw gzip bytes (0x8b is not UTF-8), so `gz`
    // content always fails to decompress; the error names the file.
    let err = plan_cloud_config(
        b"write_files:\n- {path: /z, encoding: gz, content: abc}\n",
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, capd_bootstrap::Error::InvalidGzip { path, .. } if path == "/z"),
        "{err:?}"
    );
}

#[test]
fn paths_are_trimmed_made_absolute_and_never_interpolated() {
    let p = plan(
        "write_files:\n\
         - {path: '  /etc/padded  ', content: a}\n\
         - {path: etc/relative, content: b}\n\
         - {path: \"/tmp/it's $(touch /x) `id`; rm -rf /\\n/f\", content: c}\n",
    );
    assert_actions(
        &p.actions,
        &[
            write("write_files[0]", "/etc", "/etc/padded", b"a"),
            write("write_files[1]", "/etc", "/etc/relative", b"b"),
            write(
                "write_files[2]",
                "/tmp/it's $(touch /x) `id`; rm -rf /\n",
                "/tmp/it's $(touch /x) `id`; rm -rf /\n/f",
                b"c",
            ),
        ],
    );
}

#[test]
fn runcmd_strings_run_in_a_shell_and_lists_are_argv() {
    let p = plan(
        "runcmd:\n\
         - echo \"hi\" > /tmp/x\n\
         - [ls, -l, /etc]\n\
         - [sleep, 5]\n\
         - [\"/bin/sh\", \"-c\", \"echo a && echo b\"]\n",
    );
    assert_actions(
        &p.actions,
        &[
            run(
                0,
                false,
                &["/bin/sh", "-c", "echo \"hi\" > /tmp/x"],
                "/bin/sh -c 'echo \"hi\" > /tmp/x'",
            ),
            run(1, false, &["ls", "-l", "/etc"], "ls -l /etc"),
            run(2, false, &["sleep", "5"], "sleep 5"),
            run(
                3,
                false,
                &["/bin/sh", "-c", "echo a && echo b"],
                "/bin/sh -c 'echo a && echo b'",
            ),
        ],
    );
}

#[test]
fn modules_run_in_document_order() {
    // CAPD reads the document top to bottom: runcmd before write_files runs first.
    let p =
        plan("runcmd:\n- [touch, /a]\nwrite_files:\n- {path: /b, content: x}\nbootcmd:\n- echo\n");
    assert_actions(
        &p.actions,
        &[
            run(0, false, &["touch", "/a"], "touch /a"),
            write("write_files[0]", "/", "/b", b"x"),
        ],
    );
    assert_eq!(p.ignored, ["bootcmd"]);

    let p = plan("write_files:\n- {path: /b, content: x}\nruncmd:\n- [touch, /a]\n");
    assert_actions(
        &p.actions,
        &[
            write("write_files[0]", "/", "/b", b"x"),
            run(0, false, &["touch", "/a"], "touch /a"),
        ],
    );
}

#[test]
fn other_modules_and_entry_keys_are_reported_as_ignored() {
    let p = plan(
        "#cloud-config\nbootcmd: [echo]\nntp: {enabled: true}\nwrite_files:\n- {path: /a, defer: true, content: x}\nusers: []\npackages: [jq]\n",
    );
    assert_actions(&p.actions, &[write("write_files[0]", "/", "/a", b"x")]);
    assert_eq!(
        p.ignored,
        [
            "bootcmd",
            "ntp",
            "write_files[0].defer",
            "users",
            "packages"
        ]
    );
}

#[test]
fn empty_documents_and_null_modules_do_nothing() {
    for doc in [
        "",
        "#cloud-config\n",
        "---\n",
        "write_files:\nruncmd:\n",
        "write_files: []\nruncmd: []\n",
    ] {
        let p = plan(doc);
        assert_eq!(p, Plan::default(), "{doc:?}");
    }
}

#[test]
fn kubeadm_init_string_gets_the_sentinel_and_preflight_flag() {
    let p = plan("runcmd:\n- 'kubeadm init --config /run/kubeadm/kubeadm.yaml  && echo success > /run/cluster-api/bootstrap-success.complete'\n");
    let script = format!(
        "kubeadm init {PREFLIGHT} --config /run/kubeadm/kubeadm.yaml  && echo success > /run/cluster-api/bootstrap-success.complete"
    );
    assert_actions(
        &p.actions,
        &[
            sentinel(),
            run(
                0,
                true,
                &["/bin/sh", "-c", &script],
                &format!("/bin/sh -c '{script}'"),
            ),
        ],
    );
}

#[test]
fn kubeadm_join_argv_gets_the_sentinel_and_preflight_flag() {
    let p = plan("runcmd:\n- [kubeadm, join, --config, /run/kubeadm/kubeadm-join-config.yaml]\n- [/usr/bin/kubeadm, init]\n");
    assert_actions(
        &p.actions,
        &[
            sentinel(),
            run(
                0,
                true,
                &[
                    "kubeadm",
                    "join",
                    PREFLIGHT,
                    "--config",
                    "/run/kubeadm/kubeadm-join-config.yaml",
                ],
                &format!("kubeadm join {PREFLIGHT} --config /run/kubeadm/kubeadm-join-config.yaml"),
            ),
            sentinel(),
            run(
                1,
                true,
                &["/usr/bin/kubeadm", "init", PREFLIGHT],
                &format!("/usr/bin/kubeadm init {PREFLIGHT}"),
            ),
        ],
    );
}

#[test]
fn only_kubeadm_init_and_join_are_detected() {
    let p = plan("runcmd:\n- [kubeadm, version]\n- kubeadm reset -f\n- [echo, kubeadm init]\n");
    assert!(
        p.actions.iter().all(|a| a.kind != ActionKind::Sentinel),
        "{:#?}",
        p.actions
    );
    assert_eq!(p.actions.len(), 3);
    assert_eq!(p.actions[2].argv, s(&["echo", "kubeadm init"]));
}

#[test]
fn without_fixups_kubeadm_is_left_alone_but_the_sentinel_is_written() {
    let p = plan_cloud_config(
        b"runcmd:\n- kubeadm join --config /x\n- [kubeadm, init]\n",
        &no_fixups(),
    )
    .unwrap();
    assert_actions(
        &p.actions,
        &[
            sentinel(),
            run(
                0,
                true,
                &["/bin/sh", "-c", "kubeadm join --config /x"],
                "/bin/sh -c 'kubeadm join --config /x'",
            ),
            sentinel(),
            run(1, true, &["kubeadm", "init"], "kubeadm init"),
        ],
    );
}

const INIT_V1BETA4: &str = "---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: demo   # a comment that stays
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: 'on'
  kubeletExtraArgs:
  - name: fail-swap-on
    value: \"true\"
  - name: v
    value: \"2\"
";

const INIT_V1BETA4_PATCHED: &str = r#"---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: demo   # a comment that stays
---
{
  "apiVersion": "kubeadm.k8s.io/v1beta4",
  "kind": "InitConfiguration",
  "nodeRegistration": {
    "name": "on",
    "kubeletExtraArgs": [
      {
        "name": "fail-swap-on",
        "value": "false"
      },
      {
        "name": "v",
        "value": "2"
      },
      {
        "name": "image-gc-high-threshold",
        "value": "100"
      },
      {
        "name": "eviction-hard",
        "value": "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"
      },
      {
        "name": "cgroup-root",
        "value": "/kubelet"
      },
      {
        "name": "runtime-cgroups",
        "value": "/system.slice/containerd.service"
      }
    ],
    "criSocket": "unix:///var/run/containerd/containerd.sock"
  }
}

---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack:
  # nf_conntrack_max is a host-wide sysctl, read-only inside a node container.
  maxPerCore: 0
"#;

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kubeadm_init_config_is_patched_for_docker() {
    let doc = format!("write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  permissions: '0640'\n  content: |\n{}\n", indent(INIT_V1BETA4));
    let p = plan(&doc);
    assert_actions(
        &p.actions,
        &[
            write(
                "write_files[0]",
                "/run/kubeadm",
                "/run/kubeadm/kubeadm.yaml",
                INIT_V1BETA4_PATCHED.as_bytes(),
            ),
            chmod("write_files[0]", "0640", "/run/kubeadm/kubeadm.yaml"),
        ],
    );
    // The patched text is still YAML that kubeadm reads as the same documents.
    let text = std::str::from_utf8(p.actions[0].stdin.as_ref().unwrap()).unwrap();
    let kinds: Vec<String> = serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| {
            let v = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(d).unwrap();
            v["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ClusterConfiguration",
            "InitConfiguration",
            "KubeProxyConfiguration"
        ]
    );
}

#[test]
fn kubeadm_v1beta3_join_config_gets_map_args_and_keeps_a_set_cri_socket() {
    let join = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\nnodeRegistration:\n  criSocket: unix:///run/other.sock\n";
    let doc = format!(
        "write_files:\n- path: /run/kubeadm/kubeadm-join-config.yaml\n  content: |\n{}\n",
        indent(join)
    );
    let p = plan_cloud_config(
        doc.as_bytes(),
        &Options {
            kubeadm_fixups: true,
            private_cgroupns: false,
        },
    )
    .unwrap();
    let want = r#"{
  "apiVersion": "kubeadm.k8s.io/v1beta3",
  "kind": "JoinConfiguration",
  "nodeRegistration": {
    "criSocket": "unix:///run/other.sock",
    "kubeletExtraArgs": {
      "image-gc-high-threshold": "100",
      "eviction-hard": "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%",
      "fail-swap-on": "false"
    }
  }
}
"#;
    assert_actions(
        &p.actions,
        &[write(
            "write_files[0]",
            "/run/kubeadm",
            "/run/kubeadm/kubeadm-join-config.yaml",
            want.as_bytes(),
        )],
    );
}

#[test]
fn an_existing_kube_proxy_config_is_completed_not_duplicated() {
    let cfg = "kind: InitConfiguration\napiVersion: kubeadm.k8s.io/v1beta4\nnodeRegistration: {criSocket: x, kubeletExtraArgs: []}\n---\nkind: KubeProxyConfiguration\nmode: ipvs\n";
    let doc = format!(
        "write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  content: |\n{}\n",
        indent(cfg)
    );
    let p = plan_cloud_config(
        doc.as_bytes(),
        &Options {
            kubeadm_fixups: true,
            private_cgroupns: false,
        },
    )
    .unwrap();
    let text = String::from_utf8(p.actions[0].stdin.clone().unwrap()).unwrap();
    assert_eq!(text.matches("KubeProxyConfiguration").count(), 1, "{text}");
    assert!(text.contains("\"mode\": \"ipvs\""), "{text}");
    assert!(text.contains("\"maxPerCore\": 0"), "{text}");
}

#[test]
fn without_fixups_kubeadm_files_are_written_verbatim() {
    let doc = format!(
        "write_files:\n- path: /run/kubeadm/kubeadm.yaml\n  content: |\n{}\n",
        indent(INIT_V1BETA4)
    );
    let p = plan_cloud_config(doc.as_bytes(), &no_fixups()).unwrap();
    assert_actions(
        &p.actions,
        &[write(
            "write_files[0]",
            "/run/kubeadm",
            "/run/kubeadm/kubeadm.yaml",
            INIT_V1BETA4.as_bytes(),
        )],
    );
}

#[test]
fn encoded_kubeadm_config_is_patched_after_decoding() {
    let doc = format!(
        "write_files:\n- path: /run/kubeadm/kubeadm-join-config.yaml\n  encoding: gzip+base64\n  content: {}\n",
        b64(&gzip(b"kind: JoinConfiguration\n"))
    );
    let p = plan(&doc);
    let text = String::from_utf8(p.actions[0].stdin.clone().unwrap()).unwrap();
    assert!(
        text.contains("\"criSocket\": \"unix:///var/run/containerd/containerd.sock\""),
        "{text}"
    );
}

#[test]
fn cabpk_init_fixture() {
    let p = plan(include_str!("../testdata/cloud-config/cabpk-init.yaml"));
    let kinds: Vec<String> = p
        .actions
        .iter()
        .map(|a| a.description.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "write_files[0]",
            "write_files[0]",
            "write_files[1]",
            "write_files[1]",
            "write_files[2]",
            "write_files[2]",
            "write_files[3]",
            "write_files[3]",
            "write_files[4]",
            "write_files[5]",
            "write_files[5]",
            "write_files[6]",
            "write_files[6]",
            "runcmd[0]",
            "record that kubeadm started",
            "runcmd[1]",
            "runcmd[2]",
        ]
    );
    assert_eq!(
        p.actions[8],
        write(
            "write_files[4]",
            "/etc/sysctl.d",
            "/etc/sysctl.d/99-capd.conf",
            b"fs.inotify.max_user_watches = 1048576\n"
        )
    );
    assert_eq!(p.actions[14], sentinel());
    assert_eq!(p.ignored, ["ntp", "users"]);
}

#[test]
fn cabpk_join_fixture() {
    let p = plan(include_str!("../testdata/cloud-config/cabpk-join.yaml"));
    assert_eq!(p.actions.len(), 6);
    assert_eq!(p.actions[4], sentinel());
    assert!(p.actions[5].argv[2].starts_with(&format!("kubeadm join {PREFLIGHT} --config")));
    assert_eq!(p.ignored, ["bootcmd"]);
}

#[test]
fn order_and_quoting_fixture() {
    let p = plan(include_str!(
        "../testdata/cloud-config/order-and-quoting.yaml"
    ));
    let path = "/tmp/it's a $(dir)/f;x";
    assert_actions(
        &p.actions,
        &[
            sentinel(),
            run(
                0,
                true,
                &[
                    "kubeadm",
                    "join",
                    PREFLIGHT,
                    "--config",
                    "/run/kubeadm/kubeadm-join-config.yaml",
                ],
                &format!("kubeadm join {PREFLIGHT} --config /run/kubeadm/kubeadm-join-config.yaml"),
            ),
            run(
                1,
                false,
                &["/bin/sh", "-c", "echo done"],
                "/bin/sh -c 'echo done'",
            ),
            append("write_files[0]", "/etc", "/etc/relative.conf", b"a=1\n"),
            write("write_files[1]", "/tmp/it's a $(dir)", path, b"hello"),
            chmod("write_files[1]", "0755", path),
            chown("write_files[1]", "nobody:nogroup", path),
        ],
    );
    assert_eq!(p.ignored, ["write_files[1].defer"]);
    assert_eq!(
        p.actions[4].command_line(),
        r#"/bin/sh -c 'mkdir -p -- "$1" && cat > "$2"' capd-write-file '/tmp/it'\''s a $(dir)' '/tmp/it'\''s a $(dir)/f;x'"#
    );
}

#[test]
fn a_leading_document_marker_and_comments_are_fine() {
    // The shape of CAPD's own TestRealUseCase input.
    let p = plan("\n#cloud-config\n\n# from 1 files\n# part-001\n\n---\nwrite_files:\n-   content: aGk=\n    encoding: base64\n    owner: root:root\n    path: /etc/kubernetes/pki/ca.crt\n    permissions: '0640'\n");
    assert_actions(
        &p.actions,
        &[
            write(
                "write_files[0]",
                "/etc/kubernetes/pki",
                "/etc/kubernetes/pki/ca.crt",
                b"hi",
            ),
            chmod("write_files[0]", "0640", "/etc/kubernetes/pki/ca.crt"),
        ],
    );
}
