//! The one polling helper of the provider: a named condition, a deadline, an
//! optional per-probe timeout, intervals with backoff, the last observation
//! kept for the error, and an early return when Terraform asks the provider
//! to stop (`StopProvider`, sent after Ctrl-C).
//!
//! Every wait of the provider goes through [`until`] (PVE tasks and the
//! guest agent, Talos nodes, cluster health) or [`pause`] (a plain delay that
//! still ends on stop), so they share one meaning of "deadline", "not yet"
//! and "stopped" (kube-runtime's `await_condition` shape). This module knows
//! nothing of PVE, Talos or the plugin protocol: the clients map [`Ended`]
//! into their own error types.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// "Terraform asked us to stop": cheap to clone, checked by every wait.
#[derive(Clone, Debug, Default)]
pub struct Stop(Option<watch::Receiver<bool>>);

/// A duration as users write them: `20m`, `1h30m`, `45s` (whole seconds).
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Fires a [`Stop`] (held by the plugin server).
#[derive(Debug)]
pub struct StopSender(watch::Sender<bool>);

impl StopSender {
    /// Asks every wait holding the matching [`Stop`] to end.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// A signal and the sender that fires it.
    pub fn new() -> (StopSender, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopSender(tx), Stop(Some(rx)))
    }

    /// A signal that never fires (tests, plan-time calls).
    pub fn never() -> Stop {
        Stop(None)
    }

    /// Whether stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Completes when stop is requested (never, if it cannot be).
    pub async fn stopped(&self) {
        let Some(rx) = &self.0 else { return std::future::pending().await };
        let mut rx = rx.clone();
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Poll intervals: `first`, growing by `factor`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// First interval.
    pub first: Duration,
    /// Growth per poll.
    pub factor: f64,
    /// Longest interval.
    pub max: Duration,
}

impl Backoff {
    /// For PVE tasks: 100 ms, 150 ms, 225 ms, ... up to 2 s (completion is
    /// noticed within 250 ms early on, and the API is never hammered).
    pub fn task() -> Backoff {
        Backoff { first: Duration::from_millis(100), factor: 1.5, max: Duration::from_secs(2) }
    }

    /// For slower conditions (guest agent, power state): 500 ms up to 3 s.
    pub fn slow() -> Backoff {
        Backoff { first: Duration::from_millis(500), factor: 1.5, max: Duration::from_secs(3) }
    }

    /// The same interval every time.
    pub fn fixed(every: Duration) -> Backoff {
        Backoff { first: every, factor: 1.0, max: every }
    }

    /// The interval after `n` polls.
    pub fn interval(&self, n: u32) -> Duration {
        let f = self.factor.powi(n.min(64) as i32);
        self.first.mul_f64(f).min(self.max)
    }
}

/// One observation of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe<T> {
    /// The condition holds.
    Ready(T),
    /// Not yet; the text says what was seen (it ends up in the error).
    NotYet(String),
}

/// How a wait is bounded.
#[derive(Clone, Debug)]
pub struct Wait<'a> {
    /// What is awaited, for errors and logs ("task UPID:…", "etcd membership").
    pub what: &'a str,
    /// When to give up.
    pub deadline: Instant,
    /// Intervals between probes.
    pub backoff: Backoff,
    /// Longest a single probe may take (None: only the deadline bounds it).
    pub probe_timeout: Option<Duration>,
    /// Ends the wait early.
    pub stop: &'a Stop,
}

impl<'a> Wait<'a> {
    /// A wait for `what` lasting at most `limit` from now.
    pub fn new(what: &'a str, limit: Duration, backoff: Backoff, stop: &'a Stop) -> Wait<'a> {
        Wait { what, deadline: Instant::now() + limit, backoff, probe_timeout: None, stop }
    }

    /// A wait for `what` that ends at `deadline` (one deadline shared by
    /// several waits, as a Terraform operation's timeout).
    pub fn until(what: &'a str, deadline: Instant, backoff: Backoff, stop: &'a Stop) -> Wait<'a> {
        Wait { what, deadline, backoff, probe_timeout: None, stop }
    }

    /// The same wait with a per-probe timeout.
    pub fn probe_timeout(mut self, t: Duration) -> Wait<'a> {
        self.probe_timeout = Some(t);
        self
    }
}

/// How long a wait ran and what it saw last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Time spent waiting.
    pub after: Duration,
    /// The last observation: a [`Probe::NotYet`] text, or a note that a
    /// probe was cut off (None: no probe finished).
    pub last: Option<String>,
}

