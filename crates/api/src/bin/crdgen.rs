//! Writes the CRDs and admission policies, or checks the committed ones.
//!
//! ```text
//! crdgen [--check] [CRD_DIR] [--policies POLICY_DIR]
//! ```
//! CRD_DIR defaults to `manifests/crds`, POLICY_DIR to `policies` beside CRD_DIR.
//! With `--check`, writes nothing and exits 1 listing every file that differs.

use capd_api::manifests::{crd_manifests, drift, policy_manifests, write, Drift, Manifest};
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    check: bool,
    crd_dir: PathBuf,
    policy_dir: PathBuf,
}

fn usage() -> String {
    "usage: crdgen [--check] [CRD_DIR] [--policies POLICY_DIR]".to_string()
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut check = false;
    let mut crd_dir = None;
    let mut policy_dir = None;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--policies" => policy_dir = Some(PathBuf::from(args.next().ok_or_else(usage)?)),
            "-h" | "--help" => return Err(usage()),
            s if s.starts_with('-') => return Err(format!("unknown flag {s}\n{}", usage())),
            s if crd_dir.is_none() => crd_dir = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s}\n{}", usage())),
        }
    }
    let crd_dir = crd_dir.unwrap_or_else(|| PathBuf::from("manifests/crds"));
    let policy_dir = policy_dir.unwrap_or_else(|| {
        crd_dir
            .parent()
            .map(|p| p.join("policies"))
            .unwrap_or_else(|| PathBuf::from("policies"))
    });
    Ok(Args {
        check,
        crd_dir,
        policy_dir,
    })
}

fn run(args: &Args) -> Result<Vec<Drift>, capd_api::Error> {
    let sets: [(&PathBuf, Vec<Manifest>); 2] = [
        (&args.crd_dir, crd_manifests()?),
        (&args.policy_dir, policy_manifests()?),
    ];
    let mut drifted = Vec::new();
    for (dir, manifests) in &sets {
        if args.check {
            drifted.extend(drift(dir, manifests)?);
        } else {
            write(dir, manifests)?;
            println!("wrote {} files into {}", manifests.len(), dir.display());
        }
    }
    Ok(drifted)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(drifted) if drifted.is_empty() => {
            if args.check {
                println!("manifests are up to date");
            }
            ExitCode::SUCCESS
        }
        Ok(drifted) => {
            eprintln!(
                "manifests differ from the generator (run crdgen without --check to update):"
            );
            for d in &drifted {
                eprintln!("  {d}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("crdgen: {e}");
            ExitCode::FAILURE
        }
    }
}
