#!/usr/bin/env bash
# README command 1: a 5-node Talos cluster (3 control planes, 2 workers) on
# the local lab (fakepve + Talos node simulator) with examples/quickstart.
#
#   scripts/quickstart.sh            install what is missing, build the provider
#                                    (debug build: `cargo build`), start the lab,
#                                    terraform init + apply, print the outputs,
#                                    list the nodes with the real kubectl,
#                                    prove the re-plan is empty
#   scripts/quickstart.sh destroy    terraform destroy, then stop the lab
#   scripts/quickstart.sh --example cluster [-- APPLY ARGS]
#                                    the same with examples/NAME; arguments after
#                                    `--` go to terraform apply (and the re-plan),
#                                    e.g. `-- -var talos_version=v1.14.2`. With
#                                    the lab already running that example, it
#                                    applies again (how to try an upgrade).
#
# Terraform: `tofu` or `terraform` from PATH when present, else Terraform
# 1.15.5 from scripts/install-terraform.sh into .tools/. Override with
# PROXTALOS_TF=/path/to/terraform-or-tofu.
# Environment: QUICKSTART_DIR (.tools/quickstart), QUICKSTART_TIME_SCALE (0.01),
# QUICKSTART_PORT (8006; 0 for any free one), QUICKSTART_NETWORK (127.0.10.0/24: the nodes' loopback
# addresses, from host 11 on), QUICKSTART_PVE_NODES (1; with 2-9 the lab has PVE nodes pve1..pveN
# and the example's `proxmox_nodes` lists them: `placement` spreads the VMs over them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
COMMAND=up
EXAMPLE=quickstart
APPLY_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --example) EXAMPLE=${2:?--example needs a name}; shift 2 ;;
    --example=*) EXAMPLE=${1#--example=}; shift ;;
    --) shift; APPLY_ARGS=("$@"); break ;;
    *) COMMAND=$1; shift ;;
  esac
done
WORK=${QUICKSTART_DIR:-$ROOT/.tools/quickstart}
SCALE=${QUICKSTART_TIME_SCALE:-0.01}
PORT=${QUICKSTART_PORT:-8006}
NETWORK=${QUICKSTART_NETWORK:-127.0.10.0/24}
PVE_NODES=${QUICKSTART_PVE_NODES:-1}
[[ $PVE_NODES =~ ^[1-9]$ ]] || { echo "quickstart: QUICKSTART_PVE_NODES is a number from 1 to 9" >&2; exit 1; }
LAB_DIR=${PROXTALOS_LAB_DIR:-$ROOT/.tools/lab}
export PROXTALOS_LAB_DIR=$LAB_DIR

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

