"""deblurrt.bench: latency and throughput benchmarks of the runtime's backends."""
