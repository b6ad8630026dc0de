# Training-loop settings shared by config/finetune_tokyo.py and config/vqvae_tokyo.py (docs/training.md lists
# every key). Keys not listed in occworld_tokyo/config.py KNOWN_KEYS are refused by name.

data = dict(
    samples_per_gpu=1,
    workers_per_gpu=4,
    val_fraction=0.2,       # share of sessions held out for validation (split BY SESSION, seeded)
    split_seed=0,
    window_stride=1,        # train windows start every frame
    val_window_stride=1,
    time_split_gap=None,    # single-session data only: frames between train and val (default: one window)
    prefetch_factor=2,
)

grad_clip = dict(max_norm=35.0, norm_type=2)   # OccWorld's value
cpu_precision = 'fp32'                          # 'bf16' for autocast on CPU; fp16 applies to CUDA only
fp16 = dict(enabled=False, init_scale=65536.0, max_consecutive_skips=50)
# torch.compile the training step (same computation; the first steps compile, minutes at the full size).
# backend 'inductor' generates fused kernels (needs a C++ compiler on CPU, Triton on CUDA); 'eager' only traces.
compile = dict(enabled=False, backend='inductor', mode=None)

evaluation = dict(
    interval=1,
    max_samples=None,       # cap the validation windows per evaluation (None = all)
    vpq_iou_threshold=0.5,  # FIERY; Cam4DOcc uses 0.2 in 3D
    visibility=None,        # None = every voxel counts (OccWorld); 'camera' / 'lidar' = Occ3D-style masks
)
checkpoint_config = dict(interval_iters=0)     # > 0: also write latest.pth every N iterations (resume point)
log_config = dict(interval=10)                 # log / TensorBoard scalars every N iterations

seed = 42
deterministic = True
work_dir = 'checkpoints'
load_from = 'pretrained/occworld/latest.pth'   # the released OccWorld weights (guide, Quick Start step 1)
tokenizer_checkpoint = None                    # None: <work-dir>/tokenizer/best.pth (written by stage 1)
