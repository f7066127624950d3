#!/usr/bin/env bash
# Local release dry run: the artifacts GoReleaser would publish, built by hand.
#
#   scripts/release-dry-run.sh [VERSION]
#       Cross-builds every target of .goreleaser.yml that builds here (one at a
#       time), packages them, writes the checksums, signs them with a throwaway
#       key, checks the binaries, then installs the linux_amd64 archive into a
#       filesystem mirror and runs real Terraform `init` + `plan` with it (no
#       dev_overrides). VERSION defaults to the Cargo.toml version.
#
#   scripts/release-dry-run.sh --package-only BINARY VERSION [OS_ARCH]
#       Only the packaging step (the same code the full run uses) for one
#       prebuilt binary: zip, manifest, SHA256SUMS, SHA256SUMS.sig. OS_ARCH
#       defaults to linux_amd64. Used by tests/it/release_layout.rs.
#
# Environment:
#   DIST=dir            output directory (default: dist/, gitignored); emptied
#                       of this version's artifacts first
#   TARGETS="t1 t2"     Rust triples to build (default: the targets of every
#                       build of .goreleaser.yml, glibc suffixes included)
#   PROXTALOS_TF=path   Terraform for the mirror check (else terraform/tofu on
#                       PATH, else scripts/install-terraform.sh)
#   NO_SIGN=1           skip the signature (packaging only)
#
# Exit status of the full run: 0 when every target built or was skipped
# because this machine lacks its toolchain (said in the table); 3 when a
# target failed to compile (GoReleaser would fail the release; the other
# artifacts are still made and checked); 1 on any other failure.
#
# Artifacts, named as GoReleaser names them (.goreleaser.yml; release.md §1):
#   terraform-provider-proxtalos_{VERSION}_{os}_{arch}.zip   binary at the zip root
#                                                            (+ LICENSE, README.md)
#   terraform-provider-proxtalos_{VERSION}_manifest.json     terraform-registry-manifest.json
#   terraform-provider-proxtalos_{VERSION}_SHA256SUMS        every zip and the manifest
#   terraform-provider-proxtalos_{VERSION}_SHA256SUMS.sig    binary detached GPG signature
# plus, as GoReleaser's dist/ does, the raw binaries in dist/provider_<triple>/
# and build logs in dist/logs/.
#
# Installs what it needs, idempotently, under .tools/ (gitignored):
#   .tools/zig-venv     python venv with the PyPI `ziglang` package, and a
#                       `zig` shim in its bin/ (cargo-zigbuild needs a zig)
#   .tools/cargo        `cargo install --locked --root .tools/cargo cargo-zigbuild`
#   rustup targets      `rustup target add <triple>` per target; a target whose
#                       std cannot be installed is skipped, and said so
#
# Release notes: what cross-builds here. Measured 2026-11-21 by one full run
# of this script from a cold target/ directory (Debian, 2 cores shared with
# other builds, rustc 1.95.0, ziglang 0.17.1 from PyPI, cargo-zigbuild 0.24.1
# installed in ~3 min; `rustup target add` of the four non-host targets worked
# here, 40 s; release profile: lto, codegen-units=1, opt-level=s, strip),
# one target at a time:
#
#   target                          os_arch        result  cold time  checked afterwards
#   x86_64-unknown-linux-gnu.2.17   linux_amd64    built   323 s      6.8 MiB PIE; highest GLIBC_2.17; --version ok;
#                                                                     Terraform 1.15.5 init+plan from a mirror ok
#   aarch64-unknown-linux-gnu.2.17  linux_arm64    built   266 s      6.1 MiB PIE; highest GLIBC_2.17; --version ok
#                                                                     under qemu-aarch64 when installed (2026-11-22)
#   x86_64-apple-darwin             darwin_amd64   built   307 s      minos 11.0; links libSystem, libiconv, libcharset only
#   aarch64-apple-darwin            darwin_arm64   built   492 s      minos 11.0; same dylibs; no Apple framework
#   x86_64-pc-windows-gnu           windows_amd64  built   511 s      PE32+ console .exe importing only OS DLLs (UCRT,
#                                                                     kernel32, ntdll, ws2_32, bcrypt, advapi32,
#                                                                     bcryptprimitives); not run: no Windows here, and
#                                                                     Debian's Wine 8.0 lacks bcryptprimitives.dll
#                                                                     (ProcessPrng, used by Rust's std; Windows 10+ has
#                                                                     it), so it stops at load. The first run failed: serve.rs
#                                                                     was unix-only; it now listens on loopback TCP with
#                                                                     TCP_NODELAY on Windows, as go-plugin expects there.
#
# The zips are about 2.5-2.9 MiB each. The five builds took 28 min 17 s in
# all; packaging, signing, the binary checks and both mirror checks add ~10 s.
#
# Facts the run checks: highest GLIBC symbol version <= 2.17 on Linux, minos
# 11.0 and no Apple framework on darwin (release.md §5), PE32+ on Windows,
# `--version` of the linux_amd64 binary (and of linux_arm64 under qemu-aarch64
# when installed), `sha256sum -c`, `gpg --verify`, and
# Terraform installing the provider from the mirror with h1: hashes in the
# lock file.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=lib/release-flags.sh
. "$ROOT/scripts/lib/release-flags.sh"
PROJECT=terraform-provider-proxtalos
SOURCE_ADDR=registry.terraform.io/proxtalos/proxtalos
DIST=${DIST:-$ROOT/dist}
GLIBC_FLOOR=2.17
MACOS_MIN=11.0

