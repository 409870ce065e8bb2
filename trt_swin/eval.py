"""`python -m trt_swin.eval` == `trt_swin eval`."""
from trt_swin.cli import entry

if __name__ == "__main__":
    entry("eval")
