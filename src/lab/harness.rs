//! The fakepve process: `harness.py` (ours, embedded here and written to
//! the lab's state directory; the integration tests run the same file
//! through `tests/it/support/fakepve.rs`) run by the fakepve venv's Python, in its own
//! process group so a terminal's Ctrl-C reaches only the lab, which then
//! stops it in order. It also stops by itself when its stdin closes, so
//! it never outlives the lab, however the lab ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::LabError;

/// The harness source (our own code; imports the installed fakepve).
pub const HARNESS_PY: &str = include_str!("harness.py");

/// How long fakepve may take to import and bind (its schema is large).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// What the harness needs to start.
pub(crate) struct HarnessStart<'a> {
    pub python: &'a Path,
    pub state_dir: &'a Path,
    pub host: &'a str,
    pub port: u16,
    pub time_scale: f64,
    pub user: &'a str,
    pub password: &'a str,
    pub token_id: &'a str,
    pub token_secret: &'a str,
}

/// The harness's pipes and the number of the last command sent on them.
type Io = Arc<Mutex<Option<(ChildStdin, Lines<BufReader<ChildStdout>>, u64)>>>;

/// Sends commands to the harness (cheap to clone).
#[derive(Clone)]
pub(crate) struct Commander {
    io: Io,
    log: PathBuf,
}

/// A running harness.
pub(crate) struct Harness {
    child: Child,
    io: Io,
    /// `https://host:port`
    pub url: String,
    /// The CA certificate file clients trust.
    pub ca_file: PathBuf,
    log: PathBuf,
}

/// The last lines of a log file (for error messages).
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

impl Harness {
    /// Starts fakepve and waits for `READY`.
    pub async fn start(s: HarnessStart<'_>) -> Result<Harness, LabError> {
        if !s.python.exists() {
            return Err(LabError::NoPython { path: s.python.to_path_buf() });
        }
        let script = s.state_dir.join("harness.py");
        std::fs::write(&script, HARNESS_PY).map_err(|e| LabError::io("write harness.py", &script, e))?;
        let log = s.state_dir.join("fakepve.log");
        let log_file = std::fs::File::create(&log).map_err(|e| LabError::io("create", &log, e))?;
        let mut child = Command::new(s.python)
            .arg(&script)
            .arg("--host")
            .arg(s.host)
            .arg("--port")
            .arg(s.port.to_string())
            .arg("--certdir")
            .arg(s.state_dir)
            .arg("--time-scale")
            .arg(s.time_scale.to_string())
            .arg("--user")
            .arg(s.user)
            .arg("--token-id")
            .arg(s.token_id)
            // Secrets through the environment, not the command line (ps).
            .env("HARNESS_PASSWORD", s.password)
            .env("HARNESS_TOKEN_SECRET", s.token_secret)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| LabError::io("start", s.python, e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill().await;
            return Err(LabError::FakePve { message: "no pipes to the harness".into(), log: String::new() });
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        let fail = |message: String| LabError::FakePve { message, log: tail(&log) };
        let line = match first {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = child.wait().await.ok();
                let how = status.map(|s| s.to_string()).unwrap_or_else(|| "ended".into());
                return Err(fail(format!("fakepve exited before it was ready ({how})")));
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(fail(format!("fakepve was not ready after {}s", START_TIMEOUT.as_secs())));
            }
        };
        if let Some(msg) = line.strip_prefix("ERROR ") {
            let _ = child.wait().await;
            return Err(fail(msg.to_string()));
        }
        let mut parts = line.split_whitespace();
        let (Some("READY"), Some(url), Some(ca)) = (parts.next(), parts.next(), parts.next()) else {
            let _ = child.kill().await;
            return Err(fail(format!("unexpected first line from fakepve: {line:?}")));
        };
        Ok(Harness {
            url: url.to_string(),
            ca_file: PathBuf::from(ca),
            io: Arc::new(Mutex::new(Some((stdin, lines, 0)))),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A handle that sends commands.
    pub fn commander(&self) -> Commander {
        Commander { io: self.io.clone(), log: self.log.clone() }
    }

    /// Closes stdin (fakepve stops itself), waits, kills if it lingers.
    pub async fn stop(&mut self) {
        self.io.lock().await.take();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

impl Commander {
    /// Sends a command, returns its result. Each command carries a number
    /// the harness echoes, so the late answer to a command that timed out
    /// is skipped instead of being taken for the next command's.
    pub async fn command(&self, mut cmd: Value) -> Result<Value, LabError> {
        let mut io = self.io.lock().await;
        let Some((stdin, lines, last)) = io.as_mut() else {
            return Err(LabError::Harness("stopped".into()));
        };
        *last += 1;
        let seq = *last;
        if let Some(o) = cmd.as_object_mut() {
            o.insert("seq".into(), seq.into());
        }
        let exchange = async {
            stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
            stdin.flush().await?;
            loop {
                let Some(line) = lines.next_line().await? else { return Ok(None) };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) if v["seq"].as_u64().is_some_and(|n| n < seq) => continue,
                    Ok(v) => return Ok(Some(v)),
                    Err(e) => return Err(std::io::Error::other(format!("bad answer {line:?}: {e}"))),
                }
            }
        };
        let v = match tokio::time::timeout(COMMAND_TIMEOUT, exchange).await {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) => return Err(LabError::Harness(format!("fakepve ended; log:\n{}", tail(&self.log)))),
            Ok(Err(e)) => return Err(LabError::Harness(e.to_string())),
            Err(_) => return Err(LabError::Harness(format!("no answer to {cmd} in time"))),
        };
        if v["ok"] != true {
            return Err(LabError::Harness(format!("{cmd}: {}", v["error"])));
        }
        Ok(v["result"].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A stand-in harness that first repeats the answer to the previous
    /// command (a late answer) and then answers the current one.
    const LATE_ANSWERS: &str = r#"
import json, sys
for line in sys.stdin:
    seq = json.loads(line)['seq']
    for n in (seq - 1, seq):
        print(json.dumps({'ok': True, 'result': n, 'seq': n}), flush=True)
"#;

    #[tokio::test]
    async fn a_late_answer_is_skipped_not_taken_for_the_next_commands() {
        let mut child = Command::new("python3")
            .args(["-c", LATE_ANSWERS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let io: Io = Arc::new(Mutex::new(Some((stdin, BufReader::new(stdout).lines(), 0))));
        let c = Commander { io, log: PathBuf::from("/nonexistent") };
        for want in 1..=3 {
            assert_eq!(c.command(json!({"op": "ping"})).await.unwrap(), json!(want));
        }
    }
}
