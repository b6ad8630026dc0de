# The smallest world-model run (tests): same grid and tokenizer as config/tiny_test_vqvae.py, 2 + 2 frames.
_base_ = ['./tiny_finetune.py']

point_cloud_range = [-12.8, -12.8, -2.0, 12.8, 12.8, 18.0]
voxel_size = [0.8, 0.8, 1.25]
history_frames = 2
future_frames = 2
data = dict(samples_per_gpu=2, workers_per_gpu=0)
model = dict(
    vae=dict(grid_size=(32, 32, 16), expansion=2, ch=32, ch_mult=(1, 1), num_res_blocks=1, attn_resolutions=(),
             z_channels=8, n_e=32, e_dim=8),
    transformer=dict(embed_dim=8, num_heads=2),
    pose_encoder=dict(hidden_channels=16, out_channels=8),
    pose_decoder=dict(hidden_channels=16),
)
max_epochs = 2
evaluation = dict(interval=1, max_samples=8)
log_config = dict(interval=2)
work_dir = 'checkpoints/tiny_test'