log() { printf '[dry-run] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- temporary state, always cleaned up -------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/proxtalos-release.XXXXXX")
GNUPGHOME_TMP=""
cleanup() {
  if [ -n "$GNUPGHOME_TMP" ]; then
    gpgconf --homedir "$GNUPGHOME_TMP" --kill all >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

# ---- naming ------------------------------------------------------------------

# Rust triple (optionally with a glibc suffix) -> GoReleaser's {{.Os}}_{{.Arch}}.
os_arch_of() {
  local triple=${1%.[0-9]*.[0-9]*} arch os
  IFS=- read -r arch _ os _ <<<"$triple"
  case $arch in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    i686 | i586) arch=386 ;;
    arm* ) arch=arm ;;
    *) ;;
  esac
  printf '%s_%s\n' "$os" "$arch"
}

exe_of() { case $1 in windows_*) echo "$PROJECT.exe" ;; *) echo "$PROJECT" ;; esac; }

zip_name() { echo "${PROJECT}_${1}_${2}.zip"; } # VERSION OS_ARCH
sums_name() { echo "${PROJECT}_${1}_SHA256SUMS"; }
manifest_name() { echo "${PROJECT}_${1}_manifest.json"; }

# ---- packaging (the one implementation; --package-only and the full run) ----

# mod_timestamp: '{{ .CommitTimestamp }}' (stable zips for a given commit).
commit_time() { git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s; }

# package_zip BINARY VERSION OS_ARCH: the archive GoReleaser's `archives` makes.
package_zip() {
  local bin=$1 version=$2 os_arch=$3 stage ts f
  stage=$TMP/stage-$os_arch
  rm -rf "$stage" && mkdir -p "$stage"
  install -m 0755 "$bin" "$stage/$(exe_of "$os_arch")"
  for f in "$ROOT"/LICENSE* "$ROOT/README.md"; do
    [ -f "$f" ] && install -m 0644 "$f" "$stage/"
  done
  ts=$(commit_time)
  find "$stage" -type f -exec touch -d "@$ts" {} +
  rm -f "$DIST/$(zip_name "$version" "$os_arch")"
  # -X: no extra attributes (uid/gid, atime); binary first, files at the root.
  (cd "$stage" && TZ=UTC zip -q -X "$DIST/$(zip_name "$version" "$os_arch")" \
    "$(exe_of "$os_arch")" $(ls | grep -vx "$(exe_of "$os_arch")" | sort))
}

# write_sums VERSION: the manifest under its release name, then SHA256SUMS over
# every zip of this version and the manifest (sha256sum format, sorted).
write_sums() {
  local version=$1
  install -m 0644 "$ROOT/terraform-registry-manifest.json" "$DIST/$(manifest_name "$version")"
  (cd "$DIST" && sha256sum -- $(ls "${PROJECT}_${version}_"*.zip "$(manifest_name "$version")" | sort)) \
    >"$DIST/$(sums_name "$version")"
}

