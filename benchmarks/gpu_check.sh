#!/usr/bin/env bash
# The GPU checks of the gpu profile in one script, for the first machine with a GPU (at most 9 minutes on one GPU):
#   1. benchmarks/train.py --grid: one run and 4 and 8 runs at once, compile (CUDA graphs) off and on, bf16 autocast
#      and channels_last as the profile has them, and the projected wall time of the profile's whole grid;
#   2. benchmarks/loss.py on CUDA (fp32 and bf16, fused against eager, the cross-entropy baseline, the linear head);
#   3. a short compiled run killed mid-way with SIGKILL, then resumed to the end.
# Results go to $OUT (default benchmarks/results/gpu-<date>); each step has its own time limit, so a hung step does
# not take the others with it. Usage: bash benchmarks/gpu_check.sh [python]
# DEVICE=cpu QUICK=1 runs the same steps at toy sizes on the CPU (the test suite does, to keep the script working).
set -uo pipefail
PY=${1:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/gpu-$(date +%Y%m%d)}
DEVICE=${DEVICE:-cuda}
if [[ -n "${QUICK:-}" ]]; then
    GRID=(--quick --models small-cnn --grid-workers 2 --compile off) LOSS=(--quick) MODEL=small-cnn EPOCHS=60
else
    GRID=(--grid-workers 4 8) LOSS=(--seconds 2) MODEL=resnet32 EPOCHS=9
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...: run a step under a time limit, its output in $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    if timeout "$limit" "$@" >"$OUT/$name.log" 2>&1; then
        tail -n 20 "$OUT/$name.log"
    else
        echo "!! $name failed or timed out (exit $?); the last lines:"
        tail -n 40 "$OUT/$name.log"
        status=1
    fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1 || true
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0), torch.cuda.device_count())" \
    >>"$OUT/gpu.txt" 2>&1 || true
cat "$OUT/gpu.txt"

step grid 270 "$PY" benchmarks/train.py --grid --device "$DEVICE" "${GRID[@]}" --json "$OUT/grid.json"
step loss 100 "$PY" benchmarks/loss.py --device "$DEVICE" "${LOSS[@]}" --json "$OUT/loss.json" --markdown

# kill and resume: a compiled run on CIFAR-format files, SIGKILLed once its first checkpoint (epoch 3) is written,
# then resumed to the end
RUNS=$(mktemp -d)
"$PY" -c "from focal.engine.data import write_fake_cifar; write_fake_cifar('$RUNS/cifar', n_train_per_class=500)"
RUN=(-m focal train --dataset cifar10-lt --data-root "$RUNS/cifar" --no-verify --model "$MODEL" --epochs "$EPOCHS"
     --checkpoint-every 3 --compile --device "$DEVICE" --out "$RUNS/out" --no-progress)
"$PY" "${RUN[@]}" >"$OUT/resume-killed.log" 2>&1 &
pid=$!
for _ in $(seq 1 900); do  # until the checkpoint exists (written atomically), or 90 s
    compgen -G "$RUNS/out/*/checkpoint.pt" >/dev/null && break
    sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "killed the run after its first checkpoint: $(compgen -G "$RUNS/out/*/checkpoint.pt" || echo none)"
step resume 90 "$PY" "${RUN[@]}"
grep -q "^resumed" "$OUT/resume.log" || { echo "!! the killed run did not resume"; status=1; }
rm -rf "$RUNS"
echo "results in $OUT"
exit "$status"
