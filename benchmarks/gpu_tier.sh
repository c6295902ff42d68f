#!/usr/bin/env bash
# GPU tier of the learning results: the six models on sequential Fashion-MNIST at the paper-size
# configuration (the smnist-<family> experiments: 4 layers, H 256 (S5: 128), N 64, batch 50) for a
# fixed number of optimizer steps each, on one CUDA GPU; then one result JSON per run (tier gpu, the
# GPU named) written by ssm-report.
# Usage (repository root): benchmarks/gpu_tier.sh DATA_DIR OUTDIR [STEPS]
#   DATA_DIR  folder with the four Fashion-MNIST IDX files (e.g. /usr/share/datasets/fashion-mnist,
#             or a copy carried with the working tree)
#   OUTDIR    run folders (OUTDIR/runs), result JSONs (OUTDIR/results) and logs
#   STEPS     optimizer steps per model (default 600: at most about a minute each on an H100, so the
#             six runs with validation and the full 10k test set stay within 8 minutes)
# Environment: PYTHON (default python3), FAMILIES (default "s4 s4d dss s5 s4-ptd s5-ptd"),
# PER_RUN_TIMEOUT seconds (default 75): a run that exceeds it is stopped and reported as such.
set -uo pipefail
DATA=${1:?usage: benchmarks/gpu_tier.sh DATA_DIR OUTDIR [STEPS]}
OUT=${2:?usage: benchmarks/gpu_tier.sh DATA_DIR OUTDIR [STEPS]}
STEPS=${3:-600}
PY=${PYTHON:-python3}
FAMILIES=${FAMILIES:-s4 s4d dss s5 s4-ptd s5-ptd}
PER_RUN_TIMEOUT=${PER_RUN_TIMEOUT:-75}
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT/runs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
status=0
for fam in $FAMILIES; do
    start=$(date +%s)
    timeout --signal=INT "$PER_RUN_TIMEOUT" $PY -m ssm.training.train \
        experiment=smnist-$fam data=sfmnist data.data_dir="$DATA" data.batch_size=50 \
        name=sfmnist-$fam variant=paper-size-$STEPS-steps seed=0 \
        trainer.accelerator=gpu trainer.devices=1 trainer.max_epochs=-1 trainer.max_steps=$STEPS \
        trainer.check_val_every_n_epoch=null trainer.val_check_interval=$((STEPS / 3)) \
        scheduler.warmup_steps=$((STEPS / 10)) callbacks.progress_bar=null trainer.enable_progress_bar=false \
        hydra.run.dir="$OUT/runs/sfmnist-$fam" >"$OUT/$fam.log" 2>&1
    rc=$?
    echo "$fam: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
    [ $rc -eq 0 ] || status=1
done
$PY -m ssm.training.report "$OUT/runs" --out "$OUT/results" --weights --markdown "$OUT/results.md" \
    --title "GPU tier: sequential Fashion-MNIST, paper-size models, $STEPS steps" | tee -a "$OUT/summary.txt"
exit $status
