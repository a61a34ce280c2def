"""deblurrt.runtime: deblur camera streams. Imports with numpy and OpenCV only; each backend's library loads lazily.

- :mod:`~deblurrt.runtime.backends`: ``open_backend(path, backend=None, **options)`` -> a :class:`Backend`
  (ONNX Runtime, TensorRT, PyTorch) with ``info`` (:class:`ModelInfo`), ``input_spec``, ``infer(batch)``.
- :mod:`~deblurrt.runtime.prepost`: BGR uint8 frames <-> padded NCHW model tensors; tiled inference.
- :mod:`~deblurrt.runtime.sources` / :mod:`~deblurrt.runtime.sinks`: ``open_source(uri)``, ``open_sink(uri)``.
- :mod:`~deblurrt.runtime.synthetic`: the ``synthetic://`` shaky virtual camera (blurry frames + sharp truth).
- :mod:`~deblurrt.runtime.pipeline`: :class:`Pipeline` (threaded capture -> pre -> infer -> post -> write).
"""
