"""deblurrt.bench: latency and throughput benchmarks of the runtime's backends, reports and plots.

- :mod:`~deblurrt.bench.harness`: :func:`run_benchmark(refs, backends, precisions, Settings)` -> the report
  dict (``environment``, ``peak``, ``results``, ``e2e``, ``skipped``, ``notes``); cases are timed round-robin.
- :mod:`~deblurrt.bench.models`: :func:`resolve_models` (names, ``zoo``, files), :func:`export_registered`
  (random-weight ONNX FP32/FP16/INT8 in a cache), :func:`artefact_for` (ONNX / checkpoint / TensorRT engine).
- :mod:`~deblurrt.bench.runners`: :class:`BackendRunner` (ONNX Runtime, torch) and :class:`TensorRTRunner`
  (device-resident buffers, CUDA events for H2D/compute/D2H, CUDA graphs; lazy imports).
- :mod:`~deblurrt.bench.stats`: :func:`percentile`, :func:`latency_summary` (pure).
- :mod:`~deblurrt.bench.peak`: numpy GEMM and ONNX Runtime 3x3-conv peak GMAC/s of this machine.
- :mod:`~deblurrt.bench.environment`: :func:`collect_environment` (CPU, cores, load, GPU clocks, Jetson power
  mode, versions, threads, date).
- :mod:`~deblurrt.bench.report`: JSON, Markdown, latency and quality-vs-latency plots, eval-file loading.

``bench/suites`` holds the pytest-benchmark suites (``make bench``); they are not an installed package.
The CLI is ``deblurrt bench`` (:mod:`deblurrt.commands.bench`).
"""
