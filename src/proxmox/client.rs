//! The executor: sends [`Request`]s through a [`Transport`] with
//! authentication, reads PVE's envelope and errors, retries what is
//! transient (and only that), and waits for worker tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{ApiError, ApiErrorKind, Error, Result};
use super::request::{Effect, Method, Request};
use super::transport::{HttpRequest, Transport};
use super::upid::{Upid, exit_ok};
use super::{access, tasks};
use crate::wait::{self, Backoff, Probe, Stop, Wait};

pub use crate::secret::Secret;

/// How to authenticate.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// `USER@REALM!TOKENID=SECRET`: no ticket, no CSRF.
    ApiToken(Secret),
    /// Ticket login; CSRF on writes; renewed before the 2 h expiry.
    Password {
        /// `user@realm`
        username: String,
        /// The password.
        password: Secret,
    },
}

/// Bounded retries for transient failures.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First delay; doubles each time.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 6, base: Duration::from_millis(500), max: Duration::from_secs(8) }
    }
}

/// Client options.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Retries.
    pub retry: RetryPolicy,
    /// Renew a ticket once it is this old (PVE tickets live 2 h).
    pub ticket_renew_after: Duration,
    /// The VMID range automatic allocation draws from.
    pub vmid_range: (u32, u32),
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy::default(),
            ticket_renew_after: Duration::from_secs(90 * 60),
            vmid_range: (100, 999_999_999),
        }
    }
}

struct Ticket {
    ticket: Secret,
    csrf: Secret,
    obtained: Instant,
}

struct Inner {
    transport: Box<dyn Transport>,
    credentials: Credentials,
    options: ClientOptions,
    ticket: Mutex<Option<Ticket>>,
    /// VMIDs this process created or saw taken (never offered again).
    vmids: Mutex<BTreeSet<u32>>,
}

/// The PVE API client. Cheap to clone; share one per provider process.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Ends waits and retry pauses early ([`Client::stopping_on`]).
    stop: Stop,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("credentials", &self.inner.credentials).finish()
    }
}

/// Why a 200 answer is not PVE's: what it looks like, briefly.
fn not_an_envelope(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let start: String = text.trim().chars().take(60).map(|c| if c.is_control() { ' ' } else { c }).collect();
    let looks = match serde_json::from_slice::<Json>(body) {
        Ok(_) => "JSON without PVE's `data` envelope".to_string(),
        Err(_) if text.trim().is_empty() => "an empty body".to_string(),
        Err(_) => format!("not JSON (it begins {start:?})"),
    };
    format!(
        "HTTP 200, but the body is {looks}: something other than the Proxmox VE API answered (a proxy or captive \
portal?); check `proxmox.endpoint`"
    )
}

/// How a finished task went.
#[derive(Clone, Debug)]
pub struct TaskOutcome {
    /// The task.
    pub upid: Upid,
    /// `OK` or `WARNINGS: n`.
    pub exitstatus: String,
    /// `WARN:` lines of the log (when the status reports warnings).
    pub warnings: Vec<String>,
}

impl Client {
    /// A client over `transport`.
    pub fn new(transport: Box<dyn Transport>, credentials: Credentials, options: ClientOptions) -> Client {
        Client {
            inner: Arc::new(Inner {
                transport,
                credentials,
                options,
                ticket: Mutex::new(None),
                vmids: Mutex::new(BTreeSet::new()),
            }),
            stop: Stop::never(),
        }
    }

    /// The same client (shared ticket, VMID bookkeeping) whose task waits
    /// and retry pauses end with [`Error::Stopped`] once `stop` fires. A
    /// request already sent is let finish: only the waiting is cut short.
    pub fn stopping_on(&self, stop: &Stop) -> Client {
        Client { inner: self.inner.clone(), stop: stop.clone() }
    }

