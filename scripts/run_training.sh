#!/usr/bin/env bash
# Train OccWorld on Tokyo sessions: the guide's "run_training.sh" (docs/training.md).
#
#   ./scripts/run_training.sh [--config FILE] [--work-dir DIR] [--epochs N] [--batch-size N] [--lr RATE]
#                             [--quick] [--resume] [--eval] [--tensorboard] [--generate-data]
#                             [--data-frames N] [--data-sessions N] [--input PATH] [--tokenizer-config FILE]
#                             [-- extra train.py arguments, e.g. --from-scratch --gpu-ids 0,1]
#
# Stage 1 (tokenizer, --tokenizer-config, default config/vqvae_tokyo.py) runs into <work-dir>/tokenizer when
# that folder has no best.pth yet (or, with --resume, continues there when it is unfinished); stage 2
# (--config) then trains the world model in <work-dir> with that tokenizer frozen. Several GPUs (--gpu-ids
# 0,1 after --) use torchrun.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=config/finetune_tokyo.py
TOKENIZER_CONFIG=config/vqvae_tokyo.py
WORK_DIR=./checkpoints
EPOCHS=50
BATCH_SIZE=1
LR=1e-4
QUICK=0; RESUME=0; EVAL=0; TENSORBOARD=0; GENERATE=0
DATA_FRAMES=200; DATA_SESSIONS=5; INPUT=""
PY=${PYTHON:-python3}
EPOCHS_SET=0; LR_SET=0
EXTRA=()

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "error: $1 needs a value" >&2; exit 2; }; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) need "$@"; CONFIG=$2; shift 2 ;;
    --tokenizer-config) need "$@"; TOKENIZER_CONFIG=$2; shift 2 ;;
    --work-dir) need "$@"; WORK_DIR=$2; shift 2 ;;
    --epochs) need "$@"; EPOCHS=$2; EPOCHS_SET=1; shift 2 ;;
    --batch-size) need "$@"; BATCH_SIZE=$2; shift 2 ;;
    --lr) need "$@"; LR=$2; LR_SET=1; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --resume) RESUME=1; shift ;;
    --eval) EVAL=1; shift ;;
    --tensorboard) TENSORBOARD=1; shift ;;
    --generate-data) GENERATE=1; shift ;;
    --data-frames) need "$@"; DATA_FRAMES=$2; shift 2 ;;
    --data-sessions) need "$@"; DATA_SESSIONS=$2; shift 2 ;;
    --input) need "$@"; INPUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "error: unknown option $1 (see --help; train.py options go after --)" >&2; exit 2 ;;
  esac
done

if [[ $TENSORBOARD == 1 ]]; then
  echo "tensorboard --logdir $WORK_DIR --port 6007"
  exec tensorboard --logdir "$WORK_DIR" --port 6007
fi
[[ $QUICK == 1 ]] && EPOCHS=2 && EPOCHS_SET=1

# data_root of the config (after its _base_ files)
DATA_ROOT=$("$PY" -c "import sys; from occworld_tokyo.config import load_config; print(load_config(sys.argv[1])['data_root'])" "$CONFIG")

if [[ $GENERATE == 1 ]]; then
  GEN=("$PY" scripts/plateau_to_occworld.py --output "$DATA_ROOT" --frames "$DATA_FRAMES" --sessions "$DATA_SESSIONS")
  [[ -n $INPUT ]] && GEN+=(--input "$INPUT")   # default: the built-in sample district
  echo "+ ${GEN[*]}"
  "${GEN[@]}"
fi

COMMON=(--work-dir "$WORK_DIR" --batch-size "$BATCH_SIZE")
if [[ $EVAL == 1 ]]; then
  echo "+ $PY train.py --config $CONFIG ${COMMON[*]} --eval-only ${EXTRA[*]:-}"
  exec "$PY" train.py --config "$CONFIG" "${COMMON[@]}" --eval-only "${EXTRA[@]}"
fi

STAGE2=("$PY" train.py --config "$CONFIG" "${COMMON[@]}" --lr "$LR" --epochs "$EPOCHS")
[[ $RESUME == 1 ]] && STAGE2+=(--resume)

TOK_DIR="$WORK_DIR/tokenizer"
TOKENIZER_NEEDED=$("$PY" -c "import sys; from occworld_tokyo.config import load_config; c=load_config(sys.argv[1]); print(int(c['model'].get('freeze_vae', False) and not c.get('tokenizer_checkpoint')))" "$CONFIG")
if [[ $TOKENIZER_NEEDED == 1 ]]; then
  STAGE1=("$PY" train.py --config "$TOKENIZER_CONFIG" --work-dir "$TOK_DIR" --batch-size "$BATCH_SIZE")
  [[ $EPOCHS_SET == 1 ]] && STAGE1+=(--epochs "$EPOCHS")
  [[ $LR_SET == 1 ]] && STAGE1+=(--lr "$LR")
  if [[ ! -f $TOK_DIR/best.pth ]]; then
    echo "stage 1: no trained tokenizer in $TOK_DIR: training it ($TOKENIZER_CONFIG)"
    [[ $RESUME == 1 ]] && STAGE1+=(--resume)
    echo "+ ${STAGE1[*]} ${EXTRA[*]:-}"
    "${STAGE1[@]}" "${EXTRA[@]}"
  elif [[ $RESUME == 1 ]]; then
    echo "stage 1: continuing the tokenizer run in $TOK_DIR if it is unfinished"
    "${STAGE1[@]}" --resume "${EXTRA[@]}"
  else
    echo "stage 1: using the trained tokenizer $TOK_DIR/best.pth"
  fi
fi
echo "stage 2: world model ($CONFIG)"
echo "+ ${STAGE2[*]} ${EXTRA[*]:-}"
exec "${STAGE2[@]}" "${EXTRA[@]}"
