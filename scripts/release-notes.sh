#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version (the release notes):
#   scripts/release-notes.sh 0.1.0
# Exits 1 when CHANGELOG.md has no section for it, so a release is never
# published without notes.
set -euo pipefail
version=${1:?usage: release-notes.sh VERSION}
version=${version#v}
cd "$(dirname "$0")/.."
awk -v v="$version" '
  /^## / { if (found) exit; if ($2 == v) { found = 1; next } }
  found { print }
  END { if (!found) exit 1 }
' CHANGELOG.md | sed -e '/./,$!d' || { echo "release-notes: no section for $version in CHANGELOG.md" >&2; exit 1; }