    /// The stop signal this client's waits honour.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    async fn retry_pause(&self, req: &Request, delay: Duration) -> Result<()> {
        wait::pause(jitter(delay), &self.stop)
            .await
            .map_err(|_| Error::Stopped { what: format!("a retry of {}", req.describe()), secs: 0 })
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Executes `req` and returns `data`, retrying transient failures.
    pub async fn execute(&self, req: &Request) -> Result<Json> {
        // After Terraform's stop request nothing new is changed on PVE;
        // reads still go (they tell what exists, for state).
        if req.effect != Effect::Safe && self.stop.is_stopped() {
            return Err(Error::Stopped { what: format!("sending {}", req.describe()), secs: 0 });
        }
        let policy = self.inner.options.retry;
        let mut attempt = 0u32;
        let mut relogged = false;
        loop {
            attempt += 1;
            let result = self.send_once(req).await;
            let retry = match &result {
                Ok(_) => return result,
                Err(Error::Connect(_)) => true,
                // Maybe done: resent only when doing it twice is harmless.
                Err(e) if e.is_ambiguous() => req.effect != Effect::Once,
                Err(Error::Api(e)) => match e.kind() {
                    ApiErrorKind::Unauthorized
                        if matches!(self.inner.credentials, Credentials::Password { .. }) && !relogged =>
                    {
                        // An expired or revoked ticket: nothing happened; log in again once.
                        relogged = true;
                        *self.inner.ticket.lock().await = None;
                        attempt -= 1;
                        continue;
                    }
                    ApiErrorKind::Locked | ApiErrorKind::Transient => true,
                    _ => false,
                },
                Err(_) => false,
            };
            if !retry || attempt >= policy.attempts {
                return result;
            }
            let delay = policy.base.saturating_mul(1 << (attempt - 1).min(16)).min(policy.max);
            tracing::debug!(request = %req.describe(), attempt, ?delay, error = ?result.as_ref().err().map(ToString::to_string), "retrying");
            if self.stop.is_stopped() {
                return result;
            }
            self.retry_pause(req, delay).await?;
        }
    }

    /// Sends `req` once, without retries: for the connection check, where a
    /// wrong endpoint or credential should fail now, not after the backoff.
    pub async fn execute_once(&self, req: &Request) -> Result<Json> {
        self.send_once(req).await
    }

    /// Executes `req` and decodes `data` as `T`.
    pub async fn execute_as<T: serde::de::DeserializeOwned>(&self, req: &Request) -> Result<T> {
        let data = self.execute(req).await?;
        serde_json::from_value(data).map_err(|e| Error::Decode { path: req.describe(), message: e.to_string() })
    }

    /// Executes a request that starts a worker task and returns its UPID.
    pub async fn execute_task(&self, req: &Request) -> Result<Upid> {
        let data = self.execute(req).await?;
        let s = data
            .as_str()
            .ok_or_else(|| Error::Decode { path: req.describe(), message: format!("expected a UPID, got {data}") })?;
        Ok(s.parse()?)
    }

