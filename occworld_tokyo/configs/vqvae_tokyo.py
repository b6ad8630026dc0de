# Stage 1: the scene tokenizer (VAERes2D) learns this grid. OccWorld's recipe: AdamW lr 1e-3, wd 0.01, cosine
# per iteration to 1e-6 with 200 warmup iterations, grad clip 35, CE x10 + Lovasz + VQ embed loss.
# Initialised from the released weights where shapes match (load_from); --from-scratch skips that.
# Its best.pth (<work-dir>/tokenizer/best.pth by default) is what config/finetune_tokyo.py freezes.
_base_ = ['./_base_/model_tokyo.py']  # training settings not set here: their defaults, occworld_tokyo/settings.py

data_root = 'data/tokyo_gazebo/'
point_cloud_range = [-40.0, -40.0, -2.0, 40.0, 40.0, 150.0]
voxel_size = [0.4, 0.4, 1.25]
history_frames = 1      # a sample is one frame
future_frames = 0

data = dict(samples_per_gpu=1, workers_per_gpu=4)
model = dict(type='VAERes2D')   # built from the base file's model['vae']
optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.01)
lr_config = dict(policy='CosineAnnealing', min_lr=1e-6, warmup='linear', warmup_iters=200)
max_epochs = 50
evaluation = dict(interval=5)
fp16 = dict(enabled=True)
work_dir = 'checkpoints/tokenizer'