# sign VERSION: a throwaway RSA-4096 key in a temporary GNUPGHOME, a binary
# (not armoured) detached signature, as the `signs` section does with --batch.
sign_sums() {
  local version=$1 sums fpr
  sums=$DIST/$(sums_name "$version")
  GNUPGHOME_TMP=$TMP/gnupg # inside $TMP: removed by the trap, agent killed first
  mkdir -m 700 "$GNUPGHOME_TMP"
  export GNUPGHOME=$GNUPGHOME_TMP
  gpg --batch --quiet --passphrase '' --quick-gen-key \
    "proxtalos release dry run <dry-run@proxtalos.invalid>" rsa4096 sign 1d 2>"$TMP/gpg.log" \
    || { cat "$TMP/gpg.log" >&2; die "gpg --quick-gen-key failed"; }
  fpr=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1=="fpr"{print $10; exit}')
  [ -n "$fpr" ] || die "throwaway key generation failed"
  rm -f "$sums.sig"
  gpg --batch --quiet --local-user "$fpr" --output "$sums.sig" --detach-sign "$sums" 2>"$TMP/gpg.log" \
    || { cat "$TMP/gpg.log" >&2; die "gpg --detach-sign failed"; }
  SIGN_FPR=$fpr
}

# verify VERSION: checksums and signature as a registry would check them.
VERIFY_SUMS="" VERIFY_SIG=""
verify_release() {
  local version=$1 sums first
  sums=$(sums_name "$version")
  (cd "$DIST" && sha256sum --quiet -c "$sums") || die "sha256sum -c $sums failed"
  grep -q " $(manifest_name "$version")\$" "$DIST/$sums" || die "manifest missing from $sums"
  VERIFY_SUMS="OK ($(wc -l <"$DIST/$sums") files: $(awk '{print $2}' "$DIST/$sums" | sed "s/^${PROJECT}_${version}_//" | paste -sd' '))"
  if [ -f "$DIST/$sums.sig" ]; then
    first=$(head -c1 "$DIST/$sums.sig" | od -An -tx1 | tr -d ' ')
    case $first in 88 | 89 | 8a | c2) ;; *) die "$sums.sig is not a binary OpenPGP signature (first byte $first)" ;; esac
    gpg --batch --status-fd 1 --verify "$DIST/$sums.sig" "$DIST/$sums" 2>/dev/null | grep -q '^\[GNUPG:\] VALIDSIG' \
      || die "gpg --verify $sums.sig failed"
    VERIFY_SIG="OK (binary detached, RSA-4096, key ${SIGN_FPR:-?})"
  else
    VERIFY_SIG="skipped (NO_SIGN=1)"
  fi
}

# The zip holds the executable at its root, under the name registries accept.
check_zip_layout() { # VERSION OS_ARCH
  local z=$DIST/$(zip_name "$1" "$2") names
  names=$(unzip -Z1 "$z")
  grep -qx "$(exe_of "$2")" <<<"$names" || die "$(basename "$z"): no $(exe_of "$2") at the root: $names"
  if grep -q / <<<"$names"; then die "$(basename "$z"): has directories: $names"; fi
}

package_only() {
  local bin=$1 version=$2 os_arch=${3:-linux_amd64}
  [ -f "$bin" ] || die "no such binary: $bin"
  mkdir -p "$DIST"
  rm -f "$DIST/${PROJECT}_${version}_"*
  package_zip "$bin" "$version" "$os_arch"
  check_zip_layout "$version" "$os_arch"
  write_sums "$version"
  [ "${NO_SIGN:-0}" = 1 ] || sign_sums "$version"
  verify_release "$version"
  for f in "$DIST/${PROJECT}_${version}_"*; do echo "artifact: $(basename "$f")"; done
  echo "checksums: $VERIFY_SUMS"
  echo "signature: $VERIFY_SIG"
}

