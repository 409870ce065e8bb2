"""Fast Swin Transformer inference on NVIDIA GPUs: fused kernels, INT8/FP8 quantization, native and TensorRT engines."""
__version__ = "0.1.0"
