#!/usr/bin/env bash
# Stop the one-node SLURM cluster that .ci/slurm-up.sh started (slurmd, slurmctld, munged).
# Stops each daemon by the pid in its pid file; what is not running is skipped.
set -euo pipefail

source "$(dirname "$0")/as-root.sh"

stop() { # name pidfile
    local name=$1 pidfile=$2 pid
    if [[ -s $pidfile ]] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
        echo "slurm-down: stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $name did not stop in 10 s; sending SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    else
        echo "slurm-down: $name is not running"
    fi
    rm -f "$pidfile"
}

stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid
