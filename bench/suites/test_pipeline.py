"""The ``deblurrt run`` pipeline on a short synthetic stream: capture -> pre -> infer -> post -> null sink."""

from __future__ import annotations

from deblurrt.bench.environment import usable_cores

THREADS = usable_cores()

FRAMES = 24
# unpaced (live=0): every frame as fast as it renders, so the suite times the pipeline, not a 30 fps camera
URI = f"synthetic://?size=320x180&frames={FRAMES}&severity=moderate&seed=0&live=0"


def test_pipeline_synthetic(benchmark, onnx_models):
    """One whole short stream per round (threads start and stop each time, as in a real run)."""
    from deblurrt.runtime.backends import open_backend
    from deblurrt.runtime.pipeline import Pipeline, PipelineOptions
    from deblurrt.runtime.sinks import open_sink
    from deblurrt.runtime.sources import open_source

    stats = {}
    with open_backend(onnx_models("unet_tiny"), "ort", providers="cpu", threads=THREADS) as backend:
        def run_stream():
            source = open_source(URI)
            try:
                pipeline = Pipeline(source, backend, open_sink("none"),
                                    PipelineOptions(status=None, handle_signals=False))
                stats.update(pipeline.run())
            finally:
                source.close()

        benchmark.extra_info.update({"model": "unet_tiny", "source": URI, "frames": FRAMES})
        benchmark.pedantic(run_stream, rounds=3, iterations=1, warmup_rounds=1)
        benchmark.extra_info.update({"delivered_fps": stats["fps"], "dropped": stats["dropped"],
                                     "infer_p50_ms": stats["latency_ms"]["infer"]["p50"]})
    assert stats["frames_out"] == FRAMES


