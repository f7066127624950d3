#!/usr/bin/env bash
# Installs fakepve 0.5.0 (PyPI; AGPL-3.0-or-later) into a venv under the
# repo's .tools/ and prints the launcher path. Idempotent.
#
# fakepve is a test dependency only: it runs as an external process started
# by the integration tests (tests/it/support/fakepve.rs). It is never vendored,
# copied or shipped with the provider.
#
#   PROXTALOS_FAKEPVE=$(bash scripts/install-fakepve.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.5.0
VENV=${PROXTALOS_FAKEPVE_VENV:-$PWD/.tools/venv-fakepve}
BIN=$VENV/bin/fakepve
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qx "fakepve $VERSION"; then
  echo "$BIN"
  exit 0
fi
# shellcheck source=lib/pip-venv.sh
source scripts/lib/pip-venv.sh
pip_venv_install "$VENV" "fakepve[crypto]==$VERSION"
"$BIN" --version >&2
echo "$BIN"
