//! Configuration from the environment.

use std::path::PathBuf;

use crate::cidr::{Cidr, CidrError};

pub const ENV_NODE_NAME: &str = "NODE_NAME";
pub const ENV_CNI_CONFIG_DIR: &str = "CNI_CONFIG_DIR";
pub const ENV_POD_SUBNETS: &str = "POD_SUBNETS";
pub const DEFAULT_CNI_CONFIG_DIR: &str = "/etc/cni/net.d";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is required but not set (or empty)")]
    Missing { var: &'static str },
    #[error("environment variable {var} is not valid Unicode")]
    NotUnicode { var: &'static str },
    #[error("environment variable {var}: {reason}")]
    Invalid { var: &'static str, reason: String },
    #[error("environment variable {var}: {error}")]
    BadCidr { var: &'static str, error: CidrError },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name of the Node this daemon runs on.
    pub node_name: String,
    /// Directory where the CNI conflist is written.
    pub cni_config_dir: PathBuf,
    /// Cluster pod CIDRs exempt from masquerading; empty: use the union of all Nodes' pod CIDRs.
    pub pod_subnets: Vec<Cidr>,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|var| match std::env::var(var) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode { var }),
        })
    }

    /// Reads the configuration through `get`, which returns the value of a variable if set.
    pub fn from_lookup<F>(get: F) -> Result<Config, ConfigError>
    where
        F: Fn(&'static str) -> Result<Option<String>, ConfigError>,
    {
        let non_empty = |var: &'static str| -> Result<Option<String>, ConfigError> {
            Ok(get(var)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };

        let node_name =
            non_empty(ENV_NODE_NAME)?.ok_or(ConfigError::Missing { var: ENV_NODE_NAME })?;
        if node_name.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(ConfigError::Invalid {
                var: ENV_NODE_NAME,
                reason: format!("{node_name:?} is not a valid Node name"),
            });
        }

        let cni_config_dir = PathBuf::from(
            non_empty(ENV_CNI_CONFIG_DIR)?.unwrap_or_else(|| DEFAULT_CNI_CONFIG_DIR.to_string()),
        );
        if !cni_config_dir.is_absolute() {
            return Err(ConfigError::Invalid {
                var: ENV_CNI_CONFIG_DIR,
                reason: format!("{} is not an absolute path", cni_config_dir.display()),
            });
        }

        let mut pod_subnets = Vec::new();
        if let Some(list) = non_empty(ENV_POD_SUBNETS)? {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let cidr: Cidr = item.parse().map_err(|error| ConfigError::BadCidr {
                    var: ENV_POD_SUBNETS,
                    error,
                })?;
                if !pod_subnets.contains(&cidr) {
                    pod_subnets.push(cidr);
                }
            }
        }

        Ok(Config {
            node_name,
            cni_config_dir,
            pod_subnets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|var| Ok(map.get(var).cloned()))
    }

    #[test]
    fn defaults() {
        let c = parse(&[("NODE_NAME", "w-1")]).unwrap();
        assert_eq!(c.node_name, "w-1");
        assert_eq!(c.cni_config_dir, PathBuf::from("/etc/cni/net.d"));
        assert!(c.pod_subnets.is_empty());
    }

    #[test]
    fn all_set() {
        let c = parse(&[
            ("NODE_NAME", "cp-0"),
            ("CNI_CONFIG_DIR", "/tmp/cni"),
            (
                "POD_SUBNETS",
                " 10.244.0.0/16, fd00:10:244::/56,,10.244.0.0/16 ",
            ),
        ])
        .unwrap();
        assert_eq!(c.cni_config_dir, PathBuf::from("/tmp/cni"));
        let subnets: Vec<String> = c.pod_subnets.iter().map(ToString::to_string).collect();
        assert_eq!(subnets, ["10.244.0.0/16", "fd00:10:244::/56"]);
    }

    #[test]
    fn missing_node_name_names_the_variable() {
        for vars in [&[][..], &[("NODE_NAME", "  ")][..]] {
            let err = parse(vars).unwrap_err();
            assert_eq!(err, ConfigError::Missing { var: "NODE_NAME" });
            assert!(err.to_string().contains("NODE_NAME"), "{err}");
        }
    }

    #[test]
    fn invalid_node_name_names_the_variable() {
        let err = parse(&[("NODE_NAME", "a/b")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "NODE_NAME",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("NODE_NAME"), "{err}");
    }

    #[test]
    fn relative_cni_dir_names_the_variable() {
        let err = parse(&[("NODE_NAME", "n"), ("CNI_CONFIG_DIR", "etc/cni")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "CNI_CONFIG_DIR",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("CNI_CONFIG_DIR"), "{err}");
    }

    #[test]
    fn bad_pod_subnet_names_the_variable_and_value() {
        let err = parse(&[
            ("NODE_NAME", "n"),
            ("POD_SUBNETS", "10.244.0.0/16,10.300.0.0/16"),
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::BadCidr {
                    var: "POD_SUBNETS",
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("POD_SUBNETS") && msg.contains("10.300.0.0/16"),
            "{msg}"
        );
    }

    #[test]
    fn lookup_errors_propagate() {
        let err = Config::from_lookup(|var| Err(ConfigError::NotUnicode { var })).unwrap_err();
        assert_eq!(err, ConfigError::NotUnicode { var: "NODE_NAME" });
    }
}
