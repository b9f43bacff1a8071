//! A suite's steps, printed as they run and summed up at the end.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(Duration),
    Failed(String),
}

#[derive(Default)]
pub struct Steps {
    pub done: Vec<(String, Outcome)>,
}

impl Steps {
    /// Runs a step; its error is recorded and returned.
    pub async fn run<T, F>(&mut self, name: &str, f: F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = anyhow::Result<T>>,
    {
        eprintln!("==> {name}");
        let start = Instant::now();
        match f.await {
            Ok(v) => {
                let took = start.elapsed();
                eprintln!("    ok ({:.1}s)", took.as_secs_f64());
                self.done.push((name.to_string(), Outcome::Passed(took)));
                Ok(v)
            }
            Err(e) => {
                eprintln!("    FAILED: {e:#}");
                self.done
                    .push((name.to_string(), Outcome::Failed(format!("{e:#}"))));
                Err(e.context(format!("step `{name}`")))
            }
        }
    }

    pub fn summary(&self) -> String {
        let width = self.done.iter().map(|(n, _)| n.len()).max().unwrap_or(10) + 2;
        let mut s = format!("\n{:<width$}result\n", "step");
        for (name, o) in &self.done {
            let r = match o {
                Outcome::Passed(d) => format!("passed in {:.1}s", d.as_secs_f64()),
                Outcome::Failed(e) => format!("FAILED: {}", e.lines().next().unwrap_or_default()),
            };
            s.push_str(&format!("{name:<width$}{r}\n"));
        }
        s
    }
}
