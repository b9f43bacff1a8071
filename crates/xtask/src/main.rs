//! `cargo xtask`: the project's own commands.
//!
//! - `up | down | status | env`: the local test environment (real etcd, kube-apiserver,
//!   kube-controller-manager, Cluster API managers and a Docker engine on 127.0.0.1).
//! - `test`: brings the environment up and runs every test against it.
//! - `demo`: brings the environment up and runs the main job.
//! - `clusterctl-repo`, `tilt`: packaging and the dev loop (`commands/release.rs`).
//! - `previous-release`: the provider's previous release built from a pinned commit (`builds/previous.rs`).
//! - `gen-templates`: the generated parts of `templates/` (`commands/templates.rs`).
//! - `bench`: capd-rs side by side with CAPD and raw Docker (`commands/bench.rs`, driver in `crates/bench`).
//!
//! Layout: `commands/` has one module per subcommand; they use `environment/` (the
//! test environment's parts and its `lifecycle`), `builds/` (Go binaries, images, the
//! node image, pinned versions) and `support/` (paths, steps, processes), never each other.

mod builds;
mod commands;
mod environment;
mod support;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{bench, demo, env, release, templates, up};
use environment::shim;
use std::future::Future;
use support::paths;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "capd-rs project commands")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Bring the test environment up (idempotent: keeps whatever already runs).
    Up,
    /// Stop every process `up` started and remove every container with the project's labels.
    Down,
    /// Say what is up, with versions and ports.
    Status,
    /// Print `export` lines for KUBECONFIG, DOCKER_HOST and PATH (`eval "$(cargo xtask env)"`).
    Env,
    /// Bring the environment up, check generated files, and run every test against it.
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Bring the environment up and run the main job: a sample cluster provisioned by the provider.
    Demo,
    /// Render a clusterctl local repository: infrastructure-docker/<version>/ and clusterctl.yaml.
    ClusterctlRepo {
        /// Release version (default: v<workspace version>).
        #[arg(long)]
        version: Option<String>,
        /// Output directory (default: target/clusterctl-repo).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Manager image in the components (default: capd-rs/capd-manager:<version>).
        #[arg(long)]
        image: Option<String>,
        /// Also render Cluster API's core, kubeadm bootstrap and control-plane providers from the Go module cache.
        #[arg(long)]
        capi_from_module_cache: bool,
        /// Render the manifests and templates of another checkout (default: this one).
        #[arg(long)]
        source: Option<std::path::PathBuf>,
    },
    /// Build the provider's previous release (pinned commit) once into ~/.cache/capd-rs and print `version commit source manager`.
    PreviousRelease,
    /// Regenerate the generated parts of templates/ (the pod network's ClusterResourceSet).
    GenTemplates,
    /// Build Tilt from Go modules into ~/.cache/capd-rs (once) and print its path.
    Tilt,
    /// Inject faults into real provisioning (leader SIGKILLs, engine and API server restarts, an unreachable engine, a churn soak) and print what was counted.
    Chaos {
        /// Leader SIGKILLs while 5 clusters × 2 machines provision.
        #[arg(long, default_value_t = 30)]
        kills: u32,
        /// Minutes of create/delete churn in the soak.
        #[arg(long, default_value_t = 30)]
        soak_minutes: u32,
    },
    /// Benchmark capd-rs against CAPD and raw Docker (builds CAPD on demand); `bench --help` lists the options.
    #[command(disable_help_flag = true)]
    Bench {
        /// Passed to the benchmark driver (crates/bench).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Runs a future to completion from synchronous step code.
pub fn block_on<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

fn main() {
    if shim::invoked_as_shim() {
        shim::run();
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let res = rt.block_on(async {
        match cli.cmd {
            Cmd::Up => up::up(),
            Cmd::Down => up::down(),
            Cmd::Status => env::status(),
            Cmd::Env => env::print_env(),
            Cmd::Test { cargo_args } => commands::test::test(&cargo_args),
            Cmd::Demo => demo::demo(),
            Cmd::ClusterctlRepo {
                version,
                out,
                image,
                capi_from_module_cache,
                source,
            } => release::clusterctl_repo(
                source.as_deref(),
                release::RepoOptions {
                    version,
                    out,
                    image,
                    capi_from_module_cache,
                },
            ),
            Cmd::PreviousRelease => builds::previous::ensure(&paths::workspace_root()).map(|p| {
                println!(
                    "{} {} {} {}",
                    p.version,
                    p.commit,
                    p.source.display(),
                    p.manager.display()
                )
            }),
            Cmd::GenTemplates => templates::generate(&paths::workspace_root()).map(|changed| {
                for c in &changed {
                    eprintln!("regenerated {c}");
                }
                if changed.is_empty() {
                    eprintln!("templates up to date");
                }
            }),
            Cmd::Tilt => release::tilt(),
            Cmd::Bench { args } => bench::bench(&args),
            Cmd::Chaos {
                kills,
                soak_minutes,
            } => commands::chaos::chaos(kills, soak_minutes),
        }
    });
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
