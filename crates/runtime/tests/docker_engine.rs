//! Every trait method against the real engine of the test environment
//! (`cargo xtask up`), or the engine named by `CAPD_RS_TEST_DOCKER_HOST`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use capd_runtime::{
    ContainerRuntime, ContainerState, DockerRuntime, Error, ExecRequest, LabelFilter, Mount,
    ObjectKind, PortPublish, RestartPolicy,
};
use capd_testenv::{poll_until, unique_name};
use common::*;
use futures::StreamExt;

const HAPROXY_CFG: &str = "/usr/local/etc/haproxy/haproxy.cfg";

/// Written into the container before it starts: the image's own placeholder asks
/// for more file descriptors than some hosts allow.
const TEST_CFG: &str = "global
  no strict-limits
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend stats
  bind *:8404
  http-request return status 200 content-type text/plain string ok if { path /healthz }
";

/// The body of a GET on 127.0.0.1:`port` (blocking I/O off the async workers).
async fn http_get(port: u16, path: &str) -> Result<String, String> {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || capd_testenv::http_get(port, &path))
        .await
        .map_err(|e| e.to_string())?
        .map(|(_, body)| body)
        .map_err(|e| e.to_string())
}

async fn state_of(rt: &dyn ContainerRuntime, name: &str) -> Result<ContainerState, String> {
    match rt.inspect_container(name).await {
        Ok(Some(i)) => Ok(i.state),
        Ok(None) => Err("no container".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn engine_info_negotiates_an_api_version() {
    let e = engine();
    let info = e.rt.engine_info().await.unwrap();
    eprintln!("engine: {info:?}");
    assert!(!info.version.is_empty());
    let (major, minor) = info.api_version.split_once('.').unwrap();
    assert_eq!(major, "1");
    assert!(minor.parse::<u32>().unwrap() >= 40, "{info:?}");
}

#[tokio::test]
async fn container_lifecycle_exec_files_and_signals() {
    let e = engine();
    let rt = &e.rt;
    let network = test_network(rt).await;
    let cluster = unique_name("rt");
    let name = format!("{cluster}-node");
    let hostdir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::write(hostdir.join("f"), "hello").unwrap();

    let spec = test_container(&name, e.haproxy_image(), &cluster)
        .env("FOO", "bar")
        .mount(Mount::new(hostdir.display().to_string(), "/hostdir", true))
        .volume("/data")
        .tmpfs("/scratch", "size=1m")
        .publish(PortPublish::loopback_random(8404))
        .privileged_unconfined()
        .restart(RestartPolicy::OnFailure { max_retries: 1 })
        .network(&network)
        .entrypoint([
            "sh",
            "-c",
            &format!("echo started; exec haproxy -W -db -f {HAPROXY_CFG}"),
        ])
        .stop_signal("SIGUSR1");

    with_cleanup(rt, std::slice::from_ref(&name), async {
        let id = rt.create_container(&spec).await.unwrap();
        let created = rt.inspect_container(&name).await.unwrap().unwrap();
        assert_eq!(created.state, ContainerState::Created);
        // Files can go into a container before it first starts.
        rt.write_file(&name, HAPROXY_CFG, TEST_CFG.as_bytes(), 0o644)
            .await
            .unwrap();
        rt.start_container(&name).await.unwrap();

        // Inspect: state, address on the network, published port, labels.
        let info = rt.inspect_container(&name).await.unwrap().unwrap();
        assert_eq!(info.id, id);
        assert_eq!(info.name, name);
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(info.label(TEST_LABEL), Some("true"));
        assert!(
            info.addresses(Some(&network))
                .and_then(|a| a.ipv4)
                .is_some(),
            "{info:?}"
        );
        let port = info.host_port(8404).expect("8404 published");
        let body = poll_until(
            "stats frontend to answer on the published port",
            Duration::from_secs(20),
            || async {
                // The engine's port proxy accepts before HAProxy listens: wait for an answer.
                http_get(port, "/healthz").await.and_then(|b| {
                    if b.ends_with("ok") {
                        Ok(b)
                    } else {
                        Err(b)
                    }
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(body.trim(), "ok", "the stats frontend answers");

        // Exec: env, hostname, bind mount, stderr, exit code.
        let script =
            r#"printf '%s|' "$FOO" "$(hostname)" "$(cat /hostdir/f)"; echo oops >&2; exit 3"#;
        let out = rt
            .exec(&name, ExecRequest::new(["sh", "-c", script]))
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy(), format!("bar|{name}|hello|"));
        assert_eq!(out.stderr_lossy(), "oops\n");
        assert_eq!(out.exit_code, 3);
        match rt
            .exec_checked(&name, ExecRequest::new(["sh", "-c", script]))
            .await
        {
            Err(Error::ExecFailed {
                exit_code: 3,
                output_tail,
                command,
                container,
            }) => {
                assert!(output_tail.contains("oops"), "{output_tail}");
                assert!(command.starts_with("sh -c"), "{command}");
                assert_eq!(container, name);
            }
            other => panic!("expected ExecFailed, got {other:?}"),
        }

        // Privileged, unconfined, tmpfs, anonymous volume, read-only mount.
        let checks = r#"grep -q '^Seccomp:[[:space:]]*0' /proc/self/status && echo seccomp-off;
            cap=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status);
            [ $(( 0x$cap >> 21 & 1 )) = 1 ] && echo sys-admin;
            grep -q ' /scratch tmpfs ' /proc/mounts && echo tmpfs;
            grep -q ' /data ' /proc/mounts && echo volume;
            touch /hostdir/x 2>/dev/null || echo read-only"#;
        let out = rt
            .exec_checked(&name, ExecRequest::new(["sh", "-c", checks]))
            .await
            .unwrap();
        assert_eq!(
            out.stdout_lossy().split_whitespace().collect::<Vec<_>>(),
            ["seccomp-off", "sys-admin", "tmpfs", "volume", "read-only"]
        );

        // Stdin: a large buffer through cat (output and input at once), and a stream.
        let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i * 7 % 251) as u8).collect();
        let out = rt
            .exec_checked(&name, ExecRequest::new(["cat"]).stdin(big.clone()))
            .await
            .unwrap();
        assert!(out.stdout == big, "cat returned {} bytes", out.stdout.len());
        let chunks =
            futures::stream::iter((0..3).map(|_| Ok(Bytes::from(vec![b'x'; 70_000])))).boxed();
        let out = rt
            .exec_checked(&name, ExecRequest::new(["wc", "-c"]).stdin_stream(chunks))
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy().trim(), "210000");

        // Files: into a directory that does not exist yet, with a mode, and back.
        let content = b"line 1\nline 2\n".to_vec();
        rt.write_file(&name, "/etc/capd-test/deep/f.txt", &content, 0o600)
            .await
            .unwrap();
        assert_eq!(
            rt.read_file(&name, "/etc/capd-test/deep/f.txt")
                .await
                .unwrap(),
            content
        );
        let mode = rt
            .exec_checked(
                &name,
                ExecRequest::new(["stat", "-c", "%a", "/etc/capd-test/deep/f.txt"]),
            )
            .await
            .unwrap();
        assert_eq!(mode.stdout_lossy().trim(), "600");
        rt.write_file(&name, "/etc/capd-test/deep/f.txt", b"short", 0o644)
            .await
            .unwrap();
        assert_eq!(
            rt.read_file(&name, "/etc/capd-test/deep/f.txt")
                .await
                .unwrap(),
            b"short"
        );
        // Several files: one directory in one archive, two directories one by one.
        rt.write_files(
            &name,
            &[
                ("/etc/capd-test/many/a", b"A", 0o644),
                ("/etc/capd-test/many/b", b"BB", 0o600),
                ("/etc/capd-test/other/c", b"CCC", 0o644),
            ],
        )
        .await
        .unwrap();
        for (path, want) in [
            ("/etc/capd-test/many/a", &b"A"[..]),
            ("/etc/capd-test/many/b", b"BB"),
            ("/etc/capd-test/other/c", b"CCC"),
        ] {
            assert_eq!(rt.read_file(&name, path).await.unwrap(), want, "{path}");
        }
        let mode = rt
            .exec_checked(
                &name,
                ExecRequest::new(["stat", "-c", "%a", "/etc/capd-test/many/b"]),
            )
            .await
            .unwrap();
        assert_eq!(mode.stdout_lossy().trim(), "600");
        match rt.read_file(&name, "/no/such/file").await {
            Err(Error::NotFound {
                kind: ObjectKind::File,
                ..
            }) => {}
            other => panic!("expected file NotFound, got {other:?}"),
        }
        assert!(
            rt.read_file(&name, "/etc").await.is_err(),
            "a directory is not a file"
        );

        // Listing by label and by exact name.
        let listed = rt
            .list_containers(&LabelFilter::new().with(KIND_CLUSTER_LABEL, &cluster))
            .await
            .unwrap();
        assert_eq!(
            listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            [name.as_str()]
        );
        assert_eq!(listed[0].state, ContainerState::Running);
        let by_name = rt
            .list_containers(&LabelFilter::new().named(&name))
            .await
            .unwrap();
        assert_eq!(by_name.len(), 1);
        let prefix_only = rt
            .list_containers(&LabelFilter::new().named(&name[..name.len() - 1]))
            .await
            .unwrap();
        assert!(prefix_only.is_empty(), "{prefix_only:?}");

        // Signal: HAProxy's master reloads on SIGHUP and keeps running.
        let started = Duration::from_secs(10);
        poll_until("haproxy master to catch SIGHUP", started, || async {
            let out = rt
                .exec(
                    &name,
                    ExecRequest::new(["sh", "-c", "grep SigCgt /proc/1/status"]),
                )
                .await
                .map_err(|e| e.to_string())?;
            let mask = u64::from_str_radix(
                out.stdout_lossy().split_whitespace().nth(1).unwrap_or("0"),
                16,
            )
            .unwrap_or(0);
            if mask & 1 == 1 {
                Ok(())
            } else {
                Err(out.stdout_lossy())
            }
        })
        .await
        .unwrap();
        rt.signal(&name, "SIGHUP").await.unwrap();
        poll_until(
            "stats to answer after reload",
            Duration::from_secs(20),
            || async {
                http_get(port, "/healthz").await.and_then(|b| {
                    if b.ends_with("ok") {
                        Ok(b)
                    } else {
                        Err(b)
                    }
                })
            },
        )
        .await
        .unwrap();
        assert_eq!(state_of(rt, &name).await.unwrap(), ContainerState::Running);

        // Stop, exec refused on a stopped container, start again, remove twice.
        rt.stop_container(&name, Duration::from_secs(10))
            .await
            .unwrap();
        let info = rt.inspect_container(&name).await.unwrap().unwrap();
        assert_eq!(info.state, ContainerState::Exited, "{info:?}");
        assert!(info.exit_code.is_some());
        assert!(info
            .addresses(Some(&network))
            .and_then(|a| a.ipv4)
            .is_none());
        let err = rt
            .exec(&name, ExecRequest::new(["true"]))
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        rt.start_container(&name).await.unwrap();
        poll_until(
            "container to run again",
            Duration::from_secs(20),
            || async {
                match state_of(rt, &name).await? {
                    ContainerState::Running => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await
        .unwrap();
        rt.remove_container(&name).await.unwrap();
        assert!(rt.inspect_container(&name).await.unwrap().is_none());
        rt.remove_container(&name).await.unwrap();
    })
    .await;
    let _ = std::fs::remove_dir_all(&hostdir);
}

#[tokio::test]
async fn calls_on_a_missing_container_say_not_found() {
    let e = engine();
    let rt = &e.rt;
    let name = unique_name("rt-missing");
    assert!(rt.inspect_container(&name).await.unwrap().is_none());
    rt.remove_container(&name).await.unwrap();
    for (what, err) in [
        (
            "exec",
            rt.exec(&name, ExecRequest::new(["true"]))
                .await
                .unwrap_err(),
        ),
        ("signal", rt.signal(&name, "SIGHUP").await.unwrap_err()),
        (
            "stop",
            rt.stop_container(&name, Duration::from_secs(1))
                .await
                .unwrap_err(),
        ),
        ("start", rt.start_container(&name).await.unwrap_err()),
        (
            "write",
            rt.write_file(&name, "/x", b"x", 0o644).await.unwrap_err(),
        ),
    ] {
        assert!(
            matches!(
                err,
                Error::NotFound {
                    kind: ObjectKind::Container,
                    ..
                }
            ),
            "{what}: {err:?}"
        );
    }
}

#[tokio::test]
async fn images_present_missing_and_saved() {
    let e = engine();
    let rt = &e.rt;
    assert!(rt.image_present(e.haproxy_image()).await.unwrap());
    rt.ensure_image(e.haproxy_image()).await.unwrap();
    let missing = "capd-rs-test.invalid/none:0";
    assert!(!rt.image_present(missing).await.unwrap());
    // No registry is reachable here, so the pull fails and says which image.
    match rt.ensure_image(missing).await {
        Err(Error::ImageMissing { image, .. }) => assert_eq!(image, missing),
        other => panic!("expected ImageMissing, got {other:?}"),
    }
    match rt.save_image(missing).await {
        Err(Error::ImageMissing { .. }) => {}
        other => panic!("expected ImageMissing, got {:?}", other.map(|_| ())),
    }
    let name = unique_name("rt-noimage");
    let spec = test_container(&name, missing, &name);
    match rt.run_container(&spec).await {
        Err(Error::ImageMissing { .. }) => {}
        other => panic!("expected ImageMissing, got {other:?}"),
    }
    assert!(rt.inspect_container(&name).await.unwrap().is_none());

    // `docker save` stream: a tar archive of the image.
    let mut stream = rt.save_image(e.haproxy_image()).await.unwrap();
    let mut total = 0usize;
    let mut head = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if head.len() < 512 {
            head.extend_from_slice(&chunk[..chunk.len().min(512 - head.len())]);
        }
        total += chunk.len();
    }
    assert!(total > 10 << 20, "image archive of {total} bytes");
    assert_eq!(
        &head[257..262],
        b"ustar",
        "archive starts with a tar header"
    );
}

#[tokio::test]
async fn failed_start_leaves_no_container_behind() {
    let e = engine();
    let rt = &e.rt;
    let network = test_network(rt).await;
    // Hold a host port so publishing on it must fail at start.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let name = unique_name("rt-clash");
    let spec = test_container(&name, e.haproxy_image(), &name)
        .network(&network)
        .publish(PortPublish {
            host_port: Some(port),
            ..PortPublish::loopback_random(8404)
        });
    with_cleanup(rt, std::slice::from_ref(&name), async {
        let err = rt.run_container(&spec).await.unwrap_err();
        eprintln!("start with a taken port: {err}");
        assert!(!err.is_unreachable(), "{err}");
        assert!(
            rt.inspect_container(&name).await.unwrap().is_none(),
            "half-made container left"
        );
    })
    .await;
    drop(held);
}

#[tokio::test]
async fn same_name_twice_is_a_conflict() {
    let e = engine();
    let rt = &e.rt;
    let name = unique_name("rt-twice");
    let spec = test_container(&name, e.haproxy_image(), &name).cmd(["sleep", "60"]);
    with_cleanup(rt, std::slice::from_ref(&name), async {
        rt.run_container(&spec).await.unwrap();
        let err = rt.run_container(&spec).await.unwrap_err();
        assert!(err.is_conflict(), "{err:?}");
        let n = rt
            .list_containers(&LabelFilter::new().named(&name))
            .await
            .unwrap()
            .len();
        assert_eq!(n, 1);
    })
    .await;
}

/// DOCKER_HOST=tcp://…: the same engine reached through a TCP-to-socket relay,
/// including an exec (an upgraded connection) with stdin.
#[tokio::test]
async fn tcp_docker_host() {
    let e = engine();
    let Some(socket) = e.rt.endpoint().strip_prefix("unix://").map(str::to_string) else {
        eprintln!("engine is not on a unix socket; relay not needed");
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    let rt = DockerRuntime::new(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let info = rt.engine_info().await.unwrap();
    assert!(!info.version.is_empty());
    let name = unique_name("rt-tcp");
    let spec = test_container(&name, e.haproxy_image(), &name).cmd(["sleep", "60"]);
    with_cleanup(&rt, std::slice::from_ref(&name), async {
        rt.run_container(&spec).await.unwrap();
        let out = rt
            .exec_checked(&name, ExecRequest::new(["cat"]).stdin("through tcp"))
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy(), "through tcp");
        assert_eq!(
            rt.list_containers(&LabelFilter::new().named(&name))
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
    relay.abort();
}

/// `preLoadImages`: an image saved from the engine lands in a node's containerd.
#[tokio::test]
async fn image_loaded_into_node_containerd() {
    let e = engine();
    let rt = &e.rt;
    let network = test_network(rt).await;
    let cluster = unique_name("rt-preload");
    let name = format!("{cluster}-cp");
    // The node shape CAPD uses.
    let spec = test_container(&name, &e.env.state.images.node, &cluster)
        .privileged_unconfined()
        .tmpfs("/tmp", "")
        .tmpfs("/run", "")
        .volume("/var")
        .mount(Mount::new("/lib/modules", "/lib/modules", true))
        .stop_signal("SIGRTMIN+3")
        .tty(true)
        .network(&network);
    with_cleanup(rt, std::slice::from_ref(&name), async {
        rt.run_container(&spec).await.unwrap();
        poll_until(
            "containerd in the node",
            Duration::from_secs(90),
            || async {
                rt.exec_checked(&name, ExecRequest::new(["ctr", "version"]))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await
        .unwrap();
        rt.load_image_into_node(&name, e.haproxy_image())
            .await
            .unwrap();
        let images = rt
            .exec_checked(
                &name,
                ExecRequest::new(["ctr", "-n", "k8s.io", "images", "ls", "-q"]),
            )
            .await
            .unwrap()
            .stdout_lossy();
        let tag = e.haproxy_image().rsplit(':').next().unwrap();
        assert!(
            images
                .lines()
                .any(|l| l.ends_with(&format!("capd-rs/haproxy:{tag}"))),
            "{images}"
        );
        // And a failing import reports the command and its output.
        match rt
            .load_image_into_node(&name, "capd-rs-test.invalid/none:0")
            .await
        {
            Err(Error::ImageMissing { .. }) => {}
            other => panic!("expected ImageMissing, got {other:?}"),
        }
    })
    .await;
}

/// The container's fixed address on `network` as the engine recorded it (empty when
/// its address is dynamic).
/// Runs the docker CLI against the environment's engine, as another engine client would;
/// fails the test, with the CLI's message, when the command fails.
fn docker_ok(e: &Engine, args: &[&str]) {
    let out = e.env.docker().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixed_address(e: &Engine, container: &str, network: &str) -> String {
    let out = e
        .env
        .docker()
        .args([
            "inspect",
            "--format",
            &format!(
                "{{{{with (index .NetworkSettings.Networks \"{network}\").IPAMConfig}}}}{{{{.IPv4Address}}}}{{{{end}}}}"
            ),
            container,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A network this runtime creates gets a subnet of its own choosing, and containers on
/// it get fixed addresses from the top of that subnet, distinct even when created at
/// once; they keep them across a stop and start (and so across an engine restart,
/// which the chaos test covers). On a network whose subnet the engine chose, the engine
/// refuses fixed addresses and containers get dynamic ones.
#[tokio::test]
async fn containers_get_fixed_addresses_on_configured_subnets() {
    let e = engine();
    let rt = &e.rt;
    let network = unique_name("rt-fixed");
    rt.ensure_network(&capd_runtime::NetworkSpec::bridge(&network).label(TEST_LABEL, "true"))
        .await
        .unwrap();
    let subnets = rt.network_subnets(&network).await.unwrap();
    assert_eq!(subnets.len(), 1, "{subnets:?}");
    let prefix = subnets[0]
        .strip_suffix(".0.0/16")
        .unwrap_or_else(|| panic!("a /16 of kind's range, got {subnets:?}"))
        .to_string();
    let names: Vec<String> = (0..3)
        .map(|i| unique_name(&format!("rt-fixed{i}")))
        .collect();
    let auto = unique_name("rt-auto");
    let auto_container = unique_name("rt-auto");
    let (squatter, late) = (unique_name("rt-squat"), unique_name("rt-late"));
    let mut all = names.clone();
    all.extend([auto_container.clone(), squatter.clone(), late.clone()]);
    with_cleanup(rt, &all, async {
        let specs: Vec<_> = names
            .iter()
            .map(|n| {
                test_container(n, e.haproxy_image(), n)
                    .network(&network)
                    .cmd(["sleep", "300"])
            })
            .collect();
        let runs = futures::future::join_all(specs.iter().map(|s| rt.run_container(s))).await;
        for r in runs {
            r.unwrap();
        }
        let mut addresses = Vec::new();
        for n in &names {
            let info = rt.inspect_container(n).await.unwrap().unwrap();
            let ip = info.networks[&network].ipv4.unwrap().to_string();
            assert_eq!(
                fixed_address(&e, n, &network),
                ip,
                "{n} has a fixed address"
            );
            addresses.push(ip);
        }
        addresses.sort();
        assert_eq!(
            addresses,
            ["252", "253", "254"].map(|last| format!("{prefix}.255.{last}")),
        );
        // Another engine client takes the address the runtime would give next, which
        // the runtime's recent look at the network does not show: the start is refused,
        // and the container gets the one below.
        let next = format!("{prefix}.255.251");
        let label = format!("{TEST_LABEL}=true");
        docker_ok(
            &e,
            &[
                "run",
                "-d",
                "--name",
                &squatter,
                "--network",
                &network,
                "--ip",
                &next,
                "--label",
                &label,
                e.haproxy_image(),
                "sleep",
                "300",
            ],
        );
        let spec = test_container(&late, e.haproxy_image(), &late)
            .network(&network)
            .cmd(["sleep", "300"]);
        rt.run_container(&spec).await.unwrap();
        assert_eq!(
            fixed_address(&e, &late, &network),
            format!("{prefix}.255.250")
        );
        // Stopped and started again: the same address.
        let first = &names[0];
        let before = rt.inspect_container(first).await.unwrap().unwrap().networks[&network].ipv4;
        rt.stop_container(first, Duration::from_secs(1))
            .await
            .unwrap();
        rt.start_container(first).await.unwrap();
        let after = rt.inspect_container(first).await.unwrap().unwrap().networks[&network].ipv4;
        assert_eq!(before, after);

        // A network whose subnet the engine chose: dynamic, and still created.
        docker_ok(&e, &["network", "create", "--label", &label, &auto]);
        let spec = test_container(&auto_container, e.haproxy_image(), &auto_container)
            .network(&auto)
            .cmd(["sleep", "300"]);
        rt.run_container(&spec).await.unwrap();
        assert_eq!(fixed_address(&e, &auto_container, &auto), "");
        assert!(rt
            .inspect_container(&auto_container)
            .await
            .unwrap()
            .unwrap()
            .networks[&auto]
            .ipv4
            .is_some());
    })
    .await;
    for n in [&network, &auto] {
        let _ = e.env.docker().args(["network", "rm", n]).output();
    }
}
