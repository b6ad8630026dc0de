#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md ("GPU: Tokyo config, full grid"), as one script for a lent GPU
# machine. Needs session folders at full size in $DATA (e.g. `python scripts/plateau_to_occworld.py --output
# gpu_data --frames 40 --sessions 2 --agent mixed --no-sensors`) and writes JSON and logs to $OUT (default ./gpu_out).
#   1. step time and peak memory per batch size 1, 2, 4, 8 with fp16 autocast + GradScaler (bench_model.py),
#      for the world-model step (frozen tokenizer encoding all frames + transformer), the same from cached codes,
#      and the tokenizer step; fp32 at batch 1 for comparison;
#   2. the real trainer, fp16: stage 1 (tokenizer) and stage 2 (world model) for >= 200 steps each (NaN/overflow
#      detection is the trainer's own), logging samples/s and the data-wait share;
#   3. data-loader throughput of the stage-2 config (bench_loader.py) to set against the step rate.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-gpu_data}
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/gpu.txt"
"$PY" benchmarks/bench_model.py --device cuda --amp --batch-sizes 1 2 4 8 --parts world world_codes tokenizer \
    --warmup 2 --steps 3 --json-out "$OUT/bench_fp16.json" 2>&1 | tee "$OUT/bench.log"
"$PY" benchmarks/bench_model.py --device cuda --batch-sizes 1 --parts world tokenizer \
    --warmup 2 --steps 5 --json-out "$OUT/bench_fp32.json" 2>&1 | tee -a "$OUT/bench.log"
CK=$(mktemp -d)
"$PY" train.py --config config/vqvae_tokyo.py --work-dir "$CK/tokenizer" --from-scratch --batch-size 2 --epochs 10 \
    --cfg-options data_root="$DATA/" evaluation.interval=10 log_config.interval=20 > "$OUT/train_stage1.log" 2>&1
echo "stage 1 exit $?" | tee -a "$OUT/bench.log"
"$PY" train.py --config config/finetune_tokyo.py --work-dir "$CK" --from-scratch --batch-size 1 --epochs 7 \
    --cfg-options data_root="$DATA/" evaluation.interval=7 evaluation.max_samples=8 log_config.interval=20 \
    > "$OUT/train_stage2.log" 2>&1
echo "stage 2 exit $?" | tee -a "$OUT/bench.log"
"$PY" benchmarks/bench_loader.py --config config/finetune_tokyo.py --data-root "$DATA" --workers 0 4 8 \
    --batch-sizes 1 4 --batches 20 --json-out "$OUT/loader.json" 2>&1 | tee -a "$OUT/bench.log"
grep -h -E "samples/s|nan|NaN|overflow|skipped|Error|error" "$OUT"/train_stage*.log | tail -40
