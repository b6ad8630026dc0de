"""Training: a plain PyTorch loop for the tokenizer (stage 1) and the world model (stage 2), in rooms:

- `trainer.run(cfg, RunOptions)`: a run from start to end (claims the work dir, checks the data, wires the rest);
- `stages`: what differs per stage, one object each (`stage_for(model)` picks it from the model's class);
- `loop`: epochs of optimizer steps; `policy`: which checkpoint is written when, and the repair of best.pth /
  metrics after an interruption; `resume`: back to where a run stopped; `logs`: log lines, TensorBoard, metrics;
- `checkpoint`: atomic save, newest-by-content, RNG states as tensors (reading: `model.checkpoint.read_checkpoint`);
- `schedule`: linear warmup + cosine to min_lr, per iteration; `evaluate`: validation losses, forecast metrics
  vs baselines, tokenizer reconstruction; `distributed`, `precision`, `codebook`: torchrun/DDP, fp16/bf16,
  dead-code restarts;
- `cli.main`: `python train.py` flags.
"""

from occworld_tokyo.training.schedule import WarmupCosine, lr_at

__all__ = ["WarmupCosine", "lr_at"]
