//! One pass: from the set of Nodes to conflist, routes and masquerade rules on this host.

use crate::cidr::{Cidr, Family};
use crate::config::Config;
use crate::conflist::{self, ConflistError};
use crate::exec::Runner;
use crate::masq::{self, MasqChange, MasqError};
use crate::node::NodeInfo;
use crate::routes::{self, RouteError, RoutePlan};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("routes: {0}")]
    Routes(#[from] RouteError),
    #[error("{family} masquerade: {source}")]
    Masq {
        family: Family,
        #[source]
        source: MasqError,
    },
    #[error("CNI configuration: {0}")]
    Conflist(#[from] ConflistError),
}

/// The steps of a pass that failed (the others were still carried out).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ReconcileError(pub Vec<StepError>);

/// Result of a successful pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This node is not known yet or has no pod CIDR; nothing was changed.
    WaitingForPodCidr,
    Applied {
        conflist_written: bool,
        routes: RoutePlan,
        masq: Vec<(Family, MasqChange)>,
    },
}

/// The pod CIDRs exempt from masquerading: `POD_SUBNETS` if set, else every Node's pod CIDRs.
pub fn cluster_cidrs(configured: &[Cidr], nodes: &[NodeInfo]) -> Vec<Cidr> {
    let mut all: Vec<Cidr> = if configured.is_empty() {
        nodes
            .iter()
            .flat_map(|n| n.pod_cidrs.iter().copied())
            .collect()
    } else {
        configured.to_vec()
    };
    all.sort();
    all.dedup();
    all
}

/// The pod CIDRs of this node, if it is known and has any.
pub fn own_cidrs<'a>(node_name: &str, nodes: &'a [NodeInfo]) -> Option<&'a [Cidr]> {
    nodes
        .iter()
        .find(|n| n.name == node_name)
        .map(|n| n.pod_cidrs.as_slice())
        .filter(|c| !c.is_empty())
}

pub struct Reconciler<R> {
    config: Config,
    runner: R,
}

