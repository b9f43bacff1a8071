//! Per-object exponential backoff for failed reconciles: 1s, 2s, 4s ... capped at 5
//! minutes, reset by the next success. While the API server or the container engine is
//! unavailable the cap is
//! [`UNAVAILABLE_MAX`]: the failed attempts cost a refused connection each, and work
//! resumes within seconds of the server answering (not after a backoff that grew
//! through the outage).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

const MAX: Duration = Duration::from_secs(300);

/// 1 s after the first failure, doubling, capped at [`MAX`].
fn wait_after(failures: u32) -> Duration {
    let secs = 1u64
        .checked_shl(failures.saturating_sub(1).min(16))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX)
}
pub const UNAVAILABLE_MAX: Duration = Duration::from_secs(5);

impl Backoff {
    /// The wait after a failure; `unavailable`: the API server or the engine did not
    /// answer. Such a failure is not counted: after an outage, the object's next
    /// ordinary failure backs off from where it was, not from a count the outage grew.
    pub fn failed_with(&self, key: &str, unavailable: bool) -> Duration {
        if unavailable {
            let m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.get(key).copied().unwrap_or(0).saturating_add(1);
            return wait_after(n).min(UNAVAILABLE_MAX);
        }
        self.failed(key)
    }

    pub fn failed(&self, key: &str) -> Duration {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        wait_after(*n)
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps_and_resets() {
        let b = Backoff::default();
        assert_eq!(b.failed("a"), Duration::from_secs(1));
        assert_eq!(b.failed("a"), Duration::from_secs(2));
        assert_eq!(b.failed("a"), Duration::from_secs(4));
        assert_eq!(b.failed("b"), Duration::from_secs(1));
        for _ in 0..20 {
            b.failed("a");
        }
        assert_eq!(b.failed("a"), MAX);
        b.succeeded("a");
        assert_eq!(b.failed("a"), Duration::from_secs(1));
    }

    #[test]
    fn an_unavailable_api_server_caps_the_wait() {
        let b = Backoff::default();
        for _ in 0..10 {
            b.failed("a");
        }
        assert_eq!(b.failed_with("a", true), UNAVAILABLE_MAX);
        assert_eq!(b.failed_with("a", false), MAX);
        // An outage does not grow the count.
        let c = Backoff::default();
        for _ in 0..30 {
            assert!(c.failed_with("c", true) <= UNAVAILABLE_MAX);
        }
        assert_eq!(c.failed_with("c", false), Duration::from_secs(1));
    }
}
