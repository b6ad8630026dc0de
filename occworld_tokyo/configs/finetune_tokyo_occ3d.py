# Stage 2 on the Occ3D slab (`generate --grid occ3d`, rover sessions): the world model of
# config/_base_/model_tokyo_occ3d.py with the tokenizer of config/vqvae_tokyo_occ3d.py frozen
# (<work_dir>/tokenizer/best.pth), transformer and pose modules initialised from the released OccWorld weights
# where shapes match (all of the transformer; the pose layers except the 13-d input and output ones).
# Train:    python train.py --config config/vqvae_tokyo_occ3d.py --work-dir checkpoints/occ3d/tokenizer
#           python train.py --config config/finetune_tokyo_occ3d.py --work-dir checkpoints/occ3d
# Evaluate: python train.py --config config/finetune_tokyo_occ3d.py --work-dir checkpoints/occ3d --eval-only
_base_ = ['./_base_/model_tokyo_occ3d.py']  # training settings not set here: their defaults, occworld_tokyo/settings.py

data_root = 'data/tokyo_occ3d/'
point_cloud_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
voxel_size = [0.4, 0.4, 0.4]

data = dict(samples_per_gpu=1, workers_per_gpu=4, agent_types=['rover'])
model = dict(type='TransVQVAE', freeze_vae=True, freeze_transformer=False, freeze_pose=False)
optimizer = dict(type='AdamW', lr=1e-4, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-6, warmup='linear', warmup_iters=100)
max_epochs = 50
evaluation = dict(interval=5, visibility='camera')   # Occ3D scores mask_camera: its numbers are the *_visible keys
fp16 = dict(enabled=True)
work_dir = 'checkpoints/occ3d'
