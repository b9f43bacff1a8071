//! The template renderer against Go's own text/template (the Go toolchain the
//! test environment uses): the same templates and data must give byte-identical
//! output, or both must fail.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use capd_loadbalancer::{config, BackendServer, ConfigData, DEFAULT_TEMPLATE};

const TEMPLATES: &[&str] = &[
    DEFAULT_TEMPLATE,
    // CAPD's own default template shape: trim markers inside lines.
    "frontend control-plane\n  bind *:{{ .FrontendControlPlanePort }}\n  {{ if .IPv6 -}}\n  bind :::{{ .FrontendControlPlanePort }};\n  {{- end }}\n  default_backend kube-apiservers\n\nbackend kube-apiservers\n  option httpchk GET /healthz\n  {{range $server, $backend := .BackendServers}}\n  server {{ $server }} {{ JoinHostPort $backend.Address $.BackendControlPlanePort }} weight {{ $backend.Weight }} check check-ssl verify none resolvers docker resolve-prefer {{ if $.IPv6 -}} ipv6 {{- else -}} ipv4 {{- end }}\n  {{- end}}\n",
    "{{/* comment */}}a {{- /* trimmed comment */ -}} b\n",
    "{{ range .BackendServers }}{{ .Address }}/{{ .Weight }} {{ else }}none{{ end }}",
    "{{ range $i, $s := .BackendServers }}{{ $i }}={{ $s.Weight }};{{ end }}",
    "{{ if eq .FrontendControlPlanePort \"6443\" }}default{{ else if .IPv6 }}v6{{ else }}other{{ end }}",
    "{{ with .BackendServers }}{{ len . }} servers{{ else }}empty{{ end }}",
    "{{ $p := .BackendControlPlanePort }}{{ range .BackendServers }}{{ JoinHostPort .Address $p }} {{ end }}",
    "{{ printf \"%s:%d %q %v\" .FrontendControlPlanePort 8404 .BackendControlPlanePort .IPv6 }}",
    "{{ if eq (len .BackendServers) 2 }}{{ index .BackendServers \"cp-a\" }}|{{ (index .BackendServers \"cp-b\").Address }}{{ end }}",
    "{{ if and .IPv6 (gt (len .BackendServers) 0) }}v6 with servers{{ end }}{{ if or .IPv6 (not .IPv6) }}!{{ end }}",
    "{{ .FrontendControlPlanePort | printf \"port=%s\" }}",
    "{{ .BackendServers.missing }}",
    "{{ print \"a\" 1 2 \"b\" }}{{ println 1 2 }}",
    "  {{- 3 -}}  \n{{ -3 }}",
    "{{ .NoSuchField }}",
    "{{ if .IPv6 }}unclosed",
    "{{ nosuchfunc . }}",
    "{{ range $k, $v := .BackendServers }}{{ $k }}{{ end }}{{ $k }}",
];

fn data() -> Vec<ConfigData> {
    let server = |a: &str, w: i64| BackendServer {
        address: a.to_string(),
        weight: w,
    };
    vec![
        ConfigData {
            backend_servers: BTreeMap::from([
                ("cp-b".to_string(), server("172.18.0.3", 100)),
                ("cp-a".to_string(), server("172.18.0.2", 50)),
            ]),
            ..ConfigData::default()
        },
        ConfigData {
            frontend_control_plane_port: 7777,
            backend_servers: BTreeMap::from([("n1".to_string(), server("fd00::2", 100))]),
            ipv6: true,
            ..ConfigData::default()
        },
        ConfigData::default(),
    ]
}

#[test]
fn renders_like_go_text_template() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go_compat");
    let mut child = Command::new("go")
        .args(["run", "."])
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Go toolchain (installed with the test environment) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(TEMPLATES).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "go run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();

    let mut mismatches = Vec::new();
    for (t, template) in TEMPLATES.iter().enumerate() {
        for (d, data) in data().iter().enumerate() {
            let ours = config::render(data, Some(template)).unwrap_or_else(|_| "ERROR".to_string());
            if ours != go[t][d] {
                mismatches.push(format!(
                    "template #{t} data #{d}:\n go:   {:?}\n ours: {:?}",
                    go[t][d], ours
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
