# A small tokenizer config for CPU smoke runs, tests and the main job: the central 25.6 m x 25.6 m of the grid at
# the guide's 0.4 m (64 x 64) and the first 32 levels (-2..38 m above ground), a 2-level U-Net, no pretrained
# weights. At 0.4 m a car is about 11 x 5 voxels and survives the codebook (0.8 m over 40 m erased most movers in
# the forecast); the rare moving classes weigh more in the reconstruction loss (docs/training.md, "What makes the
# forecast good").
_base_ = ['./_base_/model_tokyo.py']  # training settings not set here: their defaults, occworld_tokyo/settings.py

data_root = 'data/tokyo_gazebo/'
point_cloud_range = [-12.8, -12.8, -2.0, 12.8, 12.8, 38.0]
voxel_size = [0.4, 0.4, 1.25]
history_frames = 1
future_frames = 0

data = dict(samples_per_gpu=2, workers_per_gpu=1, val_window_stride=2)  # stride: validate every session
model = dict(
    type='VAERes2D',
    vae=dict(grid_size=(64, 64, 32), expansion=4, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
             z_channels=16, n_e=128, e_dim=16,
             # free building road bridge railway vegetation terrain water furniture other sidewalk vehicle pedestrian drone
             class_weights=(1, 1, 1, 1, 2, 2, 1, 1, 2, 1, 1, 3, 5, 3)),
)
optimizer = dict(type='AdamW', lr=2e-3, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-5, warmup='linear', warmup_iters=20)
max_epochs = 4
evaluation = dict(interval=2, max_samples=64)
log_config = dict(interval=5)
fp16 = dict(enabled=False)
load_from = None
work_dir = 'checkpoints/tiny/tokenizer'
