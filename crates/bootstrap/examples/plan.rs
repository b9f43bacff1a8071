//! Prints the actions for a bootstrap data file:
//! `cargo run -p capd-bootstrap --example plan -- <file> [cloud-config|ignition]`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: plan <file> [cloud-config|ignition]");
        return ExitCode::from(2);
    };
    let format = match args
        .next()
        .map(|f| f.parse::<capd_bootstrap::Format>())
        .transpose()
    {
        Ok(f) => f.unwrap_or(capd_bootstrap::Format::CloudConfig),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let data = match std::fs::read(&file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    match capd_bootstrap::plan(&data, format, &capd_bootstrap::Options::default()) {
        Ok(plan) => {
            for (i, action) in plan.actions.iter().enumerate() {
                println!("{i:3} [retries {}] {}", action.retries, action.description);
                println!("      $ {}", action.command_line());
                if let Some(stdin) = &action.stdin {
                    for line in String::from_utf8_lossy(stdin).lines() {
                        println!("      | {line}");
                    }
                }
            }
            for key in &plan.ignored {
                println!("ignored: {key}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
