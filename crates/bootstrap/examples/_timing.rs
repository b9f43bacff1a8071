fn main() {
    let o = capd_bootstrap::Options::default();
    for n in [100_000usize, 200_000, 400_000, 1_000_000] {
        let t = std::time::Instant::now();
        let deep_yaml = "[".repeat(n);
        let _ = capd_bootstrap::plan_cloud_config(deep_yaml.as_bytes(), &o);
        println!("deep [ {n} {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let deep_yaml = "{a: ".repeat(n/4);
        let _ = capd_bootstrap::plan_cloud_config(deep_yaml.as_bytes(), &o);
        println!("deep {{a: {n} {:?}", t.elapsed());
    }
}
