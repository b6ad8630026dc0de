#!/usr/bin/env bash
# Full-size Occ3D-slab run on a GPU: stage 1 (config/vqvae_tokyo_occ3d.py) and stage 2
# (config/finetune_tokyo_occ3d.py) for one epoch each, then --eval-only, on rover sessions made with
#   python -m occworld_tokyo.cli generate --grid occ3d --agent rover --frames 24 --sessions 4 --no-sensors \
#       --output data/tokyo_occ3d
# No released weights ship with the repository: --from-scratch unless pretrained/occworld/latest.pth exists.
# Usage: bash benchmarks/occ3d_full_size.sh [WORK_DIR]   (logs: WORK_DIR/*.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-checkpoints/occ3d_full}
PY=${PYTHON:-python3}
mkdir -p "$WORK"
W=(); [ -f pretrained/occworld/latest.pth ] || W=(--from-scratch)
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
run() { local name=$1; shift; local t0=$SECONDS
  "$PY" train.py "$@" > "$WORK/$name.txt" 2>&1 || { tail -40 "$WORK/$name.txt"; exit 1; }
  echo "$name: $((SECONDS - t0)) s"; grep -E "pretrained|loaded|grid:|codes used|IoU|mIoU|peak" "$WORK/$name.txt" | tail -12 || true; }
run stage1 --config config/vqvae_tokyo_occ3d.py --work-dir "$WORK/tokenizer" "${W[@]}" --cfg-options max_epochs=1 evaluation.interval=1 data.workers_per_gpu=2
run stage2 --config config/finetune_tokyo_occ3d.py --work-dir "$WORK" "${W[@]}" --cfg-options max_epochs=1 evaluation.interval=1 data.workers_per_gpu=2
run eval --config config/finetune_tokyo_occ3d.py --work-dir "$WORK" --eval-only --cfg-options data.workers_per_gpu=2
ls "$WORK" "$WORK/metrics"
"$PY" - "$WORK" <<'PY'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics/eval_best.json"))
print({k: m[k] for k in m if k in ("forecast", "planning", "epoch")})
PY