if [ "${1:-}" = --package-only ]; then
  shift
  [ $# -ge 2 ] || die "usage: $0 --package-only BINARY VERSION [OS_ARCH]"
  package_only "$@"
  exit 0
fi

# ---- full dry run -----------------------------------------------------------

VERSION=${1:-$(awk -F'"' '/^version = /{print $2; exit}' "$ROOT/Cargo.toml")}
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "VERSION '$VERSION' is not semver without a leading v"
cd "$ROOT"
mkdir -p "$DIST/logs"
rm -f "$DIST/${PROJECT}_${VERSION}_"*

if [ -z "${TARGETS:-}" ]; then
  # The targets of every build of .goreleaser.yml: the `- triple` lines after
  # each `targets:`.
  TARGETS=$(awk '/^ *targets:/{t=1; next} t && /^ *- /{print $2; next} t && !/^ *#/{t=0}' .goreleaser.yml)
fi
[ -n "$TARGETS" ] || die "no targets found in .goreleaser.yml"

# -- tools
T0=$(date +%s)
export PATH="$ROOT/.tools/zig-venv/bin:$ROOT/.tools/cargo/bin:$PATH"
if ! "$ROOT/.tools/zig-venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  log "installing ziglang into .tools/zig-venv (pip)"
  rm -rf "$ROOT/.tools/zig-venv"
  python3 -m venv "$ROOT/.tools/zig-venv"
  "$ROOT/.tools/zig-venv/bin/pip" install -q --disable-pip-version-check ziglang
fi
if [ ! -x "$ROOT/.tools/zig-venv/bin/zig" ]; then
  printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$ROOT/.tools/zig-venv/bin/python" >"$ROOT/.tools/zig-venv/bin/zig"
  chmod 0755 "$ROOT/.tools/zig-venv/bin/zig"
fi
if ! command -v cargo-zigbuild >/dev/null; then
  log "installing cargo-zigbuild into .tools/cargo (takes ~6 min on 2 cores)"
  cargo install --locked --root "$ROOT/.tools/cargo" cargo-zigbuild >"$DIST/logs/cargo-install-zigbuild.log" 2>&1 \
    || die "cargo install cargo-zigbuild failed; see $DIST/logs/cargo-install-zigbuild.log"
fi
ZIG_V=$(zig version)
ZB_V=$(cargo-zigbuild --version | awk '{print $2}')
log "zig $ZIG_V, cargo-zigbuild $ZB_V, $(rustc --version), tools ready in $(($(date +%s) - T0)) s"

# Apple-framework crates cannot link with zig (release.md §5): fail early.
if cargo tree --locked --target aarch64-apple-darwin -e normal -i security-framework >/dev/null 2>&1; then
  log "WARNING: security-framework is in the darwin dependency tree; darwin links will fail"
fi

# -- build, one target at a time
declare -A STATUS TIME NOTE BIN
ORDER=()
for triple in $TARGETS; do
  base=${triple%.[0-9]*.[0-9]*}
  oa=$(os_arch_of "$triple")
  ORDER+=("$triple")
  if ! rustup target list --installed | grep -qx "$base"; then
    log "rustup target add $base"
    if ! rustup target add "$base" >"$DIST/logs/rustup-$base.log" 2>&1; then
      STATUS[$triple]=skipped TIME[$triple]=-
      NOTE[$triple]="rustup target add $base failed (no rust-std for it here): $(tail -n1 "$DIST/logs/rustup-$base.log")"
      log "SKIP $triple: ${NOTE[$triple]}"
      continue
    fi
  fi
  log "building $triple ($oa)"
  t=$(date +%s)
  if PROVIDER_VERSION=$VERSION MACOSX_DEPLOYMENT_TARGET=$MACOS_MIN RUSTFLAGS=$(release_rustflags "$triple") \
    cargo zigbuild --release --locked --target "$triple" >"$DIST/logs/build-$base.log" 2>&1; then
    TIME[$triple]=$(($(date +%s) - t))
    out=target/$base/release/$(exe_of "$oa")
    [ -f "$out" ] || die "cargo zigbuild succeeded but $out is missing"
    mkdir -p "$DIST/provider_$base"
    install -m 0755 "$out" "$DIST/provider_$base/$(exe_of "$oa")"
    BIN[$triple]=$DIST/provider_$base/$(exe_of "$oa")
    STATUS[$triple]=built
    log "built $triple in ${TIME[$triple]} s"
  else
    TIME[$triple]=$(($(date +%s) - t))
    STATUS[$triple]=failed
    NOTE[$triple]="cargo zigbuild failed: $(grep -m1 -E '^error' "$DIST/logs/build-$base.log" || tail -n1 "$DIST/logs/build-$base.log") (log: dist/logs/build-$base.log)"
    log "FAILED $triple after ${TIME[$triple]} s: ${NOTE[$triple]}"
  fi
done

# -- facts about each binary
# Mach-O: minos of LC_BUILD_VERSION (or LC_VERSION_MIN_MACOSX) and the dylibs.
macho_facts() {
  python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
if struct.unpack_from("<I", d)[0] != 0xFEEDFACF:
    sys.exit("not a 64-bit little-endian Mach-O")
ncmds = struct.unpack_from("<I", d, 16)[0]
off, minos, dylibs = 32, None, []
ver = lambda v: "%d.%d" % (v >> 16, (v >> 8) & 0xFF) + (".%d" % (v & 0xFF) if v & 0xFF else "")
for _ in range(ncmds):
    cmd, size = struct.unpack_from("<II", d, off)
    if cmd == 0x32:                      # LC_BUILD_VERSION: platform, minos, sdk
        minos = ver(struct.unpack_from("<I", d, off + 12)[0])
    elif cmd == 0x24 and minos is None:  # LC_VERSION_MIN_MACOSX: version, sdk
        minos = ver(struct.unpack_from("<I", d, off + 8)[0])
    elif cmd in (0xC, 0x80000018):       # LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB
        name_off = struct.unpack_from("<I", d, off + 8)[0]
        dylibs.append(d[off + name_off:off + size].split(b"\0")[0].decode())
    off += size
print(minos or "none")
print(" ".join(dylibs))
EOF
}

declare -A CHECK
FAILED_CHECKS=0
for triple in "${ORDER[@]}"; do
  [ "${STATUS[$triple]}" = built ] || continue
  b=${BIN[$triple]} oa=$(os_arch_of "$triple")
  kind=$(file -b "$b" | cut -d, -f1-2)
  size=$(du -k "$b" | cut -f1)
  case $oa in
    linux_*)
      glibc=$(readelf -W -V "$b" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
      # Non-PIE as scripts/lib/release-flags.sh asks: ELF type EXEC, not DYN.
      if ! readelf -h "$b" | grep -q 'Type: *EXEC'; then
        kind+="; PIE where non-PIE was asked FAIL"; FAILED_CHECKS=1
      fi
      if [ "$(printf '%s\n%s\n' "$glibc" "$GLIBC_FLOOR" | sort -V | tail -n1)" = "$GLIBC_FLOOR" ]; then
        CHECK[$triple]="$kind; max GLIBC_$glibc <= $GLIBC_FLOOR ok"
      else
        CHECK[$triple]="$kind; max GLIBC_$glibc > $GLIBC_FLOOR FAIL"; FAILED_CHECKS=1
      fi
      ;;
    darwin_*)
      facts=$(macho_facts "$b")
      minos=$(sed -n 1p <<<"$facts") dylibs=$(sed -n 2p <<<"$facts")
      CHECK[$triple]="$kind; minos $minos; links: $(tr ' ' '\n' <<<"$dylibs" | xargs -n1 basename | paste -sd,)"
      if [ "$minos" != "$MACOS_MIN" ] || grep -q '\.framework/' <<<"$dylibs"; then
        CHECK[$triple]+=" FAIL"; FAILED_CHECKS=1
      else
        CHECK[$triple]+=" ok"
      fi
      ;;
    windows_*)
      dlls=$(objdump -p "$b" 2>/dev/null | awk '/DLL Name:/{print $3}' | sort -u | paste -sd, || true)
      CHECK[$triple]="$kind; imports: ${dlls:-?}"
      grep -q 'PE32+' <<<"$kind" || { CHECK[$triple]+=" FAIL"; FAILED_CHECKS=1; }
      ;;
  esac
  CHECK[$triple]="${size} KiB; ${CHECK[$triple]}"
