# Sourced by the install scripts: one way to put a PyPI package into a venv
# under .tools/ (pip only, no root).
#
#   pip_venv_install VENV 'name==version' [SHA256]
#
# Makes (or refreshes) the venv at VENV and installs the requirement; with a
# SHA256 the wheel is hash-pinned and installed without dependencies.
# pip's output goes to stderr: the scripts print only the path they install.
pip_venv_install() {
  local venv=$1 requirement=$2 sha256=${3:-}
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
  if [ -n "$sha256" ]; then
    echo "$requirement --hash=sha256:$sha256" >"$venv/pinned-requirements.txt"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
      -r "$venv/pinned-requirements.txt" >&2
  else
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$requirement" >&2
  fi
}
