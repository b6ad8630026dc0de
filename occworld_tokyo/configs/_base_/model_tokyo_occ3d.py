# The Tokyo model on the Occ3D slab (`generate --grid occ3d`: 200 x 200 x 16 at 0.4 m, -1.0..5.4 m above the
# ground): the widths, codebook and frame count of the released OccWorld (config/occworld_nuscenes.py), so that
# the released weights fit everywhere except where the Tokyo data differs: the class embedding (14 Tokyo labels,
# free = 0, instead of Occ3D's 18) and the 13-d 'state' pose input/output layers (instead of dx, dy + command).
# config/finetune_tokyo_occ3d.py and config/vqvae_tokyo_occ3d.py inherit it; tests/test_occ3d_config.py counts
# what loads against ../shared/reference.
_base_ = ['./model_tokyo.py']

history_frames = 6           # 3 s of history and 3 s of forecast at 2 Hz, as OccWorld's evaluation
future_frames = 6

model = dict(
    vae=dict(grid_size=(200, 200, 16), z_channels=128, e_dim=128, beta=1.0),
    transformer=dict(embed_dim=128, num_frames=16),   # the release's 16 temporal embeddings
    pose_encoder=dict(hidden_channels=128, out_channels=128),
    pose_decoder=dict(hidden_channels=128),
)
