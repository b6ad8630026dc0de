"""Training: a plain PyTorch loop for the tokenizer (stage 1) and the world model (stage 2).

- `trainer.run(cfg, RunOptions)`: the loop (docs/training.md);
- `schedule`: linear warmup + cosine to min_lr, per iteration;
- `checkpoint`: atomic save, weights-only load, newest-by-content, RNG states as tensors;
- `evaluate`: validation losses, forecast metrics vs baselines, tokenizer reconstruction;
- `distributed`, `precision`, `visual`: torchrun/DDP, fp16/bf16 choice, TensorBoard pictures;
- `cli.main`: `python train.py` flags.
"""

from occworld_tokyo.training.schedule import WarmupCosine, lr_at

__all__ = ["WarmupCosine", "lr_at"]
