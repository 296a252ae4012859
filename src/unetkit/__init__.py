"""unetkit: U-Net segmentation of biomedical images.

The public API, in the order a user meets it:

>>> import unetkit
>>> model = unetkit.UNet()                      # the reference Keras U-Net
>>> unetkit.count_parameters(model)
7759521
"""

from .checkpoint import load_checkpoint, load_model, make_checkpoint, save_checkpoint
from .errors import CheckpointError, ConfigError, InputError, OutputExistsError, TrainingDiverged, UnetkitError
from .evaluation import evaluate_checkpoint
from .inference.loading import load_predictor
from .instances import InstanceTask, instances_from_probabilities, match_instances
from .inference.predictor import Predictor, TorchPredictor
from .model import (
    UNet,
    UNetConfig,
    count_parameters,
    labels_from_logits,
    labels_from_probabilities,
    preset,
    probabilities_from_logits,
)
from .predict import PredictOptions, predict_files
from .scoring import evaluate_samples
from .sizes import SizeRule
from .tasks import SemanticTask
from .tiling import TileOptions, predict_tiled
from .training.config import TrainConfig
from .training.loop import train

__all__ = [
    "CheckpointError", "ConfigError", "InputError", "InstanceTask", "OutputExistsError", "PredictOptions",
    "Predictor", "instances_from_probabilities", "match_instances",
    "SemanticTask", "SizeRule", "TileOptions", "TorchPredictor", "TrainConfig", "TrainingDiverged", "UNet",
    "UNetConfig", "UnetkitError", "count_parameters", "evaluate_checkpoint", "evaluate_samples",
    "labels_from_logits", "labels_from_probabilities", "load_checkpoint", "load_model", "load_predictor",
    "make_checkpoint", "predict_files", "predict_tiled", "preset", "probabilities_from_logits",
    "save_checkpoint", "train",
]
__version__ = "0.1.0"
