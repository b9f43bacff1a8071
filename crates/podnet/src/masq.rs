//! Masquerading of pod traffic leaving the cluster's pod network.
//!
//! Layout in the `nat` table (per IP family, `iptables`/`ip6tables`):
//!
//! ```text
//! -A POSTROUTING -s <this node's pod CIDR> -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ
//! -A CAPD-PODNET-MASQ -d <cluster pod CIDR> -j RETURN      (one per cluster pod CIDR)
//! -A CAPD-PODNET-MASQ -j MASQUERADE
//! ```

use crate::cidr::{Cidr, Family};
use crate::exec::{ExecError, Runner};

pub const CHAIN: &str = "CAPD-PODNET-MASQ";
const POSTROUTING: &str = "POSTROUTING";

#[derive(Debug, thiserror::Error)]
pub enum MasqError {
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A rule of our chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainRule {
    /// `-d <cidr> -j RETURN`
    Return(Cidr),
    /// `-j MASQUERADE`
    Masquerade,
    /// Anything else found in the chain (it will be flushed).
    Other(String),
}

impl ChainRule {
    /// The rule specification (what follows `-A CAPD-PODNET-MASQ`).
    pub fn spec(&self) -> Vec<String> {
        match self {
            ChainRule::Return(c) => vec!["-d".into(), c.to_string(), "-j".into(), "RETURN".into()],
            ChainRule::Masquerade => vec!["-j".into(), "MASQUERADE".into()],
            ChainRule::Other(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// The binary managing the family's rules.
pub fn binary(f: Family) -> &'static str {
    match f {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    }
}

/// The desired contents of our chain for one family: RETURN for every cluster pod CIDR of that
/// family (plus this node's own CIDRs that no cluster CIDR covers), then MASQUERADE.
pub fn chain_rules(family: Family, cluster: &[Cidr], local: &[Cidr]) -> Vec<ChainRule> {
    let cluster: Vec<Cidr> = cluster
        .iter()
        .filter(|c| c.family() == family)
        .copied()
        .collect();
    let uncovered = local
        .iter()
        .filter(|l| l.family() == family && !cluster.iter().any(|c| c.contains(l)));
    let mut exempt: Vec<Cidr> = cluster.iter().chain(uncovered).copied().collect();
    exempt.sort();
    exempt.dedup();
    exempt
        .into_iter()
        .map(ChainRule::Return)
        .chain([ChainRule::Masquerade])
        .collect()
}

/// The POSTROUTING jump for traffic from one of this node's pod CIDRs.
pub fn jump_spec(local: &Cidr) -> Vec<String> {
    [
        "-s",
        &local.to_string(),
        "-m",
        "addrtype",
        "!",
        "--dst-type",
        "LOCAL",
        "-j",
        CHAIN,
    ]
    .map(str::to_string)
    .to_vec()
}

/// Parses `iptables -t nat -S CAPD-PODNET-MASQ` into the chain's rules.
pub fn parse_chain(output: &str) -> Vec<ChainRule> {
    let prefix = format!("-A {CHAIN} ");
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .map(|spec| {
            let words: Vec<&str> = spec.split_whitespace().collect();
            match words.as_slice() {
                ["-d", cidr, "-j", "RETURN"] => cidr
                    .parse()
                    .map(ChainRule::Return)
                    .unwrap_or_else(|_| ChainRule::Other(spec.to_string())),
                ["-j", "MASQUERADE"] => ChainRule::Masquerade,
                _ => ChainRule::Other(spec.to_string()),
            }
        })
        .collect()
}

/// From `iptables -t nat -S POSTROUTING`, the specs of our jumps whose source is not one of
/// `local` any more (to be deleted with `-D POSTROUTING <spec>`).
pub fn stale_jumps(postrouting: &str, local: &[Cidr]) -> Vec<Vec<String>> {
    let prefix = format!("-A {POSTROUTING} ");
    postrouting
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .map(|spec| {
            spec.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|words| words.windows(2).any(|w| w[0] == "-j" && w[1] == CHAIN))
        .filter(|words| {
            let src = words
                .windows(2)
                .find(|w| w[0] == "-s")
                .and_then(|w| w[1].parse::<Cidr>().ok());
            !src.is_some_and(|s| local.contains(&s))
        })
        .collect()
}

/// What [`reconcile`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasqChange {
    pub created_chain: bool,
    pub rebuilt_chain: bool,
    pub added_jumps: usize,
    pub deleted_jumps: usize,
}

impl MasqChange {
    pub fn is_empty(&self) -> bool {
        *self == MasqChange::default()
    }
}

fn nat(args: &[&str]) -> Vec<String> {
    ["-w", "5", "-t", "nat"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

fn nat_spec(args: &[&str], spec: &[String]) -> Vec<String> {
    let mut v = nat(args);
    v.extend(spec.iter().cloned());
    v
}

/// Brings one family's nat rules to the desired state. `local` are this node's pod CIDRs of the
/// family (callers skip families without any), `cluster` the cluster pod CIDRs.
pub fn reconcile(
    runner: &dyn Runner,
    family: Family,
    cluster: &[Cidr],
    local: &[Cidr],
) -> Result<MasqChange, MasqError> {
    let bin = binary(family);
    let local: Vec<Cidr> = local
        .iter()
        .filter(|c| c.family() == family)
        .copied()
        .collect();
    let mut change = MasqChange::default();

    let current = match runner.run(bin, &nat(&["-S", CHAIN])) {
        Ok(out) => parse_chain(&out.stdout),
        Err(_) => {
            runner.run(bin, &nat(&["-N", CHAIN]))?;
            change.created_chain = true;
            Vec::new()
        }
    };
    let want = chain_rules(family, cluster, &local);
    if current != want {
        if !current.is_empty() {
            runner.run(bin, &nat(&["-F", CHAIN]))?;
        }
        for rule in &want {
            runner.run(bin, &nat_spec(&["-A", CHAIN], &rule.spec()))?;
        }
        change.rebuilt_chain = true;
    }

    let postrouting = runner.run(bin, &nat(&["-S", POSTROUTING]))?;
    for spec in stale_jumps(&postrouting.stdout, &local) {
        runner.run(bin, &nat_spec(&["-D", POSTROUTING], &spec))?;
        change.deleted_jumps += 1;
    }
    for c in &local {
        let spec = jump_spec(c);
        if runner
            .run(bin, &nat_spec(&["-C", POSTROUTING], &spec))
            .is_err()
        {
            runner.run(bin, &nat_spec(&["-A", POSTROUTING], &spec))?;
            change.added_jumps += 1;
        }
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::fake::FakeRunner;

    fn cidrs(v: &[&str]) -> Vec<Cidr> {
        v.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn specs(rules: &[ChainRule]) -> Vec<String> {
        rules.iter().map(|r| r.spec().join(" ")).collect()
    }

    #[test]
    fn chain_rules_per_family() {
        let cluster = cidrs(&["10.244.0.0/16", "fd00:10:244::/56", "10.96.0.0/16"]);
        let local = cidrs(&["10.244.1.0/24", "fd00:10:244:1::/64"]);
        assert_eq!(
            specs(&chain_rules(Family::V4, &cluster, &local)),
            [
                "-d 10.96.0.0/16 -j RETURN",
                "-d 10.244.0.0/16 -j RETURN",
                "-j MASQUERADE"
            ]
        );
        assert_eq!(
            specs(&chain_rules(Family::V6, &cluster, &local)),
            ["-d fd00:10:244::/56 -j RETURN", "-j MASQUERADE"]
        );
        // a local CIDR outside every cluster CIDR is still exempt
        assert_eq!(
            specs(&chain_rules(Family::V4, &cidrs(&["10.96.0.0/16"]), &local)),
            [
                "-d 10.96.0.0/16 -j RETURN",
                "-d 10.244.1.0/24 -j RETURN",
                "-j MASQUERADE"
            ]
        );
        // no cluster CIDR of the family: only the local ones
        assert_eq!(
            specs(&chain_rules(Family::V6, &[], &local)),
            ["-d fd00:10:244:1::/64 -j RETURN", "-j MASQUERADE"]
        );
        // duplicates between cluster and local collapse; MASQUERADE always last
        let rules = chain_rules(
            Family::V4,
            &cidrs(&["10.244.1.0/24"]),
            &cidrs(&["10.244.1.0/24"]),
        );
        assert_eq!(
            specs(&rules),
            ["-d 10.244.1.0/24 -j RETURN", "-j MASQUERADE"]
        );
    }

    #[test]
    fn jump_rule() {
        assert_eq!(
            jump_spec(&"10.244.1.0/24".parse().unwrap()).join(" "),
            "-s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ"
        );
    }

    #[test]
    fn parses_chain_listing() {
        let out = "-N CAPD-PODNET-MASQ\n-A CAPD-PODNET-MASQ -d 10.244.0.0/16 -j RETURN\n-A CAPD-PODNET-MASQ -p tcp -j ACCEPT\n-A CAPD-PODNET-MASQ -j MASQUERADE\n";
        assert_eq!(
            parse_chain(out),
            vec![
                ChainRule::Return("10.244.0.0/16".parse().unwrap()),
                ChainRule::Other("-p tcp -j ACCEPT".into()),
                ChainRule::Masquerade
            ]
        );
        assert!(parse_chain("-N CAPD-PODNET-MASQ\n").is_empty());
    }

    #[test]
    fn finds_stale_jumps_only() {
        let out = "-P POSTROUTING ACCEPT\n\
                   -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
                   -A POSTROUTING -s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ\n\
                   -A POSTROUTING -s 10.244.7.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ\n";
        let stale = stale_jumps(out, &cidrs(&["10.244.1.0/24"]));
        assert_eq!(stale.len(), 1);
        assert_eq!(
            stale[0].join(" "),
            "-s 10.244.7.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ"
        );
        assert!(stale_jumps(out, &cidrs(&["10.244.1.0/24", "10.244.7.0/24"])).is_empty());
    }

    #[test]
    fn reconcile_from_scratch() {
        let runner = FakeRunner::default()
            .answer(
                "iptables -w 5 -t nat -S CAPD-PODNET-MASQ",
                Err("No chain/target/match by that name."),
            )
            .answer(
                "iptables -w 5 -t nat -S POSTROUTING",
                Ok("-P POSTROUTING ACCEPT\n"),
            )
            .answer("iptables -w 5 -t nat -C", Err("Bad rule"));
        let change = reconcile(
            &runner,
            Family::V4,
            &cidrs(&["10.96.0.0/16"]),
            &cidrs(&["10.244.1.0/24", "fd00::/64"]),
        )
        .unwrap();
        assert_eq!(
            change,
            MasqChange {
                created_chain: true,
                rebuilt_chain: true,
                added_jumps: 1,
                deleted_jumps: 0
            }
        );
        assert_eq!(
            runner.calls(),
            [
                "iptables -w 5 -t nat -S CAPD-PODNET-MASQ",
                "iptables -w 5 -t nat -N CAPD-PODNET-MASQ",
                "iptables -w 5 -t nat -A CAPD-PODNET-MASQ -d 10.96.0.0/16 -j RETURN",
                "iptables -w 5 -t nat -A CAPD-PODNET-MASQ -d 10.244.1.0/24 -j RETURN",
                "iptables -w 5 -t nat -A CAPD-PODNET-MASQ -j MASQUERADE",
                "iptables -w 5 -t nat -S POSTROUTING",
                "iptables -w 5 -t nat -C POSTROUTING -s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ",
                "iptables -w 5 -t nat -A POSTROUTING -s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ",
            ]
        );
    }

    #[test]
    fn reconcile_steady_state_only_reads() {
        let runner = FakeRunner::default()
            .answer(
                "ip6tables -w 5 -t nat -S CAPD-PODNET-MASQ",
                Ok("-N CAPD-PODNET-MASQ\n-A CAPD-PODNET-MASQ -d fd00:10:244::/56 -j RETURN\n-A CAPD-PODNET-MASQ -j MASQUERADE\n"),
            )
            .answer(
                "ip6tables -w 5 -t nat -S POSTROUTING",
                Ok("-P POSTROUTING ACCEPT\n-A POSTROUTING -s fd00:10:244:1::/64 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ\n"),
            );
        let change = reconcile(
            &runner,
            Family::V6,
            &cidrs(&["fd00:10:244::/56"]),
            &cidrs(&["fd00:10:244:1::/64"]),
        )
        .unwrap();
        assert!(change.is_empty(), "{change:?}");
        assert_eq!(
            runner.calls(),
            [
                "ip6tables -w 5 -t nat -S CAPD-PODNET-MASQ",
                "ip6tables -w 5 -t nat -S POSTROUTING",
                "ip6tables -w 5 -t nat -C POSTROUTING -s fd00:10:244:1::/64 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ",
            ]
        );

        let runner = FakeRunner::default()
            .answer(
                "iptables -w 5 -t nat -S CAPD-PODNET-MASQ",
                Ok("-N CAPD-PODNET-MASQ\n-A CAPD-PODNET-MASQ -d 10.244.0.0/16 -j RETURN\n-A CAPD-PODNET-MASQ -j MASQUERADE\n"),
            )
            .answer(
                "iptables -w 5 -t nat -S POSTROUTING",
                Ok("-A POSTROUTING -s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ\n-A POSTROUTING -s 10.244.9.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ\n"),
            );
        let change = reconcile(
            &runner,
            Family::V4,
            &cidrs(&["10.244.0.0/16"]),
            &cidrs(&["10.244.1.0/24"]),
        )
        .unwrap();
        assert_eq!(
            change,
            MasqChange {
                deleted_jumps: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            runner.calls(),
            [
                "iptables -w 5 -t nat -S CAPD-PODNET-MASQ",
                "iptables -w 5 -t nat -S POSTROUTING",
                "iptables -w 5 -t nat -D POSTROUTING -s 10.244.9.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ",
                "iptables -w 5 -t nat -C POSTROUTING -s 10.244.1.0/24 -m addrtype ! --dst-type LOCAL -j CAPD-PODNET-MASQ",
            ]
        );
    }
}
