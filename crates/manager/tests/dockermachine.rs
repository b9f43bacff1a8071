//! The DockerMachine controller against the real management plane, Cluster API and
//! Docker engine, with the environment's systemd node image.

mod common;

use capd_api::capi::Machine;
use capd_api::{DockerMachine, HasConditions};
use capd_testenv::{b64, http_get, poll_until, TestEnv};
use common::*;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn docker(env: &TestEnv, args: &[&str]) -> (bool, String) {
    let out = env.docker().args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn exec(env: &TestEnv, node: &str, script: &str) -> String {
    let (ok, out) = docker(env, &["exec", node, "sh", "-c", script]);
    assert!(ok, "exec in {node}: {script}: {out}");
    out
}

/// A fake `kubeadm` (the node image has none): records each call, so tests can count them.
const FAKE_KUBEADM: &str = "#!/bin/sh\necho \"$@\" >> /var/lib/kubeadm-calls\n";

fn provisioned(dm: &DockerMachine) -> bool {
    dm.is_provisioned() && capd_api::conditions::is_true(dm.conditions(), "Ready")
}

fn bootstrap_failed(dm: &DockerMachine) -> Option<String> {
    capd_api::conditions::get(dm.conditions(), "BootstrapCompleted")
        .filter(|c| c.status == "False" && c.reason == "Failed")
        .map(|c| c.message.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_writes_files_runs_commands_and_cluster_api_copies_provider_id() {
    let f = Fixture::new("dm-boot").await;
    let _m = f.manager(&[]).await;
    let cluster = f.cluster("mb").await;
    let data = format!(
        "#cloud-config\nwrite_files:\n- path: /usr/local/bin/kubeadm\n  permissions: '0755'\n  content: |\n{}\n- path: /etc/capd-test/secret.txt\n  permissions: '0600'\n  owner: root:root\n  encoding: b64\n  content: {}\n- path: /etc/capd-test/secret.txt\n  append: true\n  content: \"+more\"\nruncmd:\n- [sh, -c, 'echo argv-form > /etc/capd-test/cmd1']\n- echo shell-form $((40+2)) > /etc/capd-test/cmd2\n- kubeadm init --config /run/kubeadm/kubeadm.yaml\n",
        FAKE_KUBEADM.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"),
        b64(b"top secret")
    );
    f.machine(&cluster, "cp0", true, &data, None).await;
    let dm = f
        .wait_machine("cp0", "provisioned and Ready", LONG, provisioned)
        .await;
    let node = format!("{cluster}-cp0");
    assert_eq!(dm.spec.provider_id, format!("docker:////{node}"));

    assert_eq!(
        exec(&f.env, &node, "cat /etc/capd-test/secret.txt"),
        "top secret+more"
    );
    assert_eq!(
        exec(&f.env, &node, "stat -c %a /etc/capd-test/secret.txt").trim(),
        "600"
    );
    assert_eq!(
        exec(&f.env, &node, "cat /etc/capd-test/cmd1").trim(),
        "argv-form"
    );
    assert_eq!(
        exec(&f.env, &node, "cat /etc/capd-test/cmd2").trim(),
        "shell-form 42"
    );
    let calls = exec(&f.env, &node, "cat /var/lib/kubeadm-calls");
    assert_eq!(calls.lines().count(), 1, "kubeadm ran once: {calls}");
    assert!(
        calls.starts_with("init ") && calls.contains("--config /run/kubeadm/kubeadm.yaml"),
        "{calls}"
    );
    assert_eq!(
        exec(
            &f.env,
            &node,
            "test -f /run/cluster-api/capd.bootstrap.started && echo yes"
        )
        .trim(),
        "yes"
    );
    let st = dm.status.as_ref().unwrap();
    assert!(
        st.addresses.iter().any(|a| a.address == node),
        "hostname address: {:?}",
        st.addresses
    );
    assert!(st.load_balancer_configured);

    // Cluster API copies providerID and addresses onto the Machine.
    let machines: Api<Machine> = Api::namespaced(f.client.clone(), &f.ns);
    poll_until(
        "Cluster API to copy providerID and addresses to the Machine",
        LONG,
        || {
            let (machines, want) = (machines.clone(), format!("docker:////{node}"));
            async move {
                match machines.get("cp0").await {
                    Ok(m)
                        if m.spec.provider_id == want
                            && m.status.as_ref().is_some_and(|s| s.addresses.len() >= 3) =>
                    {
                        Ok(())
                    }
                    Ok(m) => Err(format!(
                        "providerID {:?} status {:?}",
                        m.spec.provider_id, m.status
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

/// Serves TLS on 6443 answering every request with `ok-<node>`: a stand-in API server.
fn responder(name: &str) -> String {
    let body = format!("ok-{name}");
    let script = format!(
        "#!/bin/sh\nopenssl req -x509 -newkey rsa:2048 -nodes -subj /CN={name} -keyout /etc/r.key -out /etc/r.crt -days 1 2>/dev/null\ncat /etc/r.key /etc/r.crt > /etc/r.pem\nprintf 'HTTP/1.0 200 OK\\r\\nContent-Length: {}\\r\\n\\r\\n{body}' > /etc/r.http\nnohup socat OPENSSL-LISTEN:6443,cert=/etc/r.pem,verify=0,fork,reuseaddr SYSTEM:'cat /etc/r.http' >/dev/null 2>&1 &\n",
        body.len()
    );
    format!(
        "#cloud-config\nwrite_files:\n- path: /usr/local/bin/responder\n  permissions: '0755'\n  encoding: b64\n  content: {}\nruncmd:\n- [/usr/local/bin/responder]\n",
        b64(script.as_bytes())
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn control_plane_nodes_join_and_leave_the_load_balancer() {
    let f = Fixture::new("dm-lb").await;
    let _m = f.manager(&[]).await;
    let cluster = f.cluster("ml").await;
    f.machine(&cluster, "cp0", true, &responder("cp0"), None)
        .await;
    f.wait_machine("cp0", "provisioned", LONG, provisioned)
        .await;
    let node = format!("{cluster}-cp0");
    let ip = container_ip(&f.env, &node, "kind");
    let lb = format!("{cluster}-lb");
    let cfg = exec(&f.env, &lb, "cat /usr/local/etc/haproxy/haproxy.cfg");
    assert!(
        cfg.contains(&format!("{ip}:6443")),
        "backend {ip} missing from:\n{cfg}"
    );

    // Reachable through the load balancer's published port on 127.0.0.1.
    let (_, port) = docker(&f.env, &["port", &lb, "6443/tcp"]);
    let port = port
        .lines()
        .next()
        .unwrap_or_default()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    poll_until(
        "an answer from the node through the load balancer",
        LONG,
        || {
            let out = Command::new("curl")
                .args([
                    "-sk",
                    "--max-time",
                    "3",
                    &format!("https://127.0.0.1:{port}/healthz"),
                ])
                .output();
            let res = match out {
                Ok(o) if String::from_utf8_lossy(&o.stdout).contains("ok-cp0") => Ok(()),
                Ok(o) => Err(format!(
                    "curl: {} {}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )),
                Err(e) => Err(format!("curl not runnable: {e}")),
            };
            async move { res }
        },
    )
    .await
    .unwrap();

    // Deleting the machine takes it out of the configuration.
    Api::<Machine>::namespaced(f.client.clone(), &f.ns)
        .delete("cp0", &DeleteParams::default())
        .await
        .unwrap();
    poll_until(
        "the node to leave the load balancer configuration",
        LONG,
        || {
            let (_, cfg) = docker(
                &f.env,
                &["exec", &lb, "cat", "/usr/local/etc/haproxy/haproxy.cfg"],
            );
            let gone = docker(&f.env, &["inspect", &node]).0;
            let res = if !cfg.contains(&format!("{ip}:6443")) && !gone {
                Ok(())
            } else {
                Err(format!("node exists: {gone}"))
            };
            async move { res }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bootstrap_data_fails_with_command_and_output() {
    let f = Fixture::new("dm-bad").await;
    let m = f.manager(&[]).await;
    let cluster = f.cluster("mx").await;
    f.machine(&cluster, "fail", true, "#cloud-config\nruncmd:\n- echo step-one\n- sh -c 'echo boom-output >&2; exit 7'\n- echo never > /never\n", None).await;
    f.machine(&cluster, "undecodable", true, "#cloud-config\nwrite_files:\n- path: /etc/x\n  encoding: b64\n  content: '***not base64***'\n", None).await;

    let dm = f
        .wait_machine("fail", "BootstrapCompleted=False/Failed", LONG, |d| {
            bootstrap_failed(d).is_some()
        })
        .await;
    let msg = bootstrap_failed(&dm).unwrap();
    assert!(
        msg.contains("exit 7") && msg.contains("boom-output") && msg.contains("exited with 7"),
        "{msg}"
    );
    assert!(!dm.is_provisioned());
    let node = format!("{cluster}-fail");
    assert!(
        !docker(&f.env, &["exec", &node, "test", "-f", "/never"]).0,
        "commands after the failing one did not run"
    );

    // A person running `kubectl describe` sees why, as a Warning event.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(f.client.clone(), &f.ns);
    poll_until(
        "a BootstrapFailed warning event on the DockerMachine",
        LONG,
        || {
            let events = events.clone();
            async move {
                let list = events
                    .list(&Default::default())
                    .await
                    .map_err(|e| e.to_string())?;
                list.items
                    .iter()
                    .find(|e| {
                        e.reason.as_deref() == Some("BootstrapFailed")
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("fail")
                    })
                    .filter(|e| {
                        e.type_.as_deref() == Some("Warning")
                            && e.note.as_deref().is_some_and(|n| n.contains("boom-output"))
                    })
                    .map(|_| ())
                    .ok_or_else(|| format!("{} events, none matching", list.items.len()))
            }
        },
    )
    .await
    .unwrap();

    let dm = f
        .wait_machine(
            "undecodable",
            "BootstrapCompleted=False/Failed",
            LONG,
            |d| bootstrap_failed(d).is_some(),
        )
        .await;
    let msg = bootstrap_failed(&dm).unwrap();
    assert!(msg.contains("/etc/x"), "names the file: {msg}");
    assert_eq!(
        http_get(m.health_port, "/healthz").unwrap().0,
        200,
        "the manager keeps running"
    );
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn manager_killed_mid_bootstrap_runs_each_command_once() {
    let f = Fixture::new("dm-kill").await;
    let mut m = f.manager(&[]).await;
    let cluster = f.cluster("mk").await;
    let data =
        "#cloud-config\nruncmd:\n- echo a >> /var/count-a\n- sleep 6\n- echo b >> /var/count-b\n";
    f.machine(&cluster, "k0", true, data, None).await;
    let node = format!("{cluster}-k0");
    // Kill the manager while the `sleep` step runs.
    poll_until("the bootstrap to reach its second step", LONG, || {
        let started = docker(
            &f.env,
            &[
                "exec",
                &node,
                "test",
                "-f",
                "/var/lib/capd-rs/bootstrap/steps/1.started",
            ],
        )
        .0;
        async move {
            if started {
                Ok(())
            } else {
                Err("not yet".into())
            }
        }
    })
    .await
    .unwrap();
    m.kill();
    let _m2 = f.manager(&[]).await;
    f.wait_machine("k0", "provisioned", LONG, provisioned).await;
    assert_eq!(
        exec(&f.env, &node, "cat /var/count-a"),
        "a\n",
        "first command ran once"
    );
    assert_eq!(
        exec(&f.env, &node, "cat /var/count-b"),
        "b\n",
        "last command ran once"
    );
    assert_eq!(
        containers_of(&f.env, &cluster)
            .iter()
            .filter(|c| c.2 == "control-plane")
            .count(),
        1
    );
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_cluster_removes_every_container_and_finalizer() {
    let f = Fixture::new("dm-del").await;
    let _m = f.manager(&[]).await;
    let cluster = f.cluster("md").await;
    f.machine(
        &cluster,
        "cp0",
        true,
        "#cloud-config\nruncmd:\n- 'true'\n",
        None,
    )
    .await;
    f.machine(
        &cluster,
        "w0",
        false,
        "#cloud-config\nruncmd:\n- 'true'\n",
        None,
    )
    .await;
    f.wait_machine("cp0", "provisioned", LONG, provisioned)
        .await;
    f.wait_machine("w0", "provisioned", LONG, provisioned).await;
    assert_eq!(containers_of(&f.env, &cluster).len(), 3);

    f.clusters()
        .delete(&cluster, &DeleteParams::default())
        .await
        .unwrap();
    let (dms, dcs) = (f.dockermachines(), f.dockerclusters());
    poll_until(
        "every object and container of the cluster to be gone",
        Duration::from_secs(180),
        || {
            let left = containers_of(&f.env, &cluster);
            let (dms, dcs) = (dms.clone(), dcs.clone());
            async move {
                let m = dms
                    .list(&Default::default())
                    .await
                    .map(|l| l.items.len())
                    .unwrap_or(99);
                let c = dcs
                    .list(&Default::default())
                    .await
                    .map(|l| l.items.len())
                    .unwrap_or(99);
                if left.is_empty() && m == 0 && c == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "containers {left:?}, dockermachines {m}, dockerclusters {c}"
                    ))
                }
            }
        },
    )
    .await
    .unwrap();
    f.delete_namespace().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_gets_provider_id_in_the_workload_cluster() {
    let f = Fixture::new("dm-node").await;
    let _m = f.manager(&[]).await;
    // A second kube-apiserver plays the workload cluster; the `<cluster>-kubeconfig`
    // Secret points at it.
    let wl = capd_testenv::ExtraApiServer::start(&f.env, &format!("workload-{}", f.ns))
        .await
        .unwrap();
    let kubeconfig = wl.kubeconfig.clone();
    let nodes: Api<Node> = Api::all(wl.client().await.unwrap());

    let cluster = f.cluster("mn").await;
    let node_name = format!("{cluster}-cp0");
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": node_name}})).unwrap(),
        )
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{cluster}-kubeconfig"), "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": b64(kubeconfig.as_bytes())}
    }))
    .unwrap();
    Api::<Secret>::namespaced(f.client.clone(), &f.ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    f.machine(
        &cluster,
        "cp0",
        true,
        "#cloud-config\nruncmd:\n- 'true'\n",
        None,
    )
    .await;

    let want = format!("docker:////{node_name}");
    poll_until(
        "the Node's providerID in the workload cluster",
        LONG,
        || {
            let (nodes, node_name, want) = (nodes.clone(), node_name.clone(), want.clone());
            async move {
                match nodes.get(&node_name).await {
                    Ok(n)
                        if n.spec.as_ref().and_then(|s| s.provider_id.as_deref())
                            == Some(want.as_str()) =>
                    {
                        Ok(())
                    }
                    Ok(n) => Err(format!("spec {:?}", n.spec)),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await
    .unwrap();
    // The DockerMachine's own write-back lands at the end of the same reconcile.
    let dm = f
        .wait_machine("cp0", "spec.providerID", LONG, |d| {
            d.spec.provider_id.starts_with("docker:////")
        })
        .await;
    assert_eq!(dm.spec.provider_id, want);
    assert!(dm
        .finalizers()
        .iter()
        .any(|x| x.starts_with("dockermachine.")));
    f.delete_namespace().await;
}

/// CAPD's rule: the container of a provisioned machine that is gone is reported, not
/// re-created (a new container would be an empty node reporting Ready); remediation is
/// MachineHealthCheck's job.
/// A cluster `name` with one worker `w0` whose bootstrap writes `/var/hello`, provisioned.
async fn one_provisioned_worker(f: &Fixture, name: &str) -> String {
    let cluster = f.cluster(name).await;
    f.machine(
        &cluster,
        "w0",
        false,
        "#cloud-config\nruncmd:\n- echo hello > /var/hello\n",
        None,
    )
    .await;
    f.wait_machine("w0", "provisioned and Ready", LONG, provisioned)
        .await;
    cluster
}

/// Wakes the controller for `machine` with an annotation change (nothing watches the
/// engine's containers).
async fn poke(f: &Fixture, machine: &str) {
    let patch = json!({"metadata": {"annotations": {"capd-rs.test/poke": "1"}}});
    f.dockermachines()
        .patch(
            machine,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioned_machine_whose_container_vanished_is_reported_not_recreated() {
    let f = Fixture::new("dm-gone").await;
    let _m = f.manager(&[]).await;
    let cluster = one_provisioned_worker(&f, "mg").await;
    let node = format!("{cluster}-w0");
    let (ok, out) = docker(&f.env, &["rm", "-f", "-v", &node]);
    assert!(ok, "removing {node}: {out}");

    // No event to wake the controller (nothing watches containers): its periodic look
    // at provisioned machines reports it.
    let dm = f
        .wait_machine(
            "w0",
            "ContainerProvisioned=False, container gone",
            LONG,
            |dm| {
                capd_api::conditions::get(dm.conditions(), "ContainerProvisioned").is_some_and(
                    |c| c.status == "False" && c.message.contains("does not exist anymore"),
                )
            },
        )
        .await;
    assert!(
        !capd_api::conditions::is_true(dm.conditions(), "Ready"),
        "Ready must not stay True: {:?}",
        dm.status
    );
    let (exists, _) = docker(&f.env, &["inspect", &node]);
    assert!(!exists, "{node} was re-created");
    f.delete_namespace().await;
}

/// A provisioned machine's node container stopped behind the provider's back: it is left
/// to the engine's restart policy for a moment (starting it while an engine that just came
/// back is doing so can wedge it), reported ContainerProvisioned=False meanwhile, then
/// started again here with its disk, and the machine is Ready again.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_node_container_is_started_again_after_the_restart_policy_grace() {
    let f = Fixture::new("dm-stopped").await;
    let _m = f.manager(&[]).await;
    let cluster = one_provisioned_worker(&f, "ms").await;
    let node = format!("{cluster}-w0");
    let (_, id_before) = docker(&f.env, &["inspect", "--format", "{{.Id}}", &node]);
    let (ok, out) = docker(&f.env, &["stop", "-t", "1", &node]);
    assert!(ok, "stopping {node}: {out}");

    poke(&f, "w0").await;
    f.wait_machine(
        "w0",
        "ContainerProvisioned=False, left to the restart policy",
        LONG,
        |dm| {
            capd_api::conditions::get(dm.conditions(), "ContainerProvisioned").is_some_and(|c| {
                c.status == "False" && c.message.contains("engine's restart policy")
            }) && !capd_api::conditions::is_true(dm.conditions(), "Ready")
        },
    )
    .await;
    f.wait_machine("w0", "Ready again", LONG, |dm| {
        provisioned(dm) && capd_api::conditions::is_true(dm.conditions(), "Ready")
    })
    .await;
    let (_, state) = docker(
        &f.env,
        &["inspect", "--format", "{{.Id}} {{.State.Running}}", &node],
    );
    assert_eq!(
        state.trim(),
        format!("{} true", id_before.trim()),
        "the same container, running"
    );
    // Its disk kept what the bootstrap wrote.
    assert_eq!(exec(&f.env, &node, "cat /var/hello").trim(), "hello");
    f.delete_namespace().await;
}

/// Bootstraps run in the background (as CAPD's): with one DockerMachine worker, a
/// bootstrap that has not finished does not keep a second machine from being created,
/// bootstrapped and reported Ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_bootstrap_does_not_hold_the_only_reconcile_worker() {
    let f = Fixture::new("dm-bg").await;
    let _m = f.manager(&["--dockermachine-concurrency=1"]).await;
    let cluster = f.cluster("bg").await;
    // g0's bootstrap waits until the test lets it go.
    let gated = "#cloud-config\nruncmd:\n- while [ ! -f /var/go ]; do sleep 0.2; done\n- echo g0 >> /var/count\n";
    f.machine(&cluster, "g0", false, gated, None).await;
    let g0 = format!("{cluster}-g0");
    poll_until("g0's bootstrap to wait for the test", LONG, || {
        let started = docker(
            &f.env,
            &[
                "exec",
                &g0,
                "test",
                "-f",
                "/var/lib/capd-rs/bootstrap/steps/0.started",
            ],
        )
        .0;
        async move {
            if started {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        }
    })
    .await
    .unwrap();

    f.machine(
        &cluster,
        "g1",
        false,
        "#cloud-config\nruncmd:\n- echo g1 >> /var/count\n",
        None,
    )
    .await;
    f.wait_machine(
        "g1",
        "provisioned while g0 still bootstraps",
        LONG,
        provisioned,
    )
    .await;
    let dm0 = f.dockermachines().get("g0").await.unwrap();
    let bootstrap = dm0
        .conditions()
        .iter()
        .find(|c| c.type_ == "BootstrapCompleted")
        .map(|c| (c.status.clone(), c.message.clone()));
    assert_eq!(
        bootstrap,
        Some(("False".to_string(), "bootstrapping".to_string())),
        "g0 reports its running bootstrap"
    );
    assert!(!provisioned(&dm0));

    exec(&f.env, &g0, "touch /var/go");
    f.wait_machine("g0", "provisioned once let go", LONG, provisioned)
        .await;
    assert_eq!(exec(&f.env, &g0, "cat /var/count"), "g0\n", "ran once");
    assert_eq!(
        exec(&f.env, &format!("{cluster}-g1"), "cat /var/count"),
        "g1\n"
    );
    f.delete_namespace().await;
}
