"""deblurrt: real-time motion deblurring of camera streams with semantic-prior models.

The stages are subpackages of this namespace: ``deblurrt.train`` (PyTorch models and training),
``deblurrt.export`` (ONNX, precision, TensorRT), ``deblurrt.runtime`` (streams; imports without torch)
and ``deblurrt.bench`` (benchmarks).
"""

__version__ = "0.1.0"
