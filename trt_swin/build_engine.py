"""`python -m trt_swin.build_engine` == `trt_swin build-engine`."""
from trt_swin.cli import entry

if __name__ == "__main__":
    entry("build-engine")
