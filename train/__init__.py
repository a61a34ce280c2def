"""deblurrt.train: PyTorch models (registry, backbones, semantic prior, teacher) and training."""
