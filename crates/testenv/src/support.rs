//! Small helpers the test crates (and the benchmark) share: labels and names for what
//! tests create, free ports, a plain HTTP GET for health and metrics endpoints, base64.

use crate::Error;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Label on every container, network and image a test creates, so `cargo xtask down`
/// finds and removes leftovers.
pub const TEST_LABEL: &str = "io.x-k8s.capd-rs.test";

/// The Docker network the engine tests share (created once and kept: it is cheap).
pub const TEST_NETWORK: &str = "capd-rs-test";

/// Set to another engine's address (e.g. Podman's `unix:///run/podman/podman.sock`) to
/// run the engine tests against it instead of the environment's Docker.
pub const ENGINE_OVERRIDE_ENV: &str = "CAPD_RS_TEST_DOCKER_HOST";

/// The environment's etcd client port when `env.json` does not record one.
pub const DEFAULT_ETCD_CLIENT_PORT: u16 = 23791;

/// How long [`http_get`] waits to connect, and then for each read and write.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// A free TCP port on 127.0.0.1: the OS picks one, the listener is closed again.
/// (Another process may take it before the caller binds it; fine for tests.)
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::FreePort)?;
    Ok(listener.local_addr().map_err(Error::FreePort)?.port())
}

/// Flags for a capd-manager run on this machine beside others (tests, benchmark, demo):
/// a webhook port of its own, the environment's webhook certificate (127.0.0.1, signed by
/// the environment's CA), so it neither issues one nor re-points the shared CRDs, and
/// plain-HTTP metrics for the scrapes. The self-issued path and authenticated metrics
/// have their own tests.
pub fn local_manager_flags(pki_dir: &std::path::Path) -> Result<Vec<String>, Error> {
    Ok(vec![
        format!("--webhook-port={}", free_port()?),
        format!("--webhook-cert-dir={}", pki_dir.join("webhook").display()),
        "--insecure-diagnostics".to_string(),
    ])
}

/// Why [`http_get`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpGetError {
    #[error("GET http://127.0.0.1:{port}{path}: {source}")]
    Io {
        port: u16,
        path: String,
        source: std::io::Error,
    },
    #[error("GET http://127.0.0.1:{port}{path}: no HTTP status line in {head:?}")]
    NoStatus {
        port: u16,
        path: String,
        head: String,
    },
}

/// A plain HTTP/1.1 GET of `path` on 127.0.0.1:`port` (connection closed after the
/// answer): (status, body). Each step waits at most [`HTTP_TIMEOUT`]. The body is
/// returned as sent (a chunked body keeps its chunk framing).
pub fn http_get(port: u16, path: &str) -> Result<(u16, String), HttpGetError> {
    let io = |source| HttpGetError::Io {
        port,
        path: path.to_string(),
        source,
    };
    let mut s =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), HTTP_TIMEOUT)
            .map_err(io)?;
    s.set_read_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(HTTP_TIMEOUT)).map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io)?;
    parse_response(&out).ok_or_else(|| HttpGetError::NoStatus {
        port,
        path: path.to_string(),
        head: out.chars().take(80).collect(),
    })
}

/// (status, body) of a raw HTTP response.
fn parse_response(raw: &str) -> Option<(u16, String)> {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Standard base64 (with padding) of `data`, as in Secrets and cloud-config `b64` content.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn parses_status_and_whole_body() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nline 1\r\n\r\nline 2";
        assert_eq!(
            parse_response(raw),
            Some((200, "line 1\r\n\r\nline 2".to_string()))
        );
        assert_eq!(
            parse_response("HTTP/1.1 503 Service Unavailable\r\n\r\n"),
            Some((503, String::new()))
        );
        assert_eq!(parse_response("garbage"), None);
        assert_eq!(parse_response(""), None);
    }

    /// A one-shot server answering `response`, and the request it read.
    fn serve_once(response: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            conn.write_all(response.as_bytes()).unwrap();
            String::from_utf8(req).unwrap()
        });
        (port, handle)
    }

    #[test]
    fn http_get_reads_status_and_body() {
        let (port, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(http_get(port, "/healthz").unwrap(), (200, "ok".to_string()));
        let req = server.join().unwrap();
        assert!(req.starts_with("GET /healthz HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
    }

    #[test]
    fn http_get_errors_name_the_endpoint() {
        let port = free_port().unwrap();
        let e = http_get(port, "/readyz").unwrap_err();
        assert!(matches!(e, HttpGetError::Io { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&format!("127.0.0.1:{port}/readyz")),
            "{e}"
        );

        let (port, server) = serve_once("not http\r\n\r\n");
        let e = http_get(port, "/x").unwrap_err();
        assert!(matches!(e, HttpGetError::NoStatus { .. }), "{e:?}");
        server.join().unwrap();
    }

    #[test]
    fn b64_is_standard_padded() {
        assert_eq!(b64(b"top secret"), "dG9wIHNlY3JldA==");
        assert_eq!(b64("ab"), "YWI=");
    }
}
