"""`python -m trt_swin.train` == `trt_swin train`."""
from trt_swin.cli import entry

if __name__ == "__main__":
    entry("train")
