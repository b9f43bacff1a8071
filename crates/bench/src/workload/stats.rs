//! Memory of a node container, as the engine accounts it: `docker stats --no-stream`
//! (the container's cgroup usage less its inactive page cache, what `docker stats` shows).

use anyhow::{anyhow, bail, Context, Result};

/// The container's memory in MiB, from `docker stats --no-stream` against `docker_host`.
pub async fn container_memory_mib(docker_host: &str, container: &str) -> Result<f64> {
    let out = tokio::process::Command::new("docker")
        .env("DOCKER_HOST", docker_host)
        .args(["stats", "--no-stream", "--format", "{{.MemUsage}}", container])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running `docker stats`")?;
    if !out.status.success() {
        bail!("docker stats {container}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_mem_usage(String::from_utf8_lossy(&out.stdout).trim())
}

/// `512.3MiB / 23.46GiB` → 512.3 (the usage, in MiB).
pub fn parse_mem_usage(s: &str) -> Result<f64> {
    let usage = s.split('/').next().map(str::trim).unwrap_or_default();
    let split = usage.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(usage.len());
    let (num, unit) = usage.split_at(split);
    let v: f64 = num.parse().map_err(|_| anyhow!("docker stats: no number in {s:?}"))?;
    let bytes = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        u => bail!("docker stats: unknown unit {u:?} in {s:?}"),
    };
    Ok(v * bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_stats_memory() {
        assert!((parse_mem_usage("512.3MiB / 23.46GiB").unwrap() - 512.3).abs() < 1e-9);
        assert!((parse_mem_usage("1.5GiB / 23.46GiB").unwrap() - 1536.0).abs() < 1e-9);
        assert!((parse_mem_usage("2048KiB / 1GiB").unwrap() - 2.0).abs() < 1e-9);
        assert!(parse_mem_usage("--").is_err());
        assert!(parse_mem_usage("12XB / 1GiB").is_err());
    }
}