done

# linux_amd64 runs here: its --version must carry VERSION.
VERSION_LINE="" LINUX_AMD64_TRIPLE=""
for triple in "${ORDER[@]}"; do
  [ "$(os_arch_of "$triple")" = linux_amd64 ] && [ "${STATUS[$triple]}" = built ] && LINUX_AMD64_TRIPLE=$triple
done
if [ -n "$LINUX_AMD64_TRIPLE" ]; then
  VERSION_LINE=$("${BIN[$LINUX_AMD64_TRIPLE]}" --version)
  [ "$VERSION_LINE" = "$PROJECT $VERSION" ] || die "--version printed '$VERSION_LINE', wanted '$PROJECT $VERSION'"
fi
# linux_arm64 runs too when user-mode qemu and an aarch64 glibc are installed
# (Debian: qemu-user, libc6-arm64-cross); otherwise the table says it did not.
ARM64_SYSROOT=/usr/aarch64-linux-gnu
for triple in "${ORDER[@]}"; do
  [ "$(os_arch_of "$triple")" = linux_arm64 ] && [ "${STATUS[$triple]}" = built ] || continue
  if command -v qemu-aarch64 >/dev/null && [ -e "$ARM64_SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
    line=$(qemu-aarch64 -L "$ARM64_SYSROOT" "${BIN[$triple]}" --version) || die "linux_arm64 --version failed under qemu-aarch64"
    [ "$line" = "$PROJECT $VERSION" ] || die "linux_arm64 --version printed '$line' under qemu-aarch64"
    CHECK[$triple]="${CHECK[$triple]}; --version ok under qemu-aarch64"
  else
    CHECK[$triple]="${CHECK[$triple]}; not run (no qemu-aarch64 or $ARM64_SYSROOT)"
  fi
done

# -- package, checksums, signature (the same functions as --package-only)
for triple in "${ORDER[@]}"; do
  [ "${STATUS[$triple]}" = built ] || continue
  package_zip "${BIN[$triple]}" "$VERSION" "$(os_arch_of "$triple")"
  check_zip_layout "$VERSION" "$(os_arch_of "$triple")"
done
ls "$DIST/${PROJECT}_${VERSION}_"*.zip >/dev/null 2>&1 || die "no target built; nothing to package"
write_sums "$VERSION"
[ "${NO_SIGN:-0}" = 1 ] || sign_sums "$VERSION"
verify_release "$VERSION"

# -- real Terraform installs the linux_amd64 archive from a filesystem mirror
find_terraform() {
  if [ -n "${PROXTALOS_TF:-}" ]; then echo "$PROXTALOS_TF"; return; fi
  local c
  for c in terraform tofu; do command -v "$c" && return; done
  bash "$ROOT/scripts/install-terraform.sh" "$ROOT/.tools" 2>/dev/null
}

MIRROR_RESULT=()
mirror_check() { # LAYOUT(unpacked|packed) TF
  local layout=$1 tf=$2 m=$TMP/mirror-$1 w=$TMP/work-$1 dir out code lock h1 pv
  dir=$m/$SOURCE_ADDR
  if [ "$layout" = unpacked ]; then
    mkdir -p "$dir/$VERSION/linux_amd64"
    unzip -q "$DIST/$(zip_name "$VERSION" linux_amd64)" -d "$dir/$VERSION/linux_amd64"
  else
    mkdir -p "$dir"
    cp "$DIST/$(zip_name "$VERSION" linux_amd64)" "$dir/"
  fi
  mkdir -p "$w"
  cat >"$w/cli.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$m"
    include = ["$SOURCE_ADDR"]
  }
}
EOF
  cat >"$w/main.tf" <<EOF
