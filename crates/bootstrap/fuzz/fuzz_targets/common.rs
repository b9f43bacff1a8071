//! What must hold for any plan, whatever the input (shared by the targets).

use capd_bootstrap::{ActionKind, Options, Plan};

pub const OPTIONS: [Options; 2] = [
    Options { kubeadm_fixups: true, private_cgroupns: true },
    Options { kubeadm_fixups: false, private_cgroupns: false },
];

pub fn check(plan: &Plan) {
    for (i, a) in plan.actions.iter().enumerate() {
        assert!(!a.argv.is_empty(), "empty argv");
        assert!(a.argv.iter().all(|s| !s.contains('\0')), "NUL in argv");
        assert!(!a.description.is_empty(), "no description");
        let _ = a.command_line();
        match &a.kind {
            ActionKind::WriteFile { path, .. } => {
                assert!(path.starts_with('/') && !path.ends_with('/'), "bad path {path:?}");
                assert_eq!(a.argv.len(), 6);
                assert_eq!(a.argv.get(5), Some(path));
                assert!(a.stdin.is_some(), "write without content");
            }
            ActionKind::Chmod { mode, .. } => assert!(*mode <= 0o7777),
            ActionKind::Sentinel => {
                let next = plan.actions.get(i + 1).map(|n| &n.kind);
                assert!(matches!(next, Some(ActionKind::RunCommand { kubeadm: true, .. })), "sentinel not before kubeadm");
            }
            _ => {}
        }
    }
}
