# The Tokyo architecture: the values of the user guide's "Architecture" section (docs/model.md explains each,
# and where they differ from the released OccWorld). config/finetune_tokyo.py and config/vqvae_tokyo.py inherit
# this file; `model = dict(type='VAERes2D')` in a child builds the tokenizer alone from `model['vae']`.
# history_frames/future_frames and num_classes/free_index are declared once, at the top level: loading a config
# hands them to `model` (and `model.vae`); transformer.num_frames defaults to history + future.

num_classes = 14             # occworld_tokyo.labels.NUM_CLASSES, free included
free_index = 0               # occworld_tokyo.labels.FREE
history_frames = 4
future_frames = 6

model = dict(
    type='TransVQVAE',
    pose_mode='state',          # 13-d: x, y, z, quat xyzw, lin_vel, ang_vel relative to the current frame
    pose_loss_weight=0.1,
    freeze_vae=True,
    freeze_transformer=False,
    freeze_pose=False,
    vae=dict(
        grid_size=(200, 200, 121),  # X, Y, Z voxels (0.4 m x 0.4 m x 1.25 m; -40..40 m, -40..40 m, -2..150 m)
        expansion=8,            # class embedding width; height folded into 121 * 8 = 968 input channels
        ch=64,                  # guide: Encoder2D / Decoder2D base_channel=64
        ch_mult=(1, 2, 4),      # 200x200 -> 50x50 tokens
        num_res_blocks=2,
        attn_resolutions=(50,),
        dropout=0.0,
        z_channels=64,
        n_e=512,                # guide: 512 embeddings
        e_dim=64,               # guide: dim=64
        beta=0.25,              # guide: commitment=0.25
        legacy=False,           # beta weighs the commitment term (the release's legacy=True puts it on the codebook term)
        loss_weights=dict(ce=10.0, lovasz=1.0, embed=1.0),
        # not in OccWorld: every `every` training steps, move the codes chosen less than min_share x their uniform
        # share onto encoder vectors of the batch (against codebook collapse; 0 = off). docs/model.md
        dead_code_restart=dict(every=50, min_share=0.03),
        # not in OccWorld: weights of the reconstruction CE per class id (occworld_tokyo/labels.py order), e.g. to
        # keep rare movers through the codebook; None = unweighted, as released
        class_weights=None,
    ),
    transformer=dict(
        num_layers=2,           # guide: U-Net levels
        temporal_attn_layers=6, # guide: temporal attention layers per level
        pose_attn_layers=2,
        embed_dim=64,           # guide; must equal vae.e_dim (tokens are the quantized latents)
        num_heads=8,
        mlp_ratio=4,
        dropout=0.1,
    ),
    pose_encoder=dict(in_channels=13, hidden_channels=256, out_channels=64, num_layers=2),
    pose_decoder=dict(hidden_channels=256, out_channels=13, num_layers=2, num_modes=1),
    # not in OccWorld: plan conditioning (model/plan.py). enabled=True makes the scene forecast follow a planned
    # path (`forecast --plan`, evaluation method world_model_plan); `dropout` of the training windows run without
    # the plan so the same model also forecasts unconditioned. point_cloud_range is copied in from the top level.
    # copy_logit: a learned logit (starting value; None = off) for each cell's plan-warped code, so the forecast
    # starts as the token-space ego warp; warp / embed switch the two inputs (ablations, docs/training.md).
    # (hand-made steps on the decoded forecast are evaluation methods, not model keys: evaluation.voxel_copy ...)
    # gate: a learned per-voxel gate (model/gate.py; None = off) mixing the decoder's forecast with the last observed
    # frame warped along the plan and with the last frame at the same ego-grid place, trained in the loss:
    # dict(hidden_channels=16, loss_weight=1.0)
    plan=dict(enabled=False, dropout=0.25, hidden_channels=64, warp=True, embed=True, copy_logit=None,
              outside='zeros', gate=None),
)