terraform {
  required_providers {
    proxtalos = {
      source  = "proxtalos/proxtalos"
      version = "= $VERSION"
    }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {
  talos_version = "v1.13"
}
EOF
  local -a env=(env -u TF_PLUGIN_CACHE_DIR -u TF_LOG -u TF_DATA_DIR TF_CLI_CONFIG_FILE="$w/cli.tfrc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1)
  (cd "$w" && "${env[@]}" "$tf" init -no-color) >"$DIST/logs/mirror-$layout-init.log" 2>&1 \
    || { cat "$DIST/logs/mirror-$layout-init.log" >&2; die "terraform init from the $layout mirror failed"; }
  lock=$w/.terraform.lock.hcl
  grep -q "provider \"$SOURCE_ADDR\"" "$lock" || die "$layout: lock file has no $SOURCE_ADDR"
  grep -q "version *= \"$VERSION\"" "$lock" || die "$layout: lock file does not pin $VERSION"
  h1=$(grep -o '"h1:[^"]*"' "$lock" | tr -d '"' | paste -sd,)
  [ -n "$h1" ] || die "$layout: lock file has no h1: hash"
  code=0
  (cd "$w" && "${env[@]}" "$tf" plan -no-color -detailed-exitcode) >"$DIST/logs/mirror-$layout-plan.log" 2>&1 || code=$?
  [ "$code" = 2 ] && grep -q 'Plan: 1 to add' "$DIST/logs/mirror-$layout-plan.log" \
    || { cat "$DIST/logs/mirror-$layout-plan.log" >&2; die "terraform plan with the $layout mirror exited $code"; }
  pv=$(cd "$w" && "${env[@]}" "$tf" version 2>/dev/null | grep -o "provider $SOURCE_ADDR v[^ ]*" || true)
  [ "$pv" = "provider $SOURCE_ADDR v$VERSION" ] || die "$layout: terraform version shows '$pv'"
  MIRROR_RESULT+=("$layout layout: init OK, lock pins $VERSION with $h1; plan exit 2 (Plan: 1 to add); terraform version: $pv")
  MIRROR_H1[$layout]=$h1
}

declare -A MIRROR_H1
TF_BIN=""
if [ -f "$DIST/$(zip_name "$VERSION" linux_amd64)" ]; then
  TF_BIN=$(find_terraform) || true
  [ -n "$TF_BIN" ] || die "no Terraform found for the mirror check (set PROXTALOS_TF)"
  # Whole output, first line kept: `| head -n1` under pipefail fails the
  # script when Terraform gets SIGPIPE writing its later lines.
  TF_VER=$(TF_CLI_CONFIG_FILE=/dev/null "$TF_BIN" version 2>/dev/null) || TF_VER="Terraform (version unknown)"
  TF_VER=${TF_VER%%$'\n'*}
  log "mirror check with $TF_VER ($TF_BIN)"
  mirror_check unpacked "$TF_BIN"
  mirror_check packed "$TF_BIN"
  [ "${MIRROR_H1[unpacked]}" = "${MIRROR_H1[packed]}" ] \
    || die "h1 differs between unpacked (${MIRROR_H1[unpacked]}) and packed (${MIRROR_H1[packed]}) layouts"
  MIRROR_RESULT+=("h1 identical for both layouts")
else
  MIRROR_RESULT+=("skipped: linux_amd64 did not build")
fi

# -- summary
TOTAL=$(($(date +%s) - T0))
{
  echo
  echo "== release dry run: $PROJECT $VERSION ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); zig $ZIG_V; cargo-zigbuild $ZB_V; $(rustc --version | cut -d' ' -f1-2))"
  printf '%-32s %-14s %-8s %6s  %s\n' target os_arch result time details
  for triple in "${ORDER[@]}"; do
    t=${TIME[$triple]}; [ "$t" = - ] || t="${t}s"
    printf '%-32s %-14s %-8s %6s  %s\n' "$triple" "$(os_arch_of "$triple")" "${STATUS[$triple]}" "$t" \
      "${CHECK[$triple]:-${NOTE[$triple]:-}}"
  done
  echo
  echo "artifacts in ${DIST#"$ROOT"/}/:"
  for f in "$DIST/${PROJECT}_${VERSION}_"*; do printf '  %-62s %s\n' "$(basename "$f")" "$(du -h "$f" | cut -f1)"; done
  echo "checksums:  $VERIFY_SUMS"
  echo "signature:  $VERIFY_SIG"
  [ -n "$VERSION_LINE" ] && echo "--version:  $VERSION_LINE (linux_amd64)"
  for r in "${MIRROR_RESULT[@]}"; do echo "mirror:     $r"; done
  [ -n "$TF_BIN" ] && echo "terraform:  $TF_VER"
  echo "total:      ${TOTAL}s"
} | tee "$DIST/logs/summary.txt"

n_failed=0 n_skipped=0
for triple in "${ORDER[@]}"; do
  case ${STATUS[$triple]} in failed) n_failed=$((n_failed + 1)) ;; skipped) n_skipped=$((n_skipped + 1)) ;; esac
done
[ "$FAILED_CHECKS" = 0 ] || die "a binary check failed (see the table)"
[ "$n_skipped" = 0 ] || log "note: $n_skipped target(s) skipped: this machine cannot build them (see the table)"
if [ "$n_failed" != 0 ]; then
  # A compile error is the project's, not the machine's: GoReleaser would
  # fail the whole release on it.
  log "$n_failed target(s) FAILED to build: a real release would fail (exit 3)"
  exit 3
fi
exit 0
