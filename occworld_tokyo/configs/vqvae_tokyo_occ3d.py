# Stage 1 on the Occ3D slab: the tokenizer (VAERes2D) of config/_base_/model_tokyo_occ3d.py, initialised from the
# released OccWorld VQ-VAE where shapes match (everything but the class embedding). Rover sessions only: the slab
# (-1.0..5.4 m above the ground) is what a street-level sensor sees; a drone flies far above it.
# Data: python scripts/plateau_to_occworld.py --agent rover --grid occ3d --output data/tokyo_occ3d ...
_base_ = ['./_base_/model_tokyo_occ3d.py']  # training settings not set here: their defaults, occworld_tokyo/settings.py

data_root = 'data/tokyo_occ3d/'
point_cloud_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
voxel_size = [0.4, 0.4, 0.4]
history_frames = 1      # a sample is one frame
future_frames = 0

data = dict(samples_per_gpu=1, workers_per_gpu=4, agent_types=['rover'])
model = dict(type='VAERes2D')
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-6, warmup='linear', warmup_iters=200)
max_epochs = 50
evaluation = dict(interval=5, visibility='camera')   # Occ3D scores mask_camera: its numbers are the *_visible keys
fp16 = dict(enabled=True)
work_dir = 'checkpoints/occ3d/tokenizer'