    /// Starts a task and waits for it (see [`Client::wait_task`]). A task
    /// that failed only because another task held the config lock (`can't
    /// lock file ... got timeout`: nothing was done) is started again, with
    /// the same bounded backoff as request retries.
    pub async fn run_task(&self, req: &Request, timeout: Duration) -> Result<TaskOutcome> {
        let policy = self.inner.options.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let upid = self.execute_task(req).await?;
            match self.wait_task(&upid, timeout).await {
                Err(Error::Task { exitstatus, .. })
                    if attempt < policy.attempts
                        && exitstatus.contains("got timeout")
                        && exitstatus.contains("lock") =>
                {
                    let delay = policy.base.saturating_mul(1 << (attempt - 1).min(16)).min(policy.max);
                    tracing::debug!(request = %req.describe(), attempt, "config lock held by another task; retrying");
                    self.retry_pause(req, delay).await?;
                }
                other => return other,
            }
        }
    }

    async fn send_once(&self, req: &Request) -> Result<Json> {
        let mut headers = Vec::new();
        match &self.inner.credentials {
            Credentials::ApiToken(t) => headers.push(("Authorization", format!("PVEAPIToken={}", t.expose()))),
            Credentials::Password { .. } => {
                let (ticket, csrf) = self.ticket().await?;
                headers.push(("Cookie", format!("PVEAuthCookie={}", ticket.expose())));
                if req.method != Method::Get {
                    headers.push(("CSRFPreventionToken", csrf.expose().to_string()));
                }
            }
        }
        self.send_raw(req, headers).await
    }

    async fn send_raw(&self, req: &Request, headers: Vec<(&'static str, String)>) -> Result<Json> {
        let http = HttpRequest { method: req.method, path_and_query: req.path_and_query(), headers, body: req.body() };
        let started = Instant::now();
        let resp = self.inner.transport.send(http).await;
        tracing::debug!(request = %req.describe(), status = ?resp.as_ref().map(|r| r.status).ok(), ms = started.elapsed().as_millis() as u64, "pve");
        let resp = resp?;
        let body: Json = serde_json::from_slice(&resp.body).unwrap_or(Json::Null);
        if resp.status == 200 {
            // PVE answers every call with a `{"data": ...}` envelope (null
            // for calls that return nothing). Anything else (a proxy's or a
            // captive portal's page) is not PVE's answer: reading it as "no
            // data" would report a delete that never happened as done.
            return match body.get("data") {
                Some(data) => Ok(data.clone()),
                None => Err(Error::Decode { path: req.describe(), message: not_an_envelope(&resp.body) }),
            };
        }
        let mut errors = BTreeMap::new();
        if let Some(m) = body.get("errors").and_then(Json::as_object) {
            for (k, v) in m {
                let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                errors.insert(k.clone(), text.trim().to_string());
            }
        }
        let message = body
            .get("message")
            .and_then(Json::as_str)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| resp.reason.clone().filter(|s| !s.is_empty()))
            .or_else(|| {
                // A plain-text body (fakepve's 404, a proxy page) as a last resort.
                let t = String::from_utf8_lossy(&resp.body).trim().to_string();
                (!t.is_empty() && body.is_null()).then(|| t.chars().take(300).collect())
            })
            .unwrap_or_default();
        Err(Error::Api(ApiError { request: req.describe(), status: resp.status, message, errors }))
    }

    /// The current ticket, logging in or renewing as needed.
    async fn ticket(&self) -> Result<(Secret, Secret)> {
        let Credentials::Password { username, password } = &self.inner.credentials else {
            return Err(Error::Settings("no password credentials".into()));
        };
        let mut guard = self.inner.ticket.lock().await;
        if let Some(t) = guard.as_ref() {
            if t.obtained.elapsed() < self.inner.options.ticket_renew_after {
                return Ok((t.ticket.clone(), t.csrf.clone()));
            }
            // Renew with the current ticket as the password (real PVE); if
            // that is refused (fakepve gap G3), log in with the password.
            let renew = access::ticket(username, t.ticket.expose());
            if let Ok(fresh) = self.login(&renew).await {
                let out = (fresh.ticket.clone(), fresh.csrf.clone());
                *guard = Some(fresh);
                return Ok(out);
            }
            tracing::debug!("ticket renewal refused; logging in again");
        }
        let fresh = self.login(&access::ticket(username, password.expose())).await?;
        let out = (fresh.ticket.clone(), fresh.csrf.clone());
        *guard = Some(fresh);
        Ok(out)
    }

    async fn login(&self, req: &Request) -> Result<Ticket> {
        let data = self.send_raw(req, Vec::new()).await?;
        let field = |k: &str| data.get(k).and_then(Json::as_str).map(str::to_string);
        match (field("ticket"), field("CSRFPreventionToken")) {
            (Some(t), Some(c)) if data.get("NeedTFA").is_none() => {
                Ok(Ticket { ticket: Secret::new(t), csrf: Secret::new(c), obtained: Instant::now() })
            }
            _ => Err(Error::Decode {
                path: req.describe(),
                message: "no ticket in the answer (two-factor login is not supported; use an API token)".into(),
            }),
        }
    }

    /// Waits for a task to finish. Polls the UPID's node with backoff (100 ms,
    /// then ×1.5 up to 2 s: completion is noticed within 250 ms early on and
    /// the API is never hammered). `OK` and `WARNINGS: n` are success; any
    /// other exit status is [`Error::Task`] with the last lines of the log.
    pub async fn wait_task(&self, upid: &Upid, timeout: Duration) -> Result<TaskOutcome> {
        let status_req = tasks::status(upid);
        let early_misses = std::sync::atomic::AtomicU32::new(0);
        let what = format!("task {upid}");
        let w = Wait::new(&what, timeout, Backoff::task(), &self.stop);
        let status: tasks::TaskStatus = wait::until(&w, || async {
            match self.execute_as::<tasks::TaskStatus>(&status_req).await {
                Ok(s) if s.status == "running" => Ok(Probe::NotYet("running".to_string())),
                Ok(s) => Ok(Probe::Ready(s)),
                // Right after a start the status can briefly fail (api.md §10).
                Err(Error::Api(e))
                    if matches!(e.status, 400 | 404 | 500)
                        && early_misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 =>
                {
                    Ok(Probe::NotYet(e.to_string()))
                }
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| Error::from_wait(&what, e))?;
        let exitstatus = status.exitstatus.unwrap_or_else(|| "unexpected status".into());
        if exit_ok(&exitstatus) {
            let warnings = if exitstatus.starts_with("WARNINGS") {
                self.task_log(upid).await.unwrap_or_default().into_iter().filter(|l| l.starts_with("WARN")).collect()
            } else {
                Vec::new()
            };
            return Ok(TaskOutcome { upid: upid.clone(), exitstatus, warnings });
        }
        let log = self.task_log(upid).await.unwrap_or_default();
        let tail = log.iter().rev().take(10).rev().cloned().collect();
        Err(Error::Task { upid: Box::new(upid.clone()), exitstatus, log_tail: tail })
    }

    /// Every line of a task's log.
    pub async fn task_log(&self, upid: &Upid) -> Result<Vec<String>> {
        let lines: Vec<tasks::LogLine> = self.execute_as(&tasks::log(upid, 0, 5000)).await?;
        Ok(lines.into_iter().map(|l| l.t).collect())
    }

    /// Reserves the VMIDs this process has used so allocation never offers
    /// them again.
    pub(crate) async fn vmids(&self) -> tokio::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.inner.vmids.lock().await
    }
}