find_tf() {
  if [ -n "${PROXTALOS_TF:-}" ]; then
    [ -x "$PROXTALOS_TF" ] || die "PROXTALOS_TF=$PROXTALOS_TF is not executable"
    TF=$PROXTALOS_TF
  elif command -v tofu >/dev/null; then
    TF=$(command -v tofu)
  elif command -v terraform >/dev/null; then
    TF=$(command -v terraform)
  else
    local installer=$ROOT/scripts/install-terraform.sh
    [ -f "$installer" ] || die "no tofu or terraform on PATH and no installer at $installer: install Terraform >= 1.11 or OpenTofu"
    say "installing Terraform 1.15.5 into .tools/ ($installer)"
    TF=$(bash "$installer" "$ROOT/.tools") || die "installing Terraform failed"
  fi
  # A CLI config with dev_overrides points Terraform at the provider we build.
  mkdir -p "$WORK"
  export TF_CLI_CONFIG_FILE=$WORK/terraform.tfrc
  cat >"$TF_CLI_CONFIG_FILE" <<CFG
provider_installation {
  dev_overrides {
    "registry.terraform.io/proxtalos/proxtalos" = "${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  }
  direct {}
}
CFG
  export TF_IN_AUTOMATION=1 TF_INPUT=0
  local v
  # Not `| head -1`: with pipefail, Terraform's SIGPIPE on its later lines
  # (when head has already exited) would read as "does not run".
  v=$("$TF" version 2>/dev/null) || die "$TF does not run"
  v=${v%%$'\n'*}
  echo "using $v ($TF)"
  # With dev_overrides, Terraform before 1.15 needs (and wants) no init.
  NEEDS_INIT=1
  if [[ $v =~ ^Terraform\ v1\.([0-9]+)\. ]]; then
    local minor=${BASH_REMATCH[1]}
    [ "$minor" -ge 11 ] || die "$v is too old: the quickstart needs Terraform >= 1.11"
    [ "$minor" -ge 15 ] || NEEDS_INIT=0
  fi
}

tf() { "$TF" -chdir="$WORK" "$@"; }

lab_env() {
  # shellcheck disable=SC1090
  source <(bash scripts/lab.sh env) || die "the lab is not running"
  export PROXMOX_VE_ENDPOINT PROXMOX_VE_API_TOKEN PROXTALOS_IMAGE_FACTORY_URL
  export TF_VAR_proxmox_ca_certificate_file=$PROXTALOS_LAB_CA
}

vms_left() {
  "$(dirname "$(bash scripts/install-fakepve.sh)")/python" - <<'PY'
import json, os, ssl, urllib.request
ctx = ssl.create_default_context(cafile=os.environ["PROXTALOS_LAB_CA"])
req = urllib.request.Request(os.environ["PROXMOX_VE_ENDPOINT"].rstrip("/") + "/api2/json/cluster/resources?type=vm",
                             headers={"Authorization": "PVEAPIToken=" + os.environ["PROXMOX_VE_API_TOKEN"]})
vms = json.load(urllib.request.urlopen(req, context=ctx))["data"]
print(" ".join(f"{v['vmid']}:{v.get('name', '')}" for v in vms))
PY
}

destroy() {
  find_tf
  if bash scripts/lab.sh status >/dev/null 2>&1; then
    lab_env
    if [ -f "$WORK/terraform.tfstate" ]; then
      say "terraform destroy"
      # With the arguments of the last apply: the destroy plans with the
      # configuration, and a version it would refuse (a downgrade) stops it.
      local args=()
      if [ -s "$WORK/apply-args" ]; then mapfile -t args <"$WORK/apply-args"; fi
      tf destroy -auto-approve -no-color "${args[@]}" || { bash scripts/lab.sh stop || true; die "destroy failed (the lab is stopped; its VMs went with it)"; }
    fi
    # What a hypervisor would show: every VM of the node, straight from the PVE API.
    local left
    left=$(vms_left) || die "could not list the VMs on the lab's PVE API"
    echo "VMs left on the lab's PVE: ${left:-none}"
  else
    echo "the lab is not running: nothing to destroy"
  fi
  rm -f "$WORK/terraform.tfstate" "$WORK/terraform.tfstate.backup" "$WORK/talosconfig" "$WORK/kubeconfig" "$WORK/example" "$WORK/apply-args"
  say "stopping the lab"
  bash scripts/lab.sh stop
}

up() {
  local t0=$SECONDS
  command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
  find_tf

  say "building the provider (cargo build, debug)"
  cargo build --bin terraform-provider-proxtalos || die "building the provider failed"

  [ -d "examples/$EXAMPLE" ] && [ -f "examples/$EXAMPLE/main.tf" ] || die "no example examples/$EXAMPLE"
  local again=0
  if bash scripts/lab.sh status >/dev/null 2>&1; then
    # The lab runs this example already: apply again (an upgrade, a count).
    if [ -f "$WORK/terraform.tfstate" ] && [ "$(cat "$WORK/example" 2>/dev/null)" = "$EXAMPLE" ]; then
      again=1
    else
      die "a lab is already running: run \`scripts/quickstart.sh destroy\` (or scripts/lab.sh stop) first"
    fi
  fi
  if [ $again = 0 ]; then
    say "starting the lab (time scale $SCALE, port $PORT)"
    bash scripts/lab.sh start --detach --time-scale "$SCALE" --port "$PORT" --pve-nodes "$PVE_NODES" >"$WORK/lab-banner.txt" ||
      die "the lab did not start (see above)"
    sed -n '1,/^Stop:/p' "$WORK/lab-banner.txt" | sed -n '1,3p'
    trap 'rc=$?; if [ $rc != 0 ]; then echo "quickstart: failed; stopping the lab (logs: $LAB_DIR/lab.log, $WORK/*.log)" >&2; bash scripts/lab.sh stop >&2 || true; fi' EXIT
  fi
  lab_env

  say "terraform apply in $WORK (a copy of examples/$EXAMPLE)${APPLY_ARGS[*]:+ with ${APPLY_ARGS[*]}}"
  rm -f "$WORK"/*.tf
  if [ $again = 0 ]; then rm -f "$WORK/terraform.tfstate" "$WORK/terraform.tfstate.backup"; fi
  cp "examples/$EXAMPLE"/*.tf "$WORK/"
  echo "$EXAMPLE" >"$WORK/example"
  cat >"$WORK/terraform.tfvars" <<VARS
# The lab: node pve1, storages local (iso) and local-lvm, bridge vmbr0;
# nodes on loopback $NETWORK (endpoint and token come from PROXMOX_VE_*).
network_cidr = "$NETWORK"
first_host   = 11
VARS
  if [ "$PVE_NODES" -gt 1 ]; then
    local list
    list=$(seq -s, -f '"pve%g"' 1 "$PVE_NODES")
    echo "proxmox_nodes = [$list]" >>"$WORK/terraform.tfvars"
  fi
  # Initialised by the run that created it (Terraform 1.15's init would
  # now look the overridden provider up in the registry for the state).
  if [ "$NEEDS_INIT" = 1 ] && [ $again = 0 ]; then tf init -no-color >/dev/null || false; fi
  local ta=$SECONDS
  tf apply -auto-approve -no-color "${APPLY_ARGS[@]}" >"$WORK/apply.log" 2>&1 || { tail -40 "$WORK/apply.log" >&2; false; }
  local apply_s=$((SECONDS - ta))
  printf '%s\n' "${APPLY_ARGS[@]}" >"$WORK/apply-args"
  grep -E '^Apply complete' "$WORK/apply.log"

  say "outputs"
  tf output -no-color
  (umask 077; tf output -raw talosconfig >"$WORK/talosconfig"; tf output -raw kubeconfig >"$WORK/kubeconfig")
  chmod 600 "$WORK/talosconfig" "$WORK/kubeconfig"
  echo "talosconfig: $WORK/talosconfig (0600)"
  echo "kubeconfig:  $WORK/kubeconfig (0600)"

  # The lab's control planes serve the Kubernetes API at the cluster
  # endpoint; the real kubectl (pip, into .tools/) reads it.
  KUBECTL=$(bash scripts/install-kubectl.sh 2>/dev/null) || KUBECTL=
  if [ -n "$KUBECTL" ]; then
    say "kubectl get nodes (the real kubectl against the lab's Kubernetes API)"
    "$KUBECTL" --kubeconfig "$WORK/kubeconfig" get nodes -o wide || die "kubectl get nodes failed"
  else
    echo "kubectl could not be installed (scripts/install-kubectl.sh); skipping kubectl get nodes" >&2
  fi

  say "second plan (must be empty)"
  local rc=0
  tf plan -detailed-exitcode -no-color "${APPLY_ARGS[@]}" >"$WORK/replan.log" 2>&1 || rc=$?
  if [ $rc != 0 ]; then
    cat "$WORK/replan.log" >&2
    die "the second plan is not empty (exit $rc)"
  fi
  grep -E '^No changes' "$WORK/replan.log"
  trap - EXIT

  say "done in $((SECONDS - t0)) s (apply ${apply_s} s at time scale $SCALE); the cluster is healthy"
  cat <<MSG
Try:   ${KUBECTL:-kubectl} --kubeconfig $WORK/kubeconfig get nodes
       (also get pods -A, cordon, drain --ignore-daemonsets, uncordon: the lab serves that part of the Kubernetes API)
       TALOSCONFIG=$WORK/talosconfig talosctl ... (the simulated nodes answer the Talos API)
       $TF -chdir=$WORK output
Clean: scripts/quickstart.sh destroy    (terraform destroy, then stop the lab)
MSG
}

case $COMMAND in
  up|apply) up ;;
  destroy|down) destroy ;;
  -h|--help|help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command $COMMAND (up, destroy)" ;;
esac
