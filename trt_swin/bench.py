"""`python -m trt_swin.bench` == `trt_swin bench`."""
from trt_swin.cli import entry

if __name__ == "__main__":
    entry("bench")
