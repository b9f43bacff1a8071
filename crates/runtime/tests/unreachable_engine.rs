//! With no engine at the address, every call fails fast with `EngineUnreachable`
//! naming the address, and nothing panics. Needs no test environment.

use std::future::Future;
use std::time::{Duration, Instant};

use capd_runtime::{
    ContainerRuntime, ContainerSpec, DockerRuntime, Error, ExecRequest, LabelFilter, NetworkSpec,
    PortPublish,
};

const LIMIT: Duration = Duration::from_secs(5);

async fn expect_unreachable<T: std::fmt::Debug>(
    what: &str,
    endpoint: &str,
    call: impl Future<Output = Result<T, Error>>,
) {
    let start = Instant::now();
    let result = tokio::time::timeout(LIMIT * 2, call).await;
    let elapsed = start.elapsed();
    let result = result.unwrap_or_else(|_| panic!("{what}: no answer within {:?}", LIMIT * 2));
    match result {
        Err(Error::EngineUnreachable {
            endpoint: e,
            reason,
        }) => {
            assert_eq!(
                e, endpoint,
                "{what}: error names the wrong endpoint ({reason})"
            );
        }
        other => panic!("{what}: expected EngineUnreachable, got {other:?}"),
    }
    assert!(elapsed < LIMIT, "{what}: took {elapsed:?}");
}

async fn every_call_is_unreachable(host: &str) {
    let rt = DockerRuntime::new(host).expect("address parses");
    let endpoint = rt.endpoint().to_string();
    assert_eq!(endpoint, host);
    let spec = ContainerSpec::new("capd-rs-unreachable", "capd-rs/none:0")
        .publish(PortPublish::loopback_random(6443));
    let ep = endpoint.as_str();

    expect_unreachable("engine_info", ep, rt.engine_info()).await;
    expect_unreachable(
        "ensure_network",
        ep,
        rt.ensure_network(&NetworkSpec::bridge("capd-rs-x")),
    )
    .await;
    expect_unreachable("image_present", ep, rt.image_present("capd-rs/none:0")).await;
    expect_unreachable("ensure_image", ep, rt.ensure_image("capd-rs/none:0")).await;
    expect_unreachable("create_container", ep, rt.create_container(&spec)).await;
    expect_unreachable("run_container", ep, rt.run_container(&spec)).await;
    expect_unreachable("start_container", ep, rt.start_container("x")).await;
    expect_unreachable("inspect_container", ep, rt.inspect_container("x")).await;
    expect_unreachable(
        "list_containers",
        ep,
        rt.list_containers(&LabelFilter::new().has("a")),
    )
    .await;
    expect_unreachable("exec", ep, rt.exec("x", ExecRequest::new(["true"]))).await;
    expect_unreachable(
        "exec_checked",
        ep,
        rt.exec_checked("x", ExecRequest::new(["true"]).stdin("in")),
    )
    .await;
    expect_unreachable("signal", ep, rt.signal("x", "SIGHUP")).await;
    expect_unreachable(
        "stop_container",
        ep,
        rt.stop_container("x", Duration::from_secs(1)),
    )
    .await;
    expect_unreachable("remove_container", ep, rt.remove_container("x")).await;
    expect_unreachable("write_file", ep, rt.write_file("x", "/a/b", b"c", 0o644)).await;
    expect_unreachable("read_file", ep, rt.read_file("x", "/a/b")).await;
    expect_unreachable("save_image", ep, async {
        rt.save_image("capd-rs/none:0").await.map(|_| ())
    })
    .await;
    expect_unreachable(
        "load_image_into_node",
        ep,
        rt.load_image_into_node("x", "capd-rs/none:0"),
    )
    .await;
    // A second round: a failed negotiation must not be cached as success or panic.
    expect_unreachable("engine_info again", ep, rt.engine_info()).await;
}

#[tokio::test]
async fn missing_unix_socket() {
    let dir = std::env::temp_dir().join(format!("capd-rs-no-engine-{}", std::process::id()));
    let host = format!("unix://{}/docker.sock", dir.display());
    every_call_is_unreachable(&host).await;
}

#[tokio::test]
async fn closed_tcp_port() {
    // Bind then release a port: nothing listens there afterwards.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    every_call_is_unreachable(&format!("tcp://127.0.0.1:{port}")).await;
}

#[tokio::test]
async fn unix_socket_with_no_listener() {
    // A socket file that exists but that nobody accepts on (a crashed engine).
    let path = std::env::temp_dir().join(format!("capd-rs-dead-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    every_call_is_unreachable(&format!("unix://{}", path.display())).await;
    let _ = std::fs::remove_file(&path);
}

#[test]
fn unusable_addresses_are_rejected_up_front() {
    for host in ["ssh://somewhere", "unix://relative", "npipe:////./pipe/x"] {
        let err = DockerRuntime::new(host).unwrap_err();
        assert!(
            matches!(err, Error::InvalidEndpoint { .. }),
            "{host}: {err}"
        );
    }
}
