"""OccWorld re-implemented for Tokyo: tokenizer (VAERes2D), world model (TransVQVAE), pretrained loading.

Public API (see each module's docstrings):
    build_model(cfg['model']) -> TransVQVAE | VAERes2D
    tiny_model_config(...)     -> a small config for tests / smoke runs
    load_pretrained(model, path, *, allow_pickle=False, log=print) -> LoadReport
    check_tokenizer_trained(model), mark_tokenizer_trained(model), checkpoint_metadata(model)
"""

from .build import build_model, model_config_from_release, tiny_model_config
from .checkpoint import (CheckpointError, LoadReport, TokenizerNotTrainedError, check_tokenizer_trained,
                         checkpoint_metadata, load_pretrained, mark_tokenizer_trained)
from .pose import PoseDecoder, PoseEncoder
from .transformer import PlanUAutoRegTransformer
from .vae import Decoder2D, Encoder2D, VAERes2D, VectorQuantizer
from .world_model import TransVQVAE

__all__ = ["build_model", "model_config_from_release", "tiny_model_config", "load_pretrained", "LoadReport", "CheckpointError",
           "TokenizerNotTrainedError", "check_tokenizer_trained", "mark_tokenizer_trained", "checkpoint_metadata",
           "VAERes2D", "Encoder2D", "Decoder2D", "VectorQuantizer",
           "PlanUAutoRegTransformer", "PoseEncoder", "PoseDecoder", "TransVQVAE"]
