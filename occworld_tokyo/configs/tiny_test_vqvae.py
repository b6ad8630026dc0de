# The smallest tokenizer run (tests): 32 x 32 x 16 voxels (25.6 m x 25.6 m x 20 m), a few thousand weights.
_base_ = ['./tiny_vqvae.py']

point_cloud_range = [-12.8, -12.8, -2.0, 12.8, 12.8, 18.0]
voxel_size = [0.8, 0.8, 1.25]
data = dict(samples_per_gpu=2, workers_per_gpu=0)
model = dict(vae=dict(grid_size=(32, 32, 16), expansion=2, ch=32, ch_mult=(1, 1), num_res_blocks=1,
                      attn_resolutions=(), z_channels=8, n_e=32, e_dim=8,
                      dead_code_restart=dict(every=3, min_share=0.03)))
max_epochs = 2
evaluation = dict(interval=1, max_samples=8)
log_config = dict(interval=2)
work_dir = 'checkpoints/tiny_test/tokenizer'
