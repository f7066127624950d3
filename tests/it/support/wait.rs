//! Condition waits for tests: poll a condition until it holds or a limit
//! passes, instead of sleeping for a guessed time. A test that asserts that
//! something does *not* happen still watches for a fixed window; these are
//! for everything that waits for something to happen.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const TICK: Duration = Duration::from_millis(20);

/// Polls the async condition `f` until it holds; fails the test naming
/// `what` once `limit` has passed.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        tokio::time::sleep(TICK).await;
    }
}

/// [`until`] for a plain (blocking) condition, from a non-async test.
pub fn until_blocking(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(TICK);
    }
}
