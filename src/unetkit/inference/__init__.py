"""Running trained networks: the predictor protocol, its backends and the loader of model files.

This package's own namespace holds constants only, so that the command line can name them
without importing torch.
"""

BACKENDS = ("torch", "onnxruntime")  # what runs a .pt checkpoint (an .onnx file or a package picks its own)
