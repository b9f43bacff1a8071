//! What the benchmark reads about a process and its endpoints: /proc (resident memory,
//! CPU time), plain HTTP on 127.0.0.1 (health, Prometheus metrics, etcd's JSON gateway).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.0 request on 127.0.0.1:`port`; (status, body). HTTP/1.0 keeps servers
/// from chunking and makes them close the connection after the response.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut req =
            format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| anyhow!("{method} 127.0.0.1:{port}{path}: timed out"))?
        .with_context(|| format!("{method} 127.0.0.1:{port}{path}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "{method} 127.0.0.1:{port}{path}: no HTTP status in {:?}",
                head.chars().take(80).collect::<String>()
            )
        })?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// GETs `path` until it answers 200 or `timeout` passes; `alive` ends the wait early.
pub async fn wait_http_ok(
    port: u16,
    path: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        alive()?;
        let last = match http(port, "GET", path, None).await {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => format!(
                "HTTP {code}: {}",
                body.chars().take(200).collect::<String>()
            ),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() > deadline {
            bail!("127.0.0.1:{port}{path} did not answer 200 within {timeout:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A field of /proc/PID/status in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start with the state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// The load averages (1, 5, 15 min).
pub fn loadavg() -> (f64, f64, f64) {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut p = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    (
        p.next().unwrap_or(0.0),
        p.next().unwrap_or(0.0),
        p.next().unwrap_or(0.0),
    )
}

/// Samples a process's VmRSS every 100 ms in the background; the highest value seen.
pub struct RssSampler {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some(kb) = status_kb(pid, "VmRSS") {
                    p.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { peak, task }
    }

    pub fn peak_kb(&self) -> u64 {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Prometheus text format: (metric name, labels, value) per sample line.
pub type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

pub fn parse_prometheus(text: &str) -> Samples {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name_labels, value) = match line.find('{') {
            Some(_) => {
                let Some(close) = line.rfind('}') else {
                    continue;
                };
                (&line[..=close], line[close + 1..].trim())
            }
            None => match line.split_once(char::is_whitespace) {
                Some((n, v)) => (n, v.trim()),
                None => continue,
            },
        };
        let value: f64 = match value.split_whitespace().next().and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => continue,
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, l)) => (n.to_string(), parse_labels(l.trim_end_matches('}'))),
            None => (name_labels.to_string(), BTreeMap::new()),
        };
        out.push((name, labels, value));
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((k, r)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = r.char_indices();
        let mut end = r.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(n);
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => val.push(c),
            }
        }
        out.insert(k.trim().trim_start_matches(',').trim().to_string(), val);
        rest = r[end..].trim_start_matches(',');
    }
    out
}

/// Sum of the samples named `name` whose labels include every `(key, value)` of `want`.
pub fn sum(samples: &Samples, name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_with_and_without_labels() {
        let text = "# HELP x\n# TYPE x counter\ncapd_kube_api_requests_total 42\ncapd_reconcile_total{controller=\"dockercluster\"} 7\n\
                    rest_client_requests_total{code=\"200\",host=\"127.0.0.1:1\",method=\"GET\"} 3\nrest_client_requests_total{code=\"201\",host=\"a,b\",method=\"POST\"} 2 1700000000\n";
        let s = parse_prometheus(text);
        assert_eq!(sum(&s, "capd_kube_api_requests_total", &[]), 42.0);
        assert_eq!(
            sum(
                &s,
                "capd_reconcile_total",
                &[("controller", "dockercluster")]
            ),
            7.0
        );
        assert_eq!(sum(&s, "rest_client_requests_total", &[]), 5.0);
        assert_eq!(
            sum(&s, "rest_client_requests_total", &[("method", "POST")]),
            2.0
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"), "abcdefg");
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(status_kb(pid, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(cpu_seconds(pid).is_some());
    }
}