/// Up to +25% so parallel retries spread out.
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Ordered-scenario mock transport (kube-rs `mock_tests.rs` style): each
    //! expected call names method and path and gives the answer; a missing
    //! or extra call fails the test.

    use std::collections::VecDeque;
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;

    use super::*;
    use crate::proxmox::transport::HttpResponse;
    use crate::proxmox::{cluster, qemu};

    type Check = Box<dyn Fn(&HttpRequest) + Send + Sync>;

    struct Step {
        method: Method,
        path: &'static str,
        check: Option<Check>,
        answer: Result<HttpResponse>,
    }

    #[derive(Default)]
    struct Mock {
        steps: StdMutex<VecDeque<Step>>,
    }

    struct MockHandle(Arc<Mock>);

    #[async_trait]
    impl Transport for MockHandle {
        async fn send(&self, req: HttpRequest) -> Result<HttpResponse> {
            let step = self.0.steps.lock().unwrap().pop_front();
            let Some(step) = step else { panic!("unexpected request {req:?}") };
            assert_eq!(req.method, step.method, "{req:?}");
            let path = req.path_and_query.split('?').next().unwrap_or_default().to_string();
            assert_eq!(path, step.path, "{req:?}");
            if let Some(c) = &step.check {
                c(&req);
            }
            step.answer
        }
    }

    fn ok(data: serde_json::Value) -> Result<HttpResponse> {
        Ok(HttpResponse {
            status: 200,
            reason: None,
            body: serde_json::json!({ "data": data }).to_string().into_bytes(),
        })
    }

    fn status(code: u16, reason: &str, body: serde_json::Value) -> Result<HttpResponse> {
        Ok(HttpResponse { status: code, reason: Some(reason.into()), body: body.to_string().into_bytes() })
    }

    impl Mock {
        fn new() -> Arc<Mock> {
            Arc::new(Mock::default())
        }
        fn then(self: &Arc<Self>, method: Method, path: &'static str, answer: Result<HttpResponse>) -> &Arc<Self> {
            self.steps.lock().unwrap().push_back(Step { method, path, check: None, answer });
            self
        }
        fn then_check(
            self: &Arc<Self>,
            method: Method,
            path: &'static str,
            check: impl Fn(&HttpRequest) + Send + Sync + 'static,
            answer: Result<HttpResponse>,
        ) -> &Arc<Self> {
            self.steps.lock().unwrap().push_back(Step { method, path, check: Some(Box::new(check)), answer });
            self
        }
        fn done(&self) {
            let left = self.steps.lock().unwrap().len();
            assert_eq!(left, 0, "{left} expected requests were not made");
        }
    }

    fn header<'r>(r: &'r HttpRequest, k: &str) -> Option<&'r str> {
        r.headers.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str())
    }

    fn token_client(m: &Arc<Mock>) -> Client {
        let opts = ClientOptions {
            retry: RetryPolicy { attempts: 3, base: Duration::from_millis(10), max: Duration::from_millis(50) },
            ..ClientOptions::default()
        };
        Client::new(Box::new(MockHandle(m.clone())), Credentials::ApiToken(Secret::new("tf@pve!p=s3cret")), opts)
    }

    fn password_client(m: &Arc<Mock>, renew_after: Duration) -> Client {
        let opts = ClientOptions { ticket_renew_after: renew_after, ..ClientOptions::default() };
        Client::new(
            Box::new(MockHandle(m.clone())),
            Credentials::Password { username: "root@pam".into(), password: Secret::new("pw") },
            opts,
        )
    }

    const UPID: &str = "UPID:pve1:000003E8:00001B58:6B02108D:qmcreate:100:root@pam:";

    fn login_answer(n: u32) -> Result<HttpResponse> {
        ok(
            serde_json::json!({ "ticket": format!("PVE:root@pam:T{n}"), "CSRFPreventionToken": format!("C{n}"), "username": "root@pam" }),
        )
    }

    #[tokio::test]
    async fn token_auth_has_no_csrf() {
        let m = Mock::new();
        m.then_check(
            Method::Post,
            "/nodes/pve1/qemu/100/status/start",
            |r| {
                assert_eq!(header(r, "Authorization"), Some("PVEAPIToken=tf@pve!p=s3cret"));
                assert_eq!(header(r, "CSRFPreventionToken"), None);
            },
            ok(serde_json::json!(UPID)),
        );
        let c = token_client(&m);
        let upid = c.execute_task(&qemu::power("pve1", 100, qemu::Power::Start, None, false)).await.unwrap();
        assert_eq!(upid.node, "pve1");
        assert!(!format!("{c:?}").contains("s3cret"));
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn ticket_login_csrf_and_renewal() {
        let m = Mock::new();
        m.then_check(
            Method::Post,
            "/access/ticket",
            |r| assert_eq!(r.body.as_deref(), Some("username=root%40pam&password=pw")),
            login_answer(1),
        )
        .then_check(
            Method::Get,
            "/version",
            |r| {
                assert_eq!(header(r, "Cookie"), Some("PVEAuthCookie=PVE:root@pam:T1"));
                assert_eq!(header(r, "CSRFPreventionToken"), None);
            },
            ok(serde_json::json!({})),
        )
        .then_check(
            Method::Post,
            "/x",
            |r| assert_eq!(header(r, "CSRFPreventionToken"), Some("C1")),
            ok(serde_json::json!(null)),
        )
        // After the renewal age: renew with the ticket as the password.
        .then_check(
            Method::Post,
            "/access/ticket",
            |r| assert_eq!(r.body.as_deref(), Some("username=root%40pam&password=PVE%3Aroot%40pam%3AT1")),
            login_answer(2),
        )
        .then_check(
            Method::Post,
            "/x",
            |r| assert_eq!(header(r, "CSRFPreventionToken"), Some("C2")),
            ok(serde_json::json!(null)),
        );
        let c = password_client(&m, Duration::from_secs(90 * 60));
        c.execute(&Request::get("/version")).await.unwrap();
        c.execute(&Request::post("/x")).await.unwrap();
        tokio::time::advance(Duration::from_secs(91 * 60)).await;
        c.execute(&Request::post("/x")).await.unwrap();
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_refused_falls_back_to_password_and_expired_ticket_relogs() {
        let m = Mock::new();
        m.then(Method::Post, "/access/ticket", login_answer(1))
            .then(Method::Get, "/a", ok(serde_json::json!(1)))
            .then(
                Method::Post,
                "/access/ticket",
                status(401, "authentication failure", serde_json::json!({"data": null})),
            )
            .then_check(
                Method::Post,
                "/access/ticket",
                |r| assert!(r.body.as_deref().unwrap_or_default().ends_with("password=pw")),
                login_answer(2),
            )
            .then(
                Method::Get,
                "/a",
                status(401, "permission denied - invalid PVE ticket", serde_json::json!({"data": null})),
            )
            .then(Method::Post, "/access/ticket", login_answer(3))
            .then_check(
                Method::Get,
                "/a",
                |r| assert_eq!(header(r, "Cookie"), Some("PVEAuthCookie=PVE:root@pam:T3")),
                ok(serde_json::json!(2)),
            );
        let c = password_client(&m, Duration::from_secs(60));
        c.execute(&Request::get("/a")).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(c.execute(&Request::get("/a")).await.unwrap(), serde_json::json!(2));
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_is_transient() {
        let m = Mock::new();
        // GET: 596 twice, then fine.
        m.then(Method::Get, "/cluster/resources", status(596, "Broken pipe", serde_json::json!({"data": null})))
            .then(Method::Get, "/cluster/resources", status(596, "Broken pipe", serde_json::json!({"data": null})))
            .then(Method::Get, "/cluster/resources", ok(serde_json::json!([])))
            // A create (sent once) is not re-sent after a 596: it may have happened.
            .then(
                Method::Post,
                "/nodes/pve1/qemu",
                status(596, "Connection timed out", serde_json::json!({"data": null})),
            )
            // A lock timeout means nothing happened: retried even for a create.
            .then(
                Method::Post,
                "/nodes/pve1/qemu",
                status(
                    500,
                    "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout",
                    serde_json::json!({"data": null}),
                ),
            )
            .then(Method::Post, "/nodes/pve1/qemu", ok(serde_json::json!(UPID)))
            // Validation errors are never retried, and name the field.
            .then(
                Method::Post,
                "/nodes/pve1/qemu",
                status(
                    400,
                    "Parameter verification failed.",
                    serde_json::json!({"data": null, "errors": {"cores": "type check ('integer') failed - got 'abc'"}}),
                ),
            )
            // Bounded: three 596s on a GET and it gives up.
            .then(Method::Get, "/version", status(596, "x", serde_json::json!({})))
            .then(Method::Get, "/version", status(596, "x", serde_json::json!({})))
            .then(Method::Get, "/version", status(596, "x", serde_json::json!({})));
        let c = token_client(&m);
        c.execute(&cluster::vm_resources()).await.unwrap();
        let e = c.execute(&qemu::create("pve1", 100, &[])).await.unwrap_err();
        assert_eq!(e.api().map(|a| a.status), Some(596));
        c.execute(&qemu::create("pve1", 100, &[])).await.unwrap();
        let e = c.execute(&qemu::create("pve1", 100, &[])).await.unwrap_err();
        assert_eq!(
            e.field_errors(),
            vec![("cores".to_string(), "type check ('integer') failed - got 'abc'".to_string())]
        );
        assert!(c.execute(&Request::get("/version")).await.is_err());
        m.done();
    }

    #[tokio::test]
    async fn message_from_reason_phrase_when_body_has_none() {
        let m = Mock::new();
        m.then(
            Method::Get,
            "/nodes/pve1/qemu/100/config",
            status(
                500,
                "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist",
                serde_json::json!({"data": null}),
            ),
        );
        let e = token_client(&m).vm_config("pve1", 100).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("100.conf' does not exist"));
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn task_polling_success_warnings_and_failure_with_log() {
        let m = Mock::new();
        let st =
            "/nodes/pve1/tasks/UPID%3Apve1%3A000003E8%3A00001B58%3A6B02108D%3Aqmcreate%3A100%3Aroot%40pam%3A/status";
        let log = "/nodes/pve1/tasks/UPID%3Apve1%3A000003E8%3A00001B58%3A6B02108D%3Aqmcreate%3A100%3Aroot%40pam%3A/log";
        m.then(Method::Get, st, ok(serde_json::json!({"status": "running"})))
            .then(Method::Get, st, ok(serde_json::json!({"status": "running"})))
            .then(Method::Get, st, ok(serde_json::json!({"status": "stopped", "exitstatus": "OK"})))
            .then(Method::Get, st, ok(serde_json::json!({"status": "stopped", "exitstatus": "WARNINGS: 1"})))
            .then(Method::Get, log, ok(serde_json::json!([{"n": 1, "t": "WARN: old EFI certs"}, {"n": 2, "t": "TASK WARNINGS: 1"}])))
            .then(Method::Get, st, ok(serde_json::json!({"status": "stopped", "exitstatus": "unable to create VM 100 - volume local:iso/x.iso does not exist"})))
            .then(
                Method::Get,
                log,
                ok(serde_json::json!([{"n": 1, "t": "starting"}, {"n": 2, "t": "TASK ERROR: unable to create VM 100 - volume local:iso/x.iso does not exist"}])),
            );
        let c = token_client(&m);
        let upid: Upid = UPID.parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(c.wait_task(&upid, Duration::from_secs(10)).await.unwrap().exitstatus, "OK");
        assert!(t0.elapsed() <= Duration::from_millis(250), "two running polls took {:?}", t0.elapsed());
        let w = c.wait_task(&upid, Duration::from_secs(10)).await.unwrap();
        assert_eq!(w.warnings, vec!["WARN: old EFI certs".to_string()]);
        let e = c.wait_task(&upid, Duration::from_secs(10)).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("volume local:iso/x.iso does not exist") && text.contains("TASK ERROR"), "{text}");
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn vmid_allocation_moves_on_and_never_adopts() {
        let m = Mock::new();
        let exists = |id: u32| {
            status(
                500,
                &format!("unable to create VM {id} - VM {id} already exists on node 'pve1'"),
                serde_json::json!({"data": null}),
            )
        };
        m.then(Method::Get, "/cluster/nextid", ok(serde_json::json!("100")))
            .then_check(
                Method::Post,
                "/nodes/pve1/qemu",
                |r| assert!(r.body.as_deref().unwrap_or_default().starts_with("vmid=100")),
                exists(100),
            )
            .then_check(
                Method::Post,
                "/nodes/pve1/qemu",
                |r| assert!(r.body.as_deref().unwrap_or_default().starts_with("vmid=101")),
                ok(serde_json::json!(UPID)),
            )
            // The next allocation skips 100 and 101 even though nextid says 100.
            .then(Method::Get, "/cluster/nextid", ok(serde_json::json!("100")))
            .then_check(
                Method::Post,
                "/nodes/pve1/qemu",
                |r| assert!(r.body.as_deref().unwrap_or_default().starts_with("vmid=102")),
                ok(serde_json::json!(UPID)),
            )
            // A pinned id that exists is an error, not an adoption.
            .then(Method::Post, "/nodes/pve1/qemu", exists(150));
        let c = token_client(&m);
        let (id, _) = c.create_with_vmid(None, |id| qemu::create("pve1", id, &[])).await.unwrap();
        assert_eq!(id, 101);
        let (id, _) = c.create_with_vmid(None, |id| qemu::create("pve1", id, &[])).await.unwrap();
        assert_eq!(id, 102);
        let e = c.create_with_vmid(Some(150), |id| qemu::create("pve1", id, &[])).await.unwrap_err();
        assert!(e.is_conflict());
        m.done();
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_without_a_clear_answer_names_its_vmid() {
        let m = Mock::new();
        let broken = || status(596, "Broken pipe", serde_json::json!({"data": null}));
        m.then(Method::Get, "/cluster/nextid", ok(serde_json::json!("100")))
            .then(Method::Post, "/nodes/pve1/qemu", broken())
            // Not sent again (a create is not idempotent), and 100 is not
            // offered again in this process.
            .then(Method::Get, "/cluster/nextid", ok(serde_json::json!("100")))
            .then_check(
                Method::Post,
                "/nodes/pve1/qemu",
                |r| assert!(r.body.as_deref().unwrap_or_default().starts_with("vmid=101")),
                status(500, "unable to create VM 101 - no such storage", serde_json::json!({"data": null})),
            );
        let c = token_client(&m);
        let e = c.create_with_vmid(None, |id| qemu::create("pve1", id, &[])).await.unwrap_err();
        assert!(matches!(e, Error::MaybeApplied { vmid: 100, .. }), "{e:?}");
        assert!(e.is_ambiguous());
        let e = c.create_with_vmid(None, |id| qemu::create("pve1", id, &[])).await.unwrap_err();
        assert!(!e.is_ambiguous() && !matches!(e, Error::MaybeApplied { .. }), "a plain refusal: {e:?}");
        m.done();
    }

    /// A 200 that is not PVE's `{"data": ...}` envelope (a captive portal's
    /// page, a proxy's JSON) is a decode error naming the request, never
    /// "no data": an image delete behind a portal must not report success.
    #[tokio::test]
    async fn a_200_that_is_not_pves_envelope_is_a_decode_error() {
        let page = |body: &str| Ok(HttpResponse { status: 200, reason: None, body: body.as_bytes().to_vec() });
        let m = Mock::new();
        m.then(
            Method::Delete,
            "/nodes/pve1/storage/local/content/a.iso",
            page("<html>Sign in to the guest Wi-Fi</html>"),
        )
        .then(Method::Get, "/version", page(r#"{"status":"ok"}"#))
        .then(Method::Get, "/version", page(""))
        .then(Method::Get, "/version", ok(serde_json::Value::Null));
        let c = token_client(&m);
        let e = c.execute(&crate::proxmox::storage::delete_volume("pve1", "local", "a.iso")).await.unwrap_err();
        let Error::Decode { path, message } = &e else { panic!("{e:?}") };
        assert_eq!(path, "DELETE /nodes/pve1/storage/local/content/a.iso");
        assert!(message.contains("not JSON (it begins \"<html>Sign in"), "{message}");
        let e = c.execute(&cluster::version()).await.unwrap_err();
        assert!(e.to_string().contains("JSON without PVE's `data` envelope"), "{e}");
        let e = c.execute(&cluster::version()).await.unwrap_err();
        assert!(e.to_string().contains("an empty body"), "{e}");
        // `{"data": null}` is PVE's "nothing to return".
        assert_eq!(c.execute(&cluster::version()).await.unwrap(), serde_json::Value::Null);
        m.done();
    }
}
