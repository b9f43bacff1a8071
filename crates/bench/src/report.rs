//! Results: one table per scenario with the ratios capd-rs/CAPD and capd-rs/raw Docker,
//! as text for the terminal and Markdown for docs/benchmarks.md, and an SVG of the
//! `clusters` time against N.

use crate::provider::Contender;
use crate::scenario::Scenario;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Measurement {
    pub contender: Contender,
    pub scenario: Scenario,
    pub size: usize,
    /// Seconds from the first create until everything is done (for churn: deleted).
    pub wall_s: f64,
    /// churn: seconds of the delete phase.
    pub delete_s: Option<f64>,
    /// Seconds until Cluster API's core had set the owner of every infrastructure
    /// object (the providers wait for it); `None` for raw Docker.
    #[serde(default)]
    pub owned_s: Option<f64>,
    /// Median per unit (a cluster, or a machine) of the provider's own seconds (see
    /// `timeline`); raw Docker: its container work per unit.
    #[serde(default)]
    pub own_s: Option<f64>,
    /// Median per unit of the rest: Cluster API's steps and waits (providers only).
    #[serde(default)]
    pub rest_s: Option<f64>,
    /// workload: seconds until every Cluster had `status.initialization.controlPlaneInitialized`.
    #[serde(default)]
    pub control_plane_s: Option<f64>,
    /// workload: memory (MiB, as `docker stats` shows it) of the first cluster's
    /// control-plane node container once every Node was Ready.
    #[serde(default)]
    pub node_mem_mib: Option<f64>,
    pub peak_rss_mib: f64,
    pub steady_rss_mib: f64,
    /// CPU seconds (user + system) during the run.
    pub cpu_s: f64,
    pub api_requests: Option<f64>,
    /// controller → reconciles per object of its kind.
    pub reconciles_per_object: BTreeMap<String, f64>,
    /// controller → mean reconcile duration in ms.
    pub mean_reconcile_ms: BTreeMap<String, f64>,
    pub reconcile_errors: BTreeMap<String, f64>,
    /// 1-minute load average when the run started.
    pub load_1m: f64,
    /// `clusters` with `--idle`: the window after done.
    #[serde(default)]
    pub idle: Option<Idle>,
}

/// What a manager did in a window with nothing to do (`--idle`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy)]
pub struct Idle {
    pub seconds: f64,
    pub reconciles_per_cluster: f64,
    pub api_requests: f64,
    pub cpu_s: f64,
    /// Resident memory at the end of the window.
    pub rss_mib: f64,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub docker: String,
    /// `git rev-parse --short HEAD`, with `+dirty` when the provider's crates had
    /// uncommitted changes (the manager was built from the working tree).
    #[serde(default)]
    pub revision: String,
    pub load_before: (f64, f64, f64),
    pub load_after: (f64, f64, f64),
}

impl Machine {
    pub fn probe(docker_version: &str) -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            mem_gib: mem_kb / 1024.0 / 1024.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            docker: docker_version.to_string(),
            revision: revision(),
            ..Default::default()
        }
    }

    pub fn summary_with_revision(&self) -> String {
        format!("capd-rs {} on {}", self.revision, self.summary())
    }

    pub fn summary(&self) -> String {
        format!(
            "{} CPUs ({}), {:.1} GiB, Linux {}, Docker {}",
            self.nproc, self.cpu_model, self.mem_gib, self.kernel, self.docker
        )
    }
}

fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(capd_testenv::workspace_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let crates = [
        "crates/api",
        "crates/runtime",
        "crates/loadbalancer",
        "crates/bootstrap",
        "crates/controllers",
        "crates/manager",
    ];
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(crates);
    match git(&args) {
        Some(s) if !s.is_empty() => format!("{head}+dirty"),
        _ => head,
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct Report {
    pub run_id: String,
    pub command: String,
    pub machine: Machine,
    pub n: usize,
    pub m: usize,
    pub k: usize,
    /// workload sizes that ran.
    #[serde(default)]
    pub w: Vec<usize>,
    pub measurements: Vec<Measurement>,
    pub failures: Vec<String>,
    /// workload: the images the default flavour runs, (reference, MiB as `docker images` sizes them).
    #[serde(default)]
    pub images: Vec<(String, f64)>,
}

const CONTENDERS: [Contender; 3] = [Contender::CapdRs, Contender::Capd, Contender::Raw];

struct Row {
    name: &'static str,
    values: [Option<f64>; 3],
    decimals: usize,
}

/// Median of `f` over the runs that have it.
fn median(runs: &[&Measurement], f: &dyn Fn(&Measurement) -> Option<f64>) -> Option<f64> {
    median_of(runs.iter().filter_map(|m| f(m)).collect())
}

/// Median of `v` (mean of the middle two for an even count); `None` when empty.
pub fn median_of(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

impl Row {
    /// capd-rs, CAPD, raw Docker, capd-rs/CAPD, capd-rs/raw: the columns of both
    /// renderings; `raw_na`: raw Docker has no equivalent of the scenario.
    fn cells(&self, raw_na: bool) -> [String; 5] {
        let v = self.values;
        if raw_na {
            return [
                cell(v[0], self.decimals),
                cell(v[1], self.decimals),
                "n/a".into(),
                ratio(v[0], v[1]),
                "n/a".into(),
            ];
        }
        [
            cell(v[0], self.decimals),
            cell(v[1], self.decimals),
            cell(v[2], self.decimals),
            ratio(v[0], v[1]),
            ratio(v[0], v[2]),
        ]
    }
}

/// One scenario's table.
struct Table {
    title: String,
    rows: Vec<Row>,
    /// Raw Docker has no equivalent (workload).
    raw_na: bool,
}

impl Report {
    fn runs_of(&self, who: Contender, sc: Scenario, size: usize) -> Vec<&Measurement> {
        self.measurements
            .iter()
            .filter(|m| m.contender == who && m.scenario == sc && m.size == size)
            .collect()
    }

    /// The scenario tables: clusters at N, machines at M, churn at K, workload at each W
    /// (those that ran).
    /// Every (scenario, size) that has a measurement: clusters and machines by size
    /// (a sweep gives one table per size), then churn, then workload.
    fn sizes(&self) -> Vec<(Scenario, usize)> {
        let mut sizes: Vec<(Scenario, usize)> = self
            .measurements
            .iter()
            .map(|m| (m.scenario, m.size))
            .collect();
        sizes.sort_by_key(|(sc, size)| (*sc as u8, *size));
        sizes.dedup();
        sizes
    }

    fn tables(&self) -> Vec<Table> {
        let mut out = Vec::new();
        for (sc, size) in self.sizes() {
            let ms: Vec<Vec<&Measurement>> = CONTENDERS
                .iter()
                .map(|c| self.runs_of(*c, sc, size))
                .collect();
            if ms.iter().all(|m| m.is_empty()) {
                continue;
            }
            let get = |f: &dyn Fn(&Measurement) -> Option<f64>| -> [Option<f64>; 3] {
                [median(&ms[0], f), median(&ms[1], f), median(&ms[2], f)]
            };
            let reps = ms.iter().map(Vec::len).max().unwrap_or(0);
            let title = if reps > 1 {
                format!(
                    "{} ({}={size}; median of {reps} runs)",
                    sc.name(),
                    sc.size_name()
                )
            } else {
                format!("{} ({}={size})", sc.name(), sc.size_name())
            };
            if sc == Scenario::Workload {
                out.push(Table {
                    title,
                    rows: workload_rows(&get),
                    raw_na: true,
                });
                continue;
            }
            let mut rows = vec![Row {
                name: "wall time (s)",
                values: get(&|m| Some(m.wall_s)),
                decimals: 1,
            }];
            rows.push(Row {
                name: "  until all owned by Cluster API (s)",
                values: get(&|m| m.owned_s),
                decimals: 1,
            });
            rows.push(Row {
                name: if sc == Scenario::Churn {
                    "  owned until all deleted (s)"
                } else {
                    "  owned until all done (s)"
                },
                values: get(&|m| {
                    if m.contender == Contender::Raw {
                        Some(m.wall_s)
                    } else {
                        m.owned_s.map(|o| m.wall_s - o)
                    }
                }),
                decimals: 1,
            });
            if sc == Scenario::Churn {
                rows.push(Row {
                    name: "  deleting (s)",
                    values: get(&|m| m.delete_s),
                    decimals: 1,
                });
            }
            rows.push(Row {
                name: "per unit: the provider's own steps (s)",
                values: get(&|m| m.own_s),
                decimals: 2,
            });
            rows.push(Row {
                name: "per unit: Cluster API's steps and waits (s)",
                values: get(&|m| m.rest_s),
                decimals: 2,
            });
            rows.push(Row {
                name: "peak RSS (MiB)",
                values: get(&|m| Some(m.peak_rss_mib)),
                decimals: 1,
            });
            rows.push(Row {
                name: "steady RSS (MiB)",
                values: get(&|m| Some(m.steady_rss_mib)),
                decimals: 1,
            });
            rows.push(Row {
                name: "CPU (s)",
                values: get(&|m| Some(m.cpu_s)),
                decimals: 2,
            });
            rows.push(Row {
                name: "API requests",
                values: get(&|m| m.api_requests),
                decimals: 0,
            });
            let objects = infrastructure_objects(sc, size) as f64;
            rows.push(Row {
                name: "  per infrastructure object",
                values: get(&|m| m.api_requests.map(|r| r / objects)),
                decimals: 1,
            });
            rows.push(Row {
                name: "reconciles / DockerCluster",
                values: get(&|m| m.reconciles_per_object.get("dockercluster").copied()),
                decimals: 1,
            });
            if sc != Scenario::Clusters {
                rows.push(Row {
                    name: "reconciles / DockerMachine",
                    values: get(&|m| m.reconciles_per_object.get("dockermachine").copied()),
                    decimals: 1,
                });
            }
            rows.push(Row {
                name: "mean DockerCluster reconcile (ms)",
                values: get(&|m| m.mean_reconcile_ms.get("dockercluster").copied()),
                decimals: 1,
            });
            if sc != Scenario::Clusters {
                rows.push(Row {
                    name: "mean DockerMachine reconcile (ms)",
                    values: get(&|m| m.mean_reconcile_ms.get("dockermachine").copied()),
                    decimals: 1,
                });
            }
            rows.push(Row {
                name: "failed reconciles",
                values: get(&|m| {
                    if m.contender == Contender::Raw {
                        None
                    } else {
                        // + 0.0: an empty sum is -0.0, printed "-0".
                        Some(m.reconcile_errors.values().sum::<f64>() + 0.0)
                    }
                }),
                decimals: 0,
            });
            rows.push(Row {
                name: "load average (1 min) at start",
                values: get(&|m| Some(m.load_1m)),
                decimals: 2,
            });
            if ms.iter().flatten().any(|m| m.idle.is_some()) {
                let idle_rows: [(&'static str, fn(&Idle) -> f64, usize); 5] = [
                    ("idle window after done (s)", |i| i.seconds, 0),
                    (
                        "idle: reconciles / DockerCluster",
                        |i| i.reconciles_per_cluster,
                        1,
                    ),
                    ("idle: API requests", |i| i.api_requests, 0),
                    ("idle: CPU (s)", |i| i.cpu_s, 2),
                    ("idle: RSS at its end (MiB)", |i| i.rss_mib, 1),
                ];
                for (name, f, decimals) in idle_rows {
                    rows.push(Row {
                        name,
                        values: get(&|m| m.idle.as_ref().map(f)),
                        decimals,
                    });
                }
            }
            out.push(Table {
                title,
                rows,
                raw_na: false,
            });
        }
        out
    }

    /// `clusters` wall time per contender at each N that ran.
    fn sweep(&self) -> BTreeMap<usize, [Option<f64>; 3]> {
        let mut out: BTreeMap<usize, [Option<f64>; 3]> = BTreeMap::new();
        for m in self
            .measurements
            .iter()
            .filter(|m| m.scenario == Scenario::Clusters)
        {
            let i = CONTENDERS
                .iter()
                .position(|c| *c == m.contender)
                .unwrap_or(0);
            out.entry(m.size).or_default()[i] = median(
                &self.runs_of(m.contender, Scenario::Clusters, m.size),
                &|m| Some(m.wall_s),
            );
        }
        out
    }

    pub fn text_tables(&self) -> String {
        let mut s = String::new();
        for t in self.tables() {
            s.push_str(&format!("\n{}\n", t.title));
            s.push_str(&format!(
                "{:<36}{:>11}{:>11}{:>11}{:>14}{:>14}\n",
                "", "capd-rs", "CAPD", "raw Docker", "capd-rs/CAPD", "capd-rs/raw"
            ));
            for r in &t.rows {
                let [a, b, c, d, e] = r.cells(t.raw_na);
                s.push_str(&format!(
                    "{:<36}{a:>11}{b:>11}{c:>11}{d:>14}{e:>14}\n",
                    r.name
                ));
            }
        }
        let sweep = self.sweep();
        if sweep.len() > 1 {
            s.push_str("\nclusters: wall time (s) against N\n");
            s.push_str(&format!(
                "{:>6}{:>11}{:>11}{:>11}\n",
                "N", "capd-rs", "CAPD", "raw Docker"
            ));
            for (n, v) in &sweep {
                s.push_str(&format!(
                    "{n:>6}{:>11}{:>11}{:>11}\n",
                    cell(v[0], 1),
                    cell(v[1], 1),
                    cell(v[2], 1)
                ));
            }
        }
        for (image, mib) in &self.images {
            s.push_str(&format!("image {image}: {mib:.0} MiB\n"));
        }
        for f in &self.failures {
            s.push_str(&format!("FAILED: {f}\n"));
        }
        s
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut s = String::new();
        s.push_str(&format!(
            "Produced by `{}` (run `{}`, capd-rs at `{}`).\n\n",
            self.command,
            self.run_id,
            if m.revision.is_empty() {
                "?"
            } else {
                &m.revision
            }
        ));
        s.push_str(&format!(
            "Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}, Docker {}. Load average before the run {:.2} / {:.2} / {:.2}, after {:.2} / {:.2} / {:.2} (1 / 5 / 15 min; the machine is shared).\n",
            m.nproc, m.cpu_model, m.mem_gib, m.kernel, m.docker, m.load_before.0, m.load_before.1, m.load_before.2, m.load_after.0, m.load_after.1, m.load_after.2
        ));
        for t in self.tables() {
            s.push_str(&format!("\n### {}\n\n", t.title));
            s.push_str("| | capd-rs | CAPD | raw Docker | capd-rs/CAPD | capd-rs/raw |\n|---|---:|---:|---:|---:|---:|\n");
            for r in &t.rows {
                s.push_str(&format!(
                    "| {} | {} |\n",
                    r.name.trim(),
                    r.cells(t.raw_na).join(" | ")
                ));
            }
        }
        let sweep = self.sweep();
        if sweep.len() > 1 {
            s.push_str("\n### clusters: wall time (s) against N\n\n| N | capd-rs | CAPD | raw Docker |\n|---:|---:|---:|---:|\n");
            for (n, v) in &sweep {
                s.push_str(&format!(
                    "| {n} | {} | {} | {} |\n",
                    cell(v[0], 1),
                    cell(v[1], 1),
                    cell(v[2], 1)
                ));
            }
            s.push_str("\n![clusters: seconds until all DockerClusters are provisioned, against N](benchmarks-clusters.svg)\n");
        }
        if !self.images.is_empty() {
            s.push_str("\n### images the default flavour runs (MiB, uncompressed, as the engine sizes them)\n\n| image | MiB |\n|---|---:|\n");
            for (image, mib) in &self.images {
                s.push_str(&format!("| `{image}` | {mib:.0} |\n"));
            }
        }
        if !self.failures.is_empty() {
            s.push_str("\nFailed runs:\n\n");
            for f in &self.failures {
                s.push_str(&format!("- {f}\n"));
            }
        }
        s
    }

    /// Which generated block of docs/benchmarks.md this report fills: `workload` runs
    /// (real Kubernetes clusters, minutes each) have their own, so that neither kind of
    /// run wipes the other's figures.
    pub fn docs_block(&self) -> &'static str {
        if !self.measurements.is_empty()
            && self
                .measurements
                .iter()
                .all(|m| m.scenario == Scenario::Workload)
        {
            "bench-workload"
        } else {
            "bench"
        }
    }

    /// Replaces this report's generated block of docs/benchmarks.md (between its markers;
    /// the rest of the page is hand-written) and writes the SVG when there are two N or more.
    pub fn write_docs(&self, root: &Path) -> Result<()> {
        let path = root.join("docs/benchmarks.md");
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
        let new = replace_block(&old, self.docs_block(), &self.markdown());
        std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
        let sweep = self.sweep();
        if sweep.len() > 1 {
            let svg_path = root.join("docs/benchmarks-clusters.svg");
            std::fs::write(&svg_path, svg(&sweep))
                .with_context(|| format!("writing {}", svg_path.display()))?;
            eprintln!("wrote {}", svg_path.display());
        }
        Ok(())
    }
}

/// `page` with the block named `name` (`<!-- NAME:begin ... -->` to `<!-- NAME:end -->`)
/// holding `body`; the block is appended when the page has none.
pub fn replace_block(page: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- {name}:begin (generated by `cargo xtask bench --write-docs`; edit outside the markers) -->");
    let (begin_tag, end) = (format!("<!-- {name}:begin"), format!("<!-- {name}:end -->"));
    let block = format!("{begin}\n{body}{end}");
    match (page.find(&begin_tag), page.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{block}{}", &page[..b], &page[e + end.len()..]),
        _ => format!("{}\n\n{block}\n", page.trim_end()),
    }
}

/// DockerClusters and DockerMachines a run of `sc` at `size` creates.
fn infrastructure_objects(sc: Scenario, size: usize) -> usize {
    match sc {
        Scenario::Clusters => size,
        Scenario::Machines => size + 1,
        Scenario::Churn => 2 * size,
        Scenario::Workload => size * 3,
    }
}

/// The rows of a workload table: the milestones up to every Node Ready, one node
/// container's memory, and the provider manager's figures.
fn workload_rows(
    get: &dyn Fn(&dyn Fn(&Measurement) -> Option<f64>) -> [Option<f64>; 3],
) -> Vec<Row> {
    vec![
        Row {
            name: "time to all Nodes Ready (s)",
            values: get(&|m| Some(m.wall_s)),
            decimals: 1,
        },
        Row {
            name: "  until all owned by Cluster API (s)",
            values: get(&|m| m.owned_s),
            decimals: 1,
        },
        Row {
            name: "  until all control planes initialized (s)",
            values: get(&|m| m.control_plane_s),
            decimals: 1,
        },
        Row {
            name: "  control planes initialized until Ready (s)",
            values: get(&|m| m.control_plane_s.map(|c| m.wall_s - c)),
            decimals: 1,
        },
        Row {
            name: "control-plane node container (MiB)",
            values: get(&|m| m.node_mem_mib),
            decimals: 0,
        },
        Row {
            name: "peak RSS (MiB)",
            values: get(&|m| Some(m.peak_rss_mib)),
            decimals: 1,
        },
        Row {
            name: "steady RSS (MiB)",
            values: get(&|m| Some(m.steady_rss_mib)),
            decimals: 1,
        },
        Row {
            name: "CPU (s)",
            values: get(&|m| Some(m.cpu_s)),
            decimals: 2,
        },
        Row {
            name: "API requests",
            values: get(&|m| m.api_requests),
            decimals: 0,
        },
        Row {
            name: "reconciles / DockerCluster",
            values: get(&|m| m.reconciles_per_object.get("dockercluster").copied()),
            decimals: 1,
        },
        Row {
            name: "reconciles / DockerMachine",
            values: get(&|m| m.reconciles_per_object.get("dockermachine").copied()),
            decimals: 1,
        },
        Row {
            name: "mean DockerCluster reconcile (ms)",
            values: get(&|m| m.mean_reconcile_ms.get("dockercluster").copied()),
            decimals: 1,
        },
        Row {
            name: "mean DockerMachine reconcile (ms)",
            values: get(&|m| m.mean_reconcile_ms.get("dockermachine").copied()),
            decimals: 1,
        },
        Row {
            name: "failed reconciles",
            values: get(&|m| Some(m.reconcile_errors.values().sum::<f64>() + 0.0)),
            decimals: 0,
        },
        Row {
            name: "load average (1 min) at start",
            values: get(&|m| Some(m.load_1m)),
            decimals: 2,
        },
    ]
}

/// A line chart of seconds against N, one line per contender.
fn svg(sweep: &BTreeMap<usize, [Option<f64>; 3]>) -> String {
    let (w, h) = (640.0, 400.0);
    let (left, right, top, bottom) = (60.0, 150.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let n_min = *sweep.keys().next().unwrap_or(&0) as f64;
    let n_max = *sweep.keys().last().unwrap_or(&1) as f64;
    let t_max = sweep
        .values()
        .flat_map(|v| v.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let y_top = nice_ceiling(t_max.max(1.0));
    let x = |n: f64| {
        left + if n_max > n_min {
            (n - n_min) / (n_max - n_min) * pw
        } else {
            pw / 2.0
        }
    };
    let y = |t: f64| top + ph - t / y_top * ph;
    let colors = ["#d9480f", "#1c7ed6", "#495057"];
    let names = ["capd-rs", "CAPD", "raw Docker"];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">clusters: seconds until N DockerClusters are provisioned</text>\n",
        left + pw / 2.0
    );
    // Axes, grid and ticks.
    for i in 0..=5 {
        let t = y_top * i as f64 / 5.0;
        let yy = y(t);
        s.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e9ecef\"/>\n",
            left + pw
        ));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            left - 6.0,
            yy + 4.0,
            trim_num(t)
        ));
    }
    for n in sweep.keys() {
        let xx = x(*n as f64);
        s.push_str(&format!(
            "<line x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"#adb5bd\"/>\n",
            top + ph,
            top + ph + 5.0
        ));
        s.push_str(&format!(
            "<text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>\n",
            top + ph + 18.0
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"#495057\"/>\n",
        top + ph
    ));
    s.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#495057\"/>\n",
        top + ph,
        left + pw,
        top + ph
    ));
    s.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">N (Clusters + DockerClusters created at once)</text>\n", left + pw / 2.0, h - 12.0));
    s.push_str(&format!("<text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">seconds</text>\n", top + ph / 2.0, top + ph / 2.0));
    for (i, (color, name)) in colors.iter().zip(names).enumerate() {
        let pts: Vec<(f64, f64)> = sweep
            .iter()
            .filter_map(|(n, v)| v[i].map(|t| (x(*n as f64), y(t))))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let line: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            line.join(" ")
        ));
        for (a, b) in &pts {
            s.push_str(&format!(
                "<circle cx=\"{a:.1}\" cy=\"{b:.1}\" r=\"3.5\" fill=\"{color}\"/>\n"
            ));
        }
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + pw + 20.0;
        s.push_str(&format!("<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>\n", lx + 24.0));
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            lx + 30.0,
            ly + 4.0
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn trim_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_ceilings() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50x");
        assert_eq!(ratio(Some(3.0), None), "-");
        assert_eq!(nice_ceiling(7.3), 10.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
        assert_eq!(nice_ceiling(0.8), 1.0);
    }

    /// A report of `measurements` (sizes as the tables read them from the measurements).
    fn report(measurements: Vec<Measurement>) -> Report {
        Report {
            run_id: "t".into(),
            command: "c".into(),
            machine: Machine::default(),
            n: 0,
            m: 0,
            k: 0,
            w: vec![],
            measurements,
            failures: vec![],
            images: vec![],
        }
    }

    /// A measurement with plausible figures, for the table tests.
    fn measurement(contender: Contender, scenario: Scenario, size: usize) -> Measurement {
        Measurement {
            contender,
            scenario,
            size,
            wall_s: 10.0,
            delete_s: None,
            owned_s: Some(2.0),
            own_s: Some(1.0),
            rest_s: Some(0.5),
            control_plane_s: None,
            node_mem_mib: None,
            peak_rss_mib: 20.0,
            steady_rss_mib: 19.0,
            cpu_s: 1.0,
            api_requests: Some(100.0),
            reconciles_per_object: BTreeMap::new(),
            mean_reconcile_ms: BTreeMap::new(),
            reconcile_errors: BTreeMap::new(),
            load_1m: 1.0,
            idle: None,
        }
    }

    #[test]
    fn workload_tables_show_raw_docker_as_not_applicable() {
        let m = |contender, wall_s| Measurement {
            wall_s,
            control_plane_s: Some(60.0),
            node_mem_mib: Some(700.0),
            ..measurement(contender, Scenario::Workload, 3)
        };
        let r = Report {
            w: vec![3],
            images: vec![("kindest/node:v1.36.3".into(), 1249.6)],
            ..report(vec![m(Contender::CapdRs, 90.0), m(Contender::Capd, 120.0)])
        };
        let md = r.markdown();
        assert!(md.contains("| `kindest/node:v1.36.3` | 1250 |"), "{md}");
        assert!(md.contains("### workload (W=3)"), "{md}");
        assert!(
            md.contains("| time to all Nodes Ready (s) | 90.0 | 120.0 | n/a | 0.75x | n/a |"),
            "{md}"
        );
        assert!(
            md.contains("| control-plane node container (MiB) | 700 | 700 | n/a | 1.00x | n/a |"),
            "{md}"
        );
    }

    #[test]
    fn the_per_unit_split_sets_the_providers_own_steps_beside_raw_docker() {
        let m = |contender, own_s, rest_s| Measurement {
            own_s,
            rest_s,
            delete_s: Some(7.0),
            ..measurement(contender, Scenario::Churn, 10)
        };
        let r = Report {
            k: 10,
            ..report(vec![
                m(Contender::CapdRs, Some(2.4), Some(6.0)),
                m(Contender::Capd, Some(3.0), Some(7.5)),
                m(Contender::Raw, Some(2.0), None),
            ])
        };
        let md = r.markdown();
        assert!(
            md.contains(
                "| per unit: the provider's own steps (s) | 2.40 | 3.00 | 2.00 | 0.80x | 1.20x |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| per unit: Cluster API's steps and waits (s) | 6.00 | 7.50 | - | 0.80x | - |"
            ),
            "{md}"
        );
    }

    #[test]
    fn an_idle_window_adds_its_rows_to_the_clusters_table() {
        let m = |contender, idle: Option<Idle>| Measurement {
            idle,
            ..measurement(contender, Scenario::Clusters, 20)
        };
        let idle = |api_requests| Idle {
            seconds: 300.0,
            reconciles_per_cluster: 10.0,
            api_requests,
            cpu_s: 0.5,
            rss_mib: 18.0,
        };
        let r = Report {
            n: 20,
            ..report(vec![
                m(Contender::CapdRs, Some(idle(0.0))),
                m(Contender::Capd, Some(idle(40.0))),
                m(Contender::Raw, None),
            ])
        };
        let md = r.markdown();
        assert!(
            md.contains("| idle window after done (s) | 300 | 300 | - |"),
            "{md}"
        );
        assert!(
            md.contains("| idle: API requests | 0 | 40 | - | 0.00x | - |"),
            "{md}"
        );
    }

    #[test]
    fn each_kind_of_run_fills_its_own_block() {
        let page = "# B\n\n<!-- bench:begin (x) -->\nold all\n<!-- bench:end -->\n\ntext\n";
        let with_workload = replace_block(page, "bench-workload", "W\n");
        assert!(
            with_workload.contains("old all")
                && with_workload.contains("<!-- bench-workload:begin")
                && with_workload.contains("W\n<!-- bench-workload:end -->")
        );
        let again = replace_block(&with_workload, "bench-workload", "W2\n");
        assert!(again.contains("W2\n") && !again.contains("W\n<!--") && again.contains("old all"));
        let all = replace_block(&again, "bench", "new all\n");
        assert!(
            all.contains("new all")
                && !all.contains("old all")
                && all.contains("W2")
                && all.contains("text")
        );
    }

    #[test]
    fn svg_has_a_line_per_contender() {
        let mut sweep = BTreeMap::new();
        sweep.insert(5, [Some(2.0), Some(3.0), Some(1.0)]);
        sweep.insert(10, [Some(4.0), Some(5.0), Some(2.0)]);
        let s = svg(&sweep);
        assert_eq!(s.matches("<polyline").count(), 3);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
}
