#!/usr/bin/env bash
# Issue 14: many seeds of several 80x160 settings at once (one process per seed, each running the
# settings in turn through benchmarks/attention_levers.py, so a seed's data and CNN are made once).
#   SEEDS="0 1 2" DEVICE=cuda JOBS=12 OUTDIR=folder bash benchmarks/attention_sweep.sh
# Each seed's JSON lines go to $OUTDIR/seed-N.jsonl, its log to $OUTDIR/seed-N.log.
# Settings: "tag|models|--set ..." lines in $SETTINGS (a file), or the ones below.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cpu}
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-"0 1 2 3 4 5 6"}
OUTDIR=${OUTDIR:-benchmarks/out/attention_sweep}
mkdir -p "$OUTDIR"
BASE="--set data.height=80 --set data.width=160 --set model.located=true --set model.context_norm=true \
--set model.logit_scale=16 --set model.learn_scale=true --set train.clip_grad=1.0 --set train.epochs=8 \
--set train.batch_size=4 --set data.lateral_scale=3 --set data.pitch_px=16"
if [ -n "${SETTINGS:-}" ]; then
    settings=$(cat "$SETTINGS")
else
    settings="ref|attention,cnn|
r0|attention,attention_no_reg,cnn|--set data.ramp_m=0"
fi
export PY DEVICE OUTDIR BASE settings
run_seed() {
    local seed=$1
    while IFS='|' read -r tag models extra; do
        [ -z "$tag" ] && continue
        # shellcheck disable=SC2086  # BASE and extra are lists of --set arguments
        PYTHONPATH=workflow:benchmarks${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=1 "$PY" benchmarks/attention_levers.py --out "$OUTDIR/data" \
            --device "$DEVICE" --seeds "$seed" --models "$models" --tag "$tag" $BASE $extra \
            >> "$OUTDIR/seed-$seed.jsonl" 2>> "$OUTDIR/seed-$seed.log"
    done <<< "$settings"
}
export -f run_seed
printf '%s\n' $SEEDS | xargs -P "$JOBS" -I{} bash -c 'run_seed {}'
