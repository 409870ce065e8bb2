"""`python -m trt_swin.quantize` == `trt_swin quantize`."""
from trt_swin.cli import entry

if __name__ == "__main__":
    entry("quantize")
