# The world-model counterpart of config/tiny_vqvae.py: the same grid and tokenizer (inherited, so the tokenizer
# trained in stage 1 always fits), plus a small transformer; stage 2 on CPU in minutes.
_base_ = ['./tiny_vqvae.py']

history_frames = 2      # measured: as good as 4 on mIoU, better on IoU, cheaper (docs/training.md ablations)
future_frames = 6

model = dict(
    type='TransVQVAE',
    freeze_vae=True,
    transformer=dict(num_layers=2, temporal_attn_layers=1, pose_attn_layers=1, embed_dim=16, num_heads=2,
                     mlp_ratio=2, dropout=0.1),
    pose_encoder=dict(in_channels=13, hidden_channels=32, out_channels=16, num_layers=2),
    pose_decoder=dict(hidden_channels=32, out_channels=13, num_layers=2, num_modes=1),
    # forecasts along a planned path, starting from the plan-warped codes; 25 % of the training windows without a
    # plan, so the same model also forecasts unconditioned (docs/model.md, "Plan conditioning").
    plan=dict(enabled=True, dropout=0.25, copy_logit=10.0),
)
optimizer = dict(lr=1e-3)
# Hand-made methods scored beside the model (docs/metrics.md, "Hand-made methods"), never the model's row:
# world_model_plan+voxel_copy = the plan-mode forecast with the ego-warped last frame wherever it reaches (1000: beyond
# any decoder logit), leaning (fill_copy) toward the last frame's class at the same ego-grid place elsewhere, no
# class the history does not show unless the decoder is very sure (unseen_class_logit); world_model+unseen_prior =
# the unconditioned forecast with that last prior only.
evaluation = dict(max_samples=32, voxel_copy=1000.0, fill_copy=2.0, unseen_class_logit=8.0)
work_dir = 'checkpoints/tiny'
