# Stage 2: the world model (transformer + pose modules) with the tokenizer frozen. The body below is the user
# guide's "Configuration Reference" exactly; architecture and loop defaults come from the _base_ files.
_base_ = ['./_base_/model_tokyo.py']  # training settings not set here: their defaults, occworld_tokyo/settings.py

# Dataset
data_root = 'data/tokyo_gazebo/'
point_cloud_range = [-40.0, -40.0, -2.0, 40.0, 40.0, 150.0]
voxel_size = [0.4, 0.4, 1.25]
history_frames = 4      # Past frames for context
future_frames = 6       # Future frames to predict

# Data loading
data = dict(
    samples_per_gpu=1,  # Batch size (increase for faster training)
    workers_per_gpu=4,  # Data loading workers
)

# Model
model = dict(
    type='TransVQVAE',
    freeze_vae=True,           # Keep VQVAE frozen
    freeze_transformer=False,  # Fine-tune transformer
    freeze_pose=False,         # Fine-tune pose modules
)

# Training
optimizer = dict(
    type='AdamW',
    lr=1e-4,            # Learning rate (lower for fine-tuning)
    weight_decay=0.01,
)

lr_config = dict(
    policy='CosineAnnealing',
    min_lr=1e-6,
    warmup='linear',
    warmup_iters=100,
)

max_epochs = 50
evaluation = dict(interval=5)  # Validate every 5 epochs

# Mixed precision
fp16 = dict(enabled=True)
