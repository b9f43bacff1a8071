//! `cargo bench -p capd-e2e --bench image_size`: builds the release manager and its image
//! the offline way and prints the sizes (binary, base image, final image) and build time.

use capd_e2e::artifacts::{build_image, cargo_build, mb};
use capd_testenv::TestEnv;
use std::time::Instant;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: build only then.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("image_size: run with `cargo bench -p capd-e2e --bench image_size`");
        return;
    }
    let env = match TestEnv::load() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("image_size: {e}");
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    let bin = match cargo_build("capd-manager", "capd-manager", true) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("image_size: {e:#}");
            std::process::exit(1);
        }
    };
    let compile = start.elapsed();
    let tag = "localhost/capd-rs/capd-manager:bench";
    let image = match build_image(&env, tag, &bin) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("image_size: {e:#}");
            std::process::exit(1);
        }
    };
    let base = std::process::Command::new("docker")
        .env("DOCKER_HOST", env.docker_host())
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Size}}",
            &env.state.images.base,
        ])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let bin_size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!("capd-manager image (release, stripped)");
    println!("  binary           {:>10}  {}", mb(bin_size), bin.display());
    println!(
        "  base image       {:>10}  {}",
        mb(base),
        env.state.images.base
    );
    println!("  image            {:>10}  {tag}", mb(image.size_bytes));
    println!(
        "  added by image   {:>10}",
        mb(image.size_bytes.saturating_sub(base))
    );
    println!("  cargo build      {:>9.1}s", compile.as_secs_f64());
    println!(
        "  docker build     {:>9.1}s  (DOCKER_BUILDKIT=0, no registry)",
        image.build_time.as_secs_f64()
    );
}
