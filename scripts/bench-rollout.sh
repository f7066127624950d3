#!/usr/bin/env bash
# The rollout figures benchmark (scripts/bench/README.md): a rolling Talos
# upgrade of a 3 + 2 proxtalos_cluster on simulated nodes, wall time next to
# the critical path of the simulated durations (target <= 1.10x) and Talos
# calls per node; then an empty re-plan of a 3 + 47 node cluster: Talos
# calls per node (target <= 2) and the provider's peak RSS (target <= 20 MB).
# Prints its figures; not a test.
#
#   scripts/bench-rollout.sh [--time-scale S] [--big N] [--network A.B.C]
#
# Builds the provider in release mode, as shipped (scripts/lib/release-flags.sh),
# and the `bench-rollout` example (feature sim), then runs it. Terraform:
# PROXTALOS_TF, else tofu/terraform on PATH, else Terraform 1.15.5 from
# scripts/install-terraform.sh into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { printf 'bench-rollout: %s\n' "$*" >&2; exit 2; }

case ${1:-} in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

if [ -z "${PROXTALOS_TF:-}" ] && ! command -v tofu >/dev/null && ! command -v terraform >/dev/null; then
  installer=$ROOT/scripts/install-terraform.sh
  [ -f "$installer" ] || die "no tofu or terraform on PATH and no installer at $installer"
  PROXTALOS_TF=$(bash "$installer" "$ROOT/.tools") || die "installing Terraform failed"
fi
export PROXTALOS_TF="${PROXTALOS_TF:-}"
[ -n "$PROXTALOS_TF" ] || unset PROXTALOS_TF

echo "==> release build of the provider, as shipped (scripts/lib/release-flags.sh)" >&2
# shellcheck source=lib/release-flags.sh
. scripts/lib/release-flags.sh
RELEASE_DIR=$(release_build --bin terraform-provider-proxtalos) || die "building the provider failed"
echo "==> cargo build --example bench-rollout --features sim" >&2
cargo build --locked --example bench-rollout --features sim >&2 || die "building the benchmark failed"

exec "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/bench-rollout" \
  --provider-dir "$RELEASE_DIR" "$@"
