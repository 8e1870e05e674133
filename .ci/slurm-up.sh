#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for tests/test_slurm.py.
#
# Idempotent: installs Debian's slurm-wlm and munge only when missing, writes the config
# (restarting the daemons only when it changed), starts whatever daemon is not running, and
# waits until `sinfo` shows the node idle. On failure it prints the daemons' logs and exits 1.
#
# The node advertises two fake GPUs (gres on /dev/null and /dev/zero), so that rules with
# `resources: gpu=1` get a real SLURM GPU grant (CUDA_VISIBLE_DEVICES) on a machine without one.
# Accounting is off: the Snakemake profile (profiles/slurm) polls job states with `squeue`.
#
# Needs root (re-runs itself with sudo when it is there). Stop it all with .ci/slurm-down.sh.
set -euo pipefail

source "$(dirname "$0")/as-root.sh"

WAIT_S=${SLURM_UP_WAIT_S:-60}
LOG_DIR=/var/log/slurm
CONF_DIR=/etc/slurm
NODE=$(hostname -s)
CPUS=$(nproc)
# a bit under the machine's memory: slurmd drains a node that has less than RealMemory
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

log() { echo "slurm-up: $*"; }

# --- packages ---------------------------------------------------------------------------
missing=()
for cmd in slurmctld slurmd sinfo squeue sbatch srun scontrol; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
command -v munged >/dev/null || missing+=(munged)
if ((${#missing[@]})); then
    log "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge ------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating a munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --force --keyfile /etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# --- configuration ----------------------------------------------------------------------
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd /run/slurm

# slurm.conf must be at the default path: the jobstep executor drops SLURM_* variables
# (SLURM_CONF included) before its inner srun.
new_conf=$(mktemp)
new_gres=$(mktemp)
trap 'rm -f "$new_conf" "$new_gres"' EXIT
cat >"$new_conf" <<EOF
# Written by .ci/slurm-up.sh: a one-node test cluster (no cgroups, no accounting).
ClusterName=ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
GresTypes=gpu
SchedulerType=sched/backfill
ReturnToService=2
# squeue (the profile's status command) sees finished jobs for this long
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$new_gres" <<EOF
# Written by .ci/slurm-up.sh: two fake GPUs (a gpu line without File= drains the node).
AutoDetect=off
NodeName=${NODE} Name=gpu File=/dev/null
NodeName=${NODE} Name=gpu File=/dev/zero
EOF

changed=0
for pair in "$new_conf:$CONF_DIR/slurm.conf" "$new_gres:$CONF_DIR/gres.conf"; do
    src=${pair%%:*} dst=${pair#*:}
    if ! cmp -s "$src" "$dst"; then
        install -m 0644 "$src" "$dst"
        changed=1
        log "wrote $dst"
    fi
done

# --- daemons ----------------------------------------------------------------------------
pid_alive() { # pidfile -> 0 when the process it names is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}
stop_pidfile() {
    if pid_alive "$1"; then
        kill "$(cat "$1")"
        for _ in $(seq 50); do pid_alive "$1" || break; sleep 0.2; done
    fi
    rm -f "$1"
}

if ((changed)); then
    stop_pidfile /run/slurm/slurmd.pid
    stop_pidfile /run/slurm/slurmctld.pid
fi

if ! pid_alive /run/munge/munged.pid; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null

if ! pid_alive /run/slurm/slurmctld.pid; then
    log "starting slurmctld"
    /usr/sbin/slurmctld
fi
if ! pid_alive /run/slurm/slurmd.pid; then
    log "starting slurmd"
    /usr/sbin/slurmd
fi

# --- wait for the node ------------------------------------------------------------------
node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1; }
deadline=$((SECONDS + WAIT_S))
resumed=0
state=
while ((SECONDS < deadline)); do
    state=$(node_state || true)
    case $state in
        idle | mixed | allocated)
            log "node $NODE is $state ($CPUS CPUs, ${MEM_MB} MB, gpu:2)"
            sinfo
            exit 0
            ;;
        drained* | draining* | down*)
            # left over from an earlier run (e.g. a daemon restart): bring it back once
            if ((!resumed)); then
                scontrol update NodeName="$NODE" State=RESUME || true
                resumed=1
            fi
            ;;
    esac
    sleep 1
done

echo "slurm-up: node $NODE not idle after ${WAIT_S}s (state: '${state:-unknown}')" >&2
sinfo -N -l >&2 || true
scontrol show node "$NODE" >&2 || true
for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    echo "----- $f (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2 2>/dev/null || true
done
exit 1