impl<R: Runner> Reconciler<R> {
    pub fn new(config: Config, runner: R) -> Self {
        Reconciler { config, runner }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies the state derived from `nodes`. Routes and masquerade rules are set up before the
    /// conflist is written, so the first pods of the node (the CNI config makes the runtime
    /// report the network ready) already have connectivity. A failing step does not stop the
    /// others.
    pub fn reconcile(&self, nodes: &[NodeInfo]) -> Result<Outcome, ReconcileError> {
        let Some(own) = own_cidrs(&self.config.node_name, nodes) else {
            return Ok(Outcome::WaitingForPodCidr);
        };
        let mut errors = Vec::new();

        let routes = match routes::reconcile(
            &self.runner,
            &routes::desired(&self.config.node_name, nodes),
        ) {
            Ok(plan) => plan,
            Err(e) => {
                errors.push(e.into());
                RoutePlan::default()
            }
        };

        let cluster = cluster_cidrs(&self.config.pod_subnets, nodes);
        let mut masq = Vec::new();
        for family in [Family::V4, Family::V6] {
            let local: Vec<Cidr> = own
                .iter()
                .filter(|c| c.family() == family)
                .copied()
                .collect();
            if local.is_empty() {
                continue;
            }
            match masq::reconcile(&self.runner, family, &cluster, &local) {
                Ok(change) => masq.push((family, change)),
                Err(source) => errors.push(StepError::Masq { family, source }),
            }
        }

        let conflist_written = match conflist::render(own)
            .and_then(|c| conflist::write_if_changed(&self.config.cni_config_dir, &c))
        {
            Ok(written) => written,
            Err(e) => {
                errors.push(e.into());
                false
            }
        };

        if errors.is_empty() {
            Ok(Outcome::Applied {
                conflist_written,
                routes,
                masq,
            })
        } else {
            Err(ReconcileError(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::fake::FakeRunner;
    use crate::node::testing::info;
    use std::path::PathBuf;

    fn cidrs(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn config(dir: PathBuf, subnets: &[&str]) -> Config {
        Config {
            node_name: "w-1".into(),
            cni_config_dir: dir,
            pod_subnets: cidrs(subnets),
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "capd-podnet-reconcile-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn cluster_cidrs_prefer_configuration() {
        let nodes = vec![
            info("a", &["10.244.1.0/24"], &[]),
            info("b", &["10.244.0.0/24", "10.244.1.0/24"], &[]),
        ];
        assert_eq!(
            cluster_cidrs(&[], &nodes),
            cidrs(&["10.244.0.0/24", "10.244.1.0/24"])
        );
        assert_eq!(
            cluster_cidrs(&cidrs(&["10.244.0.0/16"]), &nodes),
            cidrs(&["10.244.0.0/16"])
        );
    }

    #[test]
    fn waits_without_pod_cidr() {
        let dir = temp_dir("wait");
        let runner = FakeRunner::default();
        let r = Reconciler::new(config(dir.clone(), &[]), runner);
        assert_eq!(
            r.reconcile(&[info("other", &["10.244.2.0/24"], &["172.18.0.4"])])
                .unwrap(),
            Outcome::WaitingForPodCidr
        );
        assert_eq!(
            r.reconcile(&[info("w-1", &[], &["172.18.0.3"])]).unwrap(),
            Outcome::WaitingForPodCidr
        );
        assert!(r.runner.calls().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn full_pass_then_steady_state() {
        let dir = temp_dir("full");
        let nodes = vec![
            info("w-1", &["10.244.1.0/24"], &["172.18.0.3"]),
            info("cp-0", &["10.244.0.0/24"], &["172.18.0.2"]),
        ];
        let runner = FakeRunner::default()
            .answer(
                "iptables -w 5 -t nat -S CAPD-PODNET-MASQ",
                Err("No chain/target/match by that name."),
            )
            .answer("iptables -w 5 -t nat -C", Err("Bad rule"));
        let r = Reconciler::new(config(dir.clone(), &[]), runner);
        let Outcome::Applied {
            conflist_written,
            routes,
            masq,
        } = r.reconcile(&nodes).unwrap()
        else {
            panic!("not applied")
        };
        assert!(conflist_written);
        assert_eq!(routes.replace.len(), 1);
        assert_eq!(masq.len(), 1, "no ip6tables for an IPv4-only node");
        assert!(masq[0].1.created_chain && masq[0].1.rebuilt_chain);
        let calls = r.runner.calls();
        assert!(
            calls.contains(
                &"ip -4 route replace 10.244.0.0/24 via 172.18.0.2 proto 252".to_string()
            ),
            "{calls:?}"
        );
        assert!(
            calls.contains(
                &"iptables -w 5 -t nat -A CAPD-PODNET-MASQ -d 10.244.0.0/24 -j RETURN".to_string()
            ),
            "{calls:?}"
        );
        assert!(
            calls.iter().all(|c| !c.starts_with("ip6tables")),
            "{calls:?}"
        );
        let written = std::fs::read_to_string(dir.join(conflist::CONFLIST_FILE)).unwrap();
        assert!(written.contains("\"10.244.1.0/24\""), "{written}");

        // second pass with the same nodes: the conflist is unchanged
        let Outcome::Applied {
            conflist_written, ..
        } = r.reconcile(&nodes).unwrap()
        else {
            panic!("not applied")
        };
        assert!(!conflist_written);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failing_step_does_not_stop_the_others() {
        let dir = temp_dir("fail");
        let nodes = vec![
            info("w-1", &["10.244.1.0/24"], &["172.18.0.3"]),
            info("cp-0", &["10.244.0.0/24"], &["172.18.0.2"]),
        ];
        let runner =
            FakeRunner::default().answer("ip -4 route replace", Err("Nexthop has invalid gateway"));
        let r = Reconciler::new(config(dir.clone(), &["10.244.0.0/16"]), runner);
        let err = r.reconcile(&nodes).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.to_string().contains("Nexthop has invalid gateway"),
            "{err}"
        );
        assert!(dir.join(conflist::CONFLIST_FILE).exists());
        assert!(r.runner.calls().iter().any(|c| c.starts_with("iptables")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