impl Report {
    /// The last observation, or a phrase saying there was none.
    pub fn last_or_none(&self) -> String {
        self.last.clone().unwrap_or_else(|| "no attempt finished".to_string())
    }
}

/// Why a wait ended without the condition holding.
#[derive(Debug)]
pub enum Ended<E> {
    /// A probe failed (the error is the probe's own).
    Failed(E),
    /// The deadline passed.
    TimedOut(Report),
    /// Terraform asked the provider to stop.
    Stopped(Report),
}

enum Step<T, E> {
    Done(Result<T, E>),
    Seen(String),
    /// Cut off: by its own time limit (true) or by the deadline.
    CutOff(bool),
    Stopped,
}

/// How long the one probe of a wait whose deadline already passed may take
/// when the wait sets no per-probe timeout.
pub const FIRST_PROBE_FLOOR: Duration = Duration::from_secs(10);

/// Probes until [`Probe::Ready`], an error, the deadline, or stop. The probe
/// runs at least once unless stop was already requested. A probe still
/// running when the deadline passes (or its own timeout) is dropped and the
/// last finished observation stays the news; one running when stop comes is
/// dropped too, so a wait returns within moments of the request.
pub async fn until<T, E, F, Fut>(w: &Wait<'_>, mut probe: F) -> Result<T, Ended<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Probe<T>, E>>,
{
    let started = Instant::now();
    let report = |last: &Option<String>| Report { after: started.elapsed(), last: last.clone() };
    let mut last: Option<String> = None;
    let mut n = 0u32;
    loop {
        if w.stop.is_stopped() {
            return Err(Ended::Stopped(report(&last)));
        }
        let left = w.deadline.saturating_duration_since(Instant::now());
        if n > 0 && left.is_zero() {
            // The pause slept up to the deadline: no probe gets zero time.
            return Err(Ended::TimedOut(report(&last)));
        }
        // The first probe runs even at a passed deadline (at least once),
        // bounded by its own timeout or FIRST_PROBE_FLOOR.
        let (bound, by_probe_timeout) = match (left.is_zero(), w.probe_timeout) {
            (true, t) => (t.unwrap_or(FIRST_PROBE_FLOOR), true),
            (false, Some(t)) if t < left => (t, true),
            (false, _) => (left, false),
        };
        let step = tokio::select! {
            biased;
            _ = w.stop.stopped() => Step::Stopped,
            r = probe() => match r {
                Ok(Probe::Ready(v)) => Step::Done(Ok(v)),
                Ok(Probe::NotYet(why)) => Step::Seen(why),
                Err(e) => Step::Done(Err(e)),
            },
            _ = tokio::time::sleep(bound) => Step::CutOff(by_probe_timeout),
        };
        match step {
            Step::Done(Ok(v)) => return Ok(v),
            Step::Done(Err(e)) => return Err(Ended::Failed(e)),
            Step::Seen(why) => last = Some(why),
            Step::CutOff(by_probe_timeout) => {
                let (first, later) = if by_probe_timeout {
                    (
                        "the first probe took longer than its time limit",
                        "(a later probe took longer than its time limit)",
                    )
                } else {
                    (
                        "the first probe was still running at the deadline",
                        "(a later probe was still running at the deadline)",
                    )
                };
                last = Some(match last {
                    None => first.to_string(),
                    Some(l) if l.ends_with(later) => l,
                    Some(l) => format!("{l} {later}"),
                })
            }
            Step::Stopped => return Err(Ended::Stopped(report(&last))),
        }
        n += 1;
        let now = Instant::now();
        if now >= w.deadline {
            return Err(Ended::TimedOut(report(&last)));
        }
        if pause(w.backoff.interval(n - 1).min(w.deadline - now), w.stop).await.is_err() {
            return Err(Ended::Stopped(report(&last)));
        }
    }
}

/// Stop was requested during a [`pause`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

/// Sleeps for `d`, or until stop is requested (then `Err(Stopped)`).
pub async fn pause(d: Duration, stop: &Stop) -> Result<(), Stopped> {
    if stop.is_stopped() {
        return Err(Stopped);
    }
    tokio::select! {
        biased;
        _ = stop.stopped() => Err(Stopped),
        _ = tokio::time::sleep(d) => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn wait<'a>(limit: u64, stop: &'a Stop) -> Wait<'a> {
        Wait::new("the thing", Duration::from_secs(limit), Backoff::task(), stop)
    }

    #[test]
    fn task_backoff_is_quick_early_and_capped() {
        let b = Backoff::task();
        assert!(b.interval(0) <= Duration::from_millis(250));
        assert!(b.interval(2) <= Duration::from_millis(250));
        assert_eq!(b.interval(50), Duration::from_secs(2));
        let total: Duration = (0..10).map(|n| b.interval(n)).sum();
        assert!(total > Duration::from_secs(5), "10 polls span {total:?}: no hammering");
        assert_eq!(Backoff::fixed(Duration::from_secs(1)).interval(9), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_a_few_probes_and_timeout_keeps_the_last_observation() {
        let never = Stop::never();
        let mut k = 0;
        let r: Result<i32, Ended<()>> = until(&wait(3, &never), || {
            k += 1;
            let done = k == 3;
            async move { Ok(if done { Probe::Ready(7) } else { Probe::NotYet(format!("try {k}")) }) }
        })
        .await;
        assert_eq!(r.ok(), Some(7));
        let r: Result<(), Ended<()>> = until(&wait(3, &never), || async { Ok(Probe::NotYet("busy".into())) }).await;
        match r {
            Err(Ended::TimedOut(rep)) => {
                assert_eq!(rep.last.as_deref(), Some("busy"));
                assert!(rep.after >= Duration::from_secs(3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_ends_the_wait_with_its_error() {
        let never = Stop::never();
        let r: Result<(), Ended<&str>> = until(&wait(3, &never), || async { Err("refused") }).await;
        assert!(matches!(r, Err(Ended::Failed("refused"))));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_probe_runs_even_past_the_deadline() {
        let never = Stop::never();
        let w = wait(0, &never);
        let r: Result<i32, Ended<()>> = until(&w, || async { Ok(Probe::Ready(1)) }).await;
        assert_eq!(r.ok(), Some(1));
    }

    /// A probe cut off by the deadline keeps the last finished answer.
    #[tokio::test(start_paused = true)]
    async fn a_probe_cut_off_by_the_deadline_keeps_the_last_answer() {
        let never = Stop::never();
        let mut k = 0;
        let w = Wait::new("x", Duration::from_secs(5), Backoff::fixed(Duration::from_millis(500)), &never);
        let r: Result<(), Ended<()>> = until(&w, || {
            k += 1;
            let first = k == 1;
            async move {
                if !first {
                    std::future::pending::<()>().await;
                }
                Ok(Probe::NotYet("TLS certificate is not trusted".into()))
            }
        })
        .await;
        let Err(Ended::TimedOut(rep)) = r else { panic!("{r:?}") };
        assert_eq!(
            rep.last.as_deref(),
            Some("TLS certificate is not trusted (a later probe was still running at the deadline)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_per_probe_timeout_cuts_one_probe_not_the_wait() {
        let never = Stop::never();
        let mut k = 0;
        let w = wait(30, &never).probe_timeout(Duration::from_secs(1));
        let r: Result<u32, Ended<()>> = until(&w, || {
            k += 1;
            let n = k;
            async move {
                if n < 3 {
                    std::future::pending::<()>().await;
                }
                Ok(Probe::Ready(n))
            }
        })
        .await;
        assert_eq!(r.ok(), Some(3));
    }

    /// Stop ends a wait at once, even with a probe in flight, and keeps
    /// what the wait saw.
    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_wait_at_once_and_keeps_the_last_observation() {
        let (tx, stop) = Stop::new();
        let started = Instant::now();
        let mut k = 0;
        let w = Wait::new("x", Duration::from_secs(600), Backoff::task(), &stop);
        let probing = until::<(), (), _, _>(&w, || {
            k += 1;
            let first = k == 1;
            async move { if first { Ok(Probe::NotYet("still installing".into())) } else { std::future::pending().await } }
        });
        let r = tokio::join!(probing, async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            tx.stop();
        })
        .0;
        let Err(Ended::Stopped(rep)) = r else { panic!("{r:?}") };
        assert_eq!(rep.last.as_deref(), Some("still installing"));
        assert!(started.elapsed() < Duration::from_secs(11), "{:?}", started.elapsed());
        // Once stopped, a new wait does not even probe, and a pause ends at once.
        let r: Result<(), Ended<()>> = until(&wait(60, &stop), || async { panic!("probed after stop") }).await;
        assert!(matches!(r, Err(Ended::Stopped(_))));
        assert_eq!(pause(Duration::from_secs(60), &stop).await, Err(Stopped));
        assert_eq!(pause(Duration::from_millis(1), &Stop::never()).await, Ok(()));
    }
}
