"""OccWorld re-implemented for Tokyo: tokenizer (VAERes2D), world model (TransVQVAE), pretrained loading.

Public API (see each module's docstrings):
    build_model(cfg['model']) -> TransVQVAE | VAERes2D
    tiny_model_config(...)     -> a small config for tests / smoke runs
    load_pretrained(model, path, *, allow_pickle=False, log=print) -> LoadReport
    check_tokenizer_trained(model), mark_tokenizer_trained(model), checkpoint_metadata(model)
"""

from .build import build_model, tiny_model_config
from .pose import PoseDecoder, PoseEncoder
from .transformer import PlanUAutoRegTransformer
from .vae import Decoder2D, Encoder2D, VAERes2D, VectorQuantizer
from .world_model import TransVQVAE

__all__ = ["build_model", "tiny_model_config", "VAERes2D", "Encoder2D", "Decoder2D", "VectorQuantizer",
           "PlanUAutoRegTransformer", "PoseEncoder", "PoseDecoder", "TransVQVAE"]
