"""deblurrt.export: ONNX export, precision (FP16, INT8 Q/DQ), TensorRT engines, Triton repositories."""
