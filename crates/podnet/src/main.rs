use anyhow::Context as _;
use capd_podnet::config::Config;
use capd_podnet::exec::SystemRunner;
use capd_podnet::reconcile::Reconciler;
use tracing::info;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config = Config::from_env().context("invalid configuration")?;
    info!(
        node = %config.node_name,
        cni_config_dir = %config.cni_config_dir.display(),
        pod_subnets = ?config.pod_subnets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "capd-podnet starting"
    );
    let client = kube::Client::try_default()
        .await
        .context("creating the Kubernetes client")?;
    capd_podnet::watch::run(
        client,
        Reconciler::new(config, SystemRunner),
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Completes on SIGTERM (the kubelet stopping the pod) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot install a SIGTERM handler; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
