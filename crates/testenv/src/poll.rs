use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:?} waiting for {what}{}", last.as_ref().map(|l| format!(" (last seen: {l})")).unwrap_or_default())]
pub struct PollError {
    pub what: String,
    pub waited: Duration,
    pub last: Option<String>,
}

/// Polls `check` every 250 ms until it returns `Ok(value)` or `timeout` passes.
/// `check` returns `Err(description)` to say what it saw, which ends up in the
/// timeout error so a failing test tells why.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, PollError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        let last = match check().await {
            Ok(v) => return Ok(v),
            Err(seen) => Some(seen),
        };
        if start.elapsed() >= timeout {
            return Err(PollError {
                what: what.to_string(),
                waited: start.elapsed(),
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_value_once_check_passes() {
        let mut n = 0;
        let v = poll_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let seen = n;
            async move {
                if seen >= 3 {
                    Ok(seen)
                } else {
                    Err(format!("n={seen}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn times_out_with_last_observation() {
        let err = poll_until::<(), _, _>("never", Duration::from_millis(300), || async {
            Err("still no".to_string())
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("still no"), "{err}");
        assert!(err.waited >= Duration::from_millis(300));
    }
}
