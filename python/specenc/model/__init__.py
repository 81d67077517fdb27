"""SpectrumEncoder model library (pure PyTorch; imports no GNU Radio).

load_model / SpectrumModel.predict are the public contract (README, "The model, its data and its training");
ModelConfig, SpectrumEncoder and spectrum_loss are for training and experiments.
"""

from .attention import attn, available_backends, get_backend
from .config import REFERENCE, ModelConfig
from .encoder import SpectrumEncoder
from .ensemble import SpeculativeEnsemble
from .loss import batch_to_tensors, spectrum_loss
from .spectrum_model import DEFAULT_WEIGHTS, Prediction, SpectrumModel, load_model

__all__ = ["DEFAULT_WEIGHTS", "REFERENCE", "ModelConfig", "Prediction", "SpectrumEncoder", "SpectrumModel", "SpeculativeEnsemble",
           "attn", "available_backends", "batch_to_tensors", "get_backend", "load_model", "spectrum_loss"]
