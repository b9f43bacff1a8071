//! Rendering and atomically writing the CNI network configuration list.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cidr::{Cidr, Family};

pub const CONFLIST_FILE: &str = "10-capd-podnet.conflist";
pub const NETWORK_NAME: &str = "capd-podnet";
pub const CNI_VERSION: &str = "0.3.1";
pub const IPAM_DATA_DIR: &str = "/run/cni-ipam-state";
pub const MTU: u32 = 1500;

#[derive(Debug, thiserror::Error)]
pub enum ConflistError {
    #[error("no pod CIDR to render a CNI configuration for")]
    NoCidrs,
    #[error("serialising the CNI configuration: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfList {
    cni_version: &'static str,
    name: &'static str,
    plugins: Vec<Plugin>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Plugin {
    Ptp {
        #[serde(rename = "ipMasq")]
        ip_masq: bool,
        mtu: u32,
        ipam: Ipam,
    },
    Portmap {
        capabilities: Capabilities,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ipam {
    #[serde(rename = "type")]
    type_: &'static str,
    ranges: Vec<Vec<Range>>,
    routes: Vec<Route>,
    data_dir: &'static str,
}

#[derive(Serialize)]
struct Range {
    subnet: String,
}

#[derive(Serialize)]
struct Route {
    dst: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Capabilities {
    port_mappings: bool,
}

/// Renders the conflist for a node with the given pod CIDRs (one host-local range set per CIDR,
/// a default route per family present).
pub fn render(pod_cidrs: &[Cidr]) -> Result<String, ConflistError> {
    if pod_cidrs.is_empty() {
        return Err(ConflistError::NoCidrs);
    }
    let mut families: Vec<Family> = pod_cidrs.iter().map(Cidr::family).collect();
    families.sort();
    families.dedup();
    let conf = ConfList {
        cni_version: CNI_VERSION,
        name: NETWORK_NAME,
        plugins: vec![
            Plugin::Ptp {
                ip_masq: false,
                mtu: MTU,
                ipam: Ipam {
                    type_: "host-local",
                    ranges: pod_cidrs
                        .iter()
                        .map(|c| {
                            vec![Range {
                                subnet: c.to_string(),
                            }]
                        })
                        .collect(),
                    routes: families
                        .iter()
                        .map(|f| Route {
                            dst: f.default_route(),
                        })
                        .collect(),
                    data_dir: IPAM_DATA_DIR,
                },
            },
            Plugin::Portmap {
                capabilities: Capabilities {
                    port_mappings: true,
                },
            },
        ],
    };
    let mut out = serde_json::to_string_pretty(&conf)?;
    out.push('\n');
    Ok(out)
}

/// Writes `content` to `dir/CONFLIST_FILE` via a temporary file and a rename, unless the file
/// already has exactly that content. Returns whether the file was written.
///
/// The temporary file starts with a dot and has no `.conf`/`.conflist`/`.json` extension, so the
/// container runtime never loads a half-written file.
pub fn write_if_changed(dir: &Path, content: &str) -> Result<bool, ConflistError> {
    let path = dir.join(CONFLIST_FILE);
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == content => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ConflistError::Io {
                op: "reading",
                path,
                source,
            })
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| ConflistError::Io {
        op: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let tmp = dir.join(format!(".{CONFLIST_FILE}.tmp"));
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ConflistError::Io {
            op,
            path: p,
            source,
        }
    };
    {
        let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(content.as_bytes())
            .map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io("renaming to", &path))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn cidrs(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn expected(ranges: Value, routes: Value) -> Value {
        json!({
            "cniVersion": "0.3.1",
            "name": "capd-podnet",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": false,
                    "mtu": 1500,
                    "ipam": {
                        "type": "host-local",
                        "ranges": ranges,
                        "routes": routes,
                        "dataDir": "/run/cni-ipam-state"
                    }
                },
                { "type": "portmap", "capabilities": { "portMappings": true } }
            ]
        })
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn ipv4() {
        let out = render(&cidrs(&["10.244.1.0/24"])).unwrap();
        assert_eq!(
            parse(&out),
            expected(
                json!([[{"subnet": "10.244.1.0/24"}]]),
                json!([{"dst": "0.0.0.0/0"}])
            )
        );
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn ipv6() {
        let out = render(&cidrs(&["fd00:10:244:1::/64"])).unwrap();
        assert_eq!(
            parse(&out),
            expected(
                json!([[{"subnet": "fd00:10:244:1::/64"}]]),
                json!([{"dst": "::/0"}])
            )
        );
    }

    #[test]
    fn dual_stack() {
        let out = render(&cidrs(&["fd00:10:244:1::/64", "10.244.1.0/24"])).unwrap();
        assert_eq!(
            parse(&out),
            expected(
                json!([[{"subnet": "fd00:10:244:1::/64"}], [{"subnet": "10.244.1.0/24"}]]),
                json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
            )
        );
    }

    #[test]
    fn no_cidrs_is_an_error() {
        assert!(matches!(render(&[]), Err(ConflistError::NoCidrs)));
    }

    #[test]
    fn writes_only_on_change() {
        let dir = std::env::temp_dir()
            .join(format!("capd-podnet-test-{}", std::process::id()))
            .join("net.d");
        let _ = std::fs::remove_dir_all(&dir);
        let a = render(&cidrs(&["10.244.1.0/24"])).unwrap();
        let b = render(&cidrs(&["10.244.2.0/24"])).unwrap();
        assert!(write_if_changed(&dir, &a).unwrap());
        assert!(!write_if_changed(&dir, &a).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join(CONFLIST_FILE)).unwrap(), a);
        assert!(write_if_changed(&dir, &b).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join(CONFLIST_FILE)).unwrap(), b);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [CONFLIST_FILE], "no temporary file left behind");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}
