"""Running trained networks: the predictor protocol, its backends and the loader of model files."""
