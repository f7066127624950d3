//! Waiting as named conditions with one polling helper and a deadline
//! (kube-runtime's `await_condition` shape).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::error::{Error, Result};

/// Poll intervals: `first`, growing by `factor`, capped at `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First interval.
    pub first: Duration,
    /// Growth per poll.
    pub factor: f64,
    /// Longest interval.
    pub max: Duration,
}

impl Backoff {
    /// For tasks: 100 ms, 150 ms, 225 ms, ... up to 2 s.
    pub fn task() -> Backoff {
        Backoff { first: Duration::from_millis(100), factor: 1.5, max: Duration::from_secs(2) }
    }

    /// For slower conditions (guest agent, power state): 500 ms up to 3 s.
    pub fn slow() -> Backoff {
        Backoff { first: Duration::from_millis(500), factor: 1.5, max: Duration::from_secs(3) }
    }

    /// The interval after `n` polls.
    pub fn interval(&self, n: u32) -> Duration {
        let f = self.factor.powi(n.min(64) as i32);
        self.first.mul_f64(f).min(self.max)
    }
}

/// Calls `check` until it returns `Some`, an error, or `deadline` passes
/// ([`Error::Timeout`] naming `what`). The check runs at least once.
pub async fn poll<T, F, Fut>(what: &str, deadline: Instant, backoff: Backoff, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    let mut n = 0;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout { what: what.to_string(), secs: (now - started).as_secs() });
        }
        let sleep = backoff.interval(n).min(deadline - now);
        n += 1;
        tokio::time::sleep(sleep).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn task_backoff_is_quick_early_and_capped() {
        let b = Backoff::task();
        assert!(b.interval(0) <= Duration::from_millis(250));
        assert!(b.interval(1) <= Duration::from_millis(250));
        assert!(b.interval(2) <= Duration::from_millis(250));
        assert_eq!(b.interval(50), Duration::from_secs(2));
        let total: Duration = (0..10).map(|n| b.interval(n)).sum();
        assert!(total > Duration::from_secs(5), "10 polls span {total:?}: no hammering");
    }

    #[tokio::test(start_paused = true)]
    async fn deadline() {
        let r: Result<()> =
            poll("nothing", Instant::now() + Duration::from_secs(3), Backoff::task(), || async { Ok(None) }).await;
        assert!(matches!(r, Err(Error::Timeout { .. })));
        let mut k = 0;
        let r = poll("third", Instant::now() + Duration::from_secs(3), Backoff::task(), || {
            k += 1;
            let done = k == 3;
            async move { Ok(done.then_some(7)) }
        })
        .await;
        assert_eq!(r.ok(), Some(7));
    }
}
