# The world-model counterpart of config/tiny_vqvae.py (same grid and tokenizer); stage 2 on CPU in minutes.
_base_ = ['./_base_/model_tokyo.py', './_base_/runtime_tokyo.py']

data_root = 'data/tokyo_gazebo/'
point_cloud_range = [-20.0, -20.0, -2.0, 20.0, 20.0, 38.0]
voxel_size = [0.8, 0.8, 1.25]
history_frames = 4
future_frames = 6
grid_size = (50, 50, 32)

data = dict(samples_per_gpu=2, workers_per_gpu=1)
model = dict(
    type='TransVQVAE',
    history_frames=4,
    future_frames=6,
    freeze_vae=True,
    vae=dict(grid_size=(50, 50, 32), expansion=4, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(),
             z_channels=16, n_e=128, e_dim=16),
    transformer=dict(num_layers=2, temporal_attn_layers=1, pose_attn_layers=1, embed_dim=16, num_heads=2,
                     mlp_ratio=2, dropout=0.1, num_frames=10),
    pose_encoder=dict(in_channels=13, hidden_channels=32, out_channels=16, num_layers=2),
    pose_decoder=dict(hidden_channels=32, out_channels=13, num_layers=2, num_modes=1),
)
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-5, warmup='linear', warmup_iters=20)
max_epochs = 4
evaluation = dict(interval=2, max_samples=32)
log_config = dict(interval=5)
fp16 = dict(enabled=False)
load_from = None
work_dir = 'checkpoints/tiny'
