#!/usr/bin/env bash
# The quickstart figures benchmark (scripts/bench/README.md): wall time of the
# quickstart apply in the lab next to the critical path of the simulated
# durations (target <= 1.15x), and the PVE requests and Talos calls made
# during the apply and an empty re-plan. Prints its figures; not a test.
#
#   scripts/bench-quickstart.sh [--time-scale S] [other bench-quickstart flags]
#
# Builds the provider in release mode, as shipped (scripts/lib/release-flags.sh), and the
# `bench-quickstart` example (feature sim), then runs it. Default time scale
# 0.25 (the 145 simulated seconds of the critical path take 36 s).
# Terraform: PROXTALOS_TF, else tofu/terraform on PATH, else Terraform 1.15.5
# from scripts/install-terraform.sh into .tools/. fakepve:
# PROXTALOS_FAKEPVE, else scripts/install-fakepve.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { printf 'bench-quickstart: %s\n' "$*" >&2; exit 2; }

case ${1:-} in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

if [ -z "${PROXTALOS_TF:-}" ] && ! command -v tofu >/dev/null && ! command -v terraform >/dev/null; then
  installer=$ROOT/scripts/install-terraform.sh
  [ -f "$installer" ] || die "no tofu or terraform on PATH and no installer at $installer"
  PROXTALOS_TF=$(bash "$installer" "$ROOT/.tools") || die "installing Terraform failed"
fi
export PROXTALOS_TF
if [ -z "${PROXTALOS_FAKEPVE:-}" ]; then
  PROXTALOS_FAKEPVE=$(bash scripts/install-fakepve.sh) || die "installing fakepve failed"
fi
export PROXTALOS_FAKEPVE

echo "==> release build of the provider, as shipped (scripts/lib/release-flags.sh)" >&2
# shellcheck source=lib/release-flags.sh
. scripts/lib/release-flags.sh
RELEASE_DIR=$(release_build --bin terraform-provider-proxtalos) || die "building the provider failed"
echo "==> cargo build --example bench-quickstart --features sim" >&2
cargo build --locked --example bench-quickstart --features sim >&2 || die "building the benchmark failed"

exec "${CARGO_TARGET_DIR:-$ROOT/target}/debug/examples/bench-quickstart" \
  --provider-dir "$RELEASE_DIR" "$@"
