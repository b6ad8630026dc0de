# The released OccWorld configuration (Occ3D-nuScenes, 200x200x16, 18 classes with 17 = free, 2 Hz).
# Under it TransVQVAE's state_dict has exactly the names and shapes of the released world-model checkpoint
# (768 tensors, 72,385,578 parameters) and the tokenizer those of the VQVAE checkpoint (222, 14,168,272);
# tests/test_model_parity.py checks both against ../shared/reference/*.json.
# history/future: 6 + 6 frames (3 s of history and 3 s forecast at 2 Hz); the checkpoint fixes only the 16
# temporal embeddings, not this split.

num_classes = 18
free_index = 17
history_frames = 6
future_frames = 6

model = dict(
    type='TransVQVAE',
    pose_mode='nuscenes',       # 5-d: dx, dy + 3-way command one-hot; decoder 3 modes x 2
    pose_loss_weight=0.1,
    freeze_vae=True,
    freeze_transformer=False,
    freeze_pose=False,
    vae=dict(
        grid_size=(200, 200, 16),
        expansion=8,
        ch=64,
        ch_mult=(1, 2, 4),
        num_res_blocks=2,
        attn_resolutions=(50,),
        dropout=0.0,
        z_channels=128,
        n_e=512,
        e_dim=128,
        beta=1.0,
        legacy=True,            # the release's VectorQuantizer default (beta on the codebook term; equal at beta 1)
        loss_weights=dict(ce=10.0, lovasz=1.0, embed=1.0),
    ),
    transformer=dict(
        num_layers=2,
        temporal_attn_layers=6,
        pose_attn_layers=2,
        embed_dim=128,
        num_heads=8,
        mlp_ratio=4,
        dropout=0.0,            # released: nn.MultiheadAttention and FFN dropouts are 0
        num_frames=16,          # temporal embeddings = the release's num_frames (15) + offset 1
    ),
    pose_encoder=dict(in_channels=5, hidden_channels=128, out_channels=128, num_layers=2),
    pose_decoder=dict(hidden_channels=128, out_channels=2, num_layers=2, num_modes=3),
)
