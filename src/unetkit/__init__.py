"""unetkit: U-Net segmentation of biomedical images.

The public API, in the order a user meets it:

>>> import unetkit
>>> model = unetkit.UNet()                      # the reference Keras U-Net
>>> unetkit.count_parameters(model)
7759521
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and editors; at run time they load when first used
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

_SOURCES = {  # public name -> the module that defines it
    "CheckpointError": ".errors",
    "ConfigError": ".errors",
    "InputError": ".errors",
    "InstanceTask": ".instances",
    "OutputExistsError": ".errors",
    "PredictOptions": ".predict",
    "Predictor": ".inference.predictor",
    "SemanticTask": ".tasks",
    "SizeRule": ".sizes",
    "TileOptions": ".tiling",
    "TorchPredictor": ".inference.predictor",
    "TrainConfig": ".training.config",
    "TrainingDiverged": ".errors",
    "UNet": ".model",
    "UNetConfig": ".model",
    "UnetkitError": ".errors",
    "count_parameters": ".model",
    "evaluate_checkpoint": ".evaluation",
    "evaluate_samples": ".scoring",
    "instances_from_probabilities": ".instances",
    "labels_from_logits": ".model",
    "labels_from_probabilities": ".model",
    "load_checkpoint": ".checkpoint",
    "load_model": ".checkpoint",
    "load_predictor": ".inference.loading",
    "make_checkpoint": ".checkpoint",
    "match_instances": ".instances",
    "predict_files": ".predict",
    "predict_tiled": ".tiling",
    "preset": ".model",
    "probabilities_from_logits": ".model",
    "save_checkpoint": ".checkpoint",
    "train": ".training.loop",
}

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


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use: ``import unetkit`` stays light (the command line
    starts, and installs its signal handlers, before torch is imported)."""
    source = _SOURCES.get(name)
    if source is None:  # a submodule (unetkit.model, say), as when this file imported them all
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'unetkit' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
