import torch, json
from trt_swin.plugins.bench_utils import time_ms
f = torch.randn(128, 768, device="cuda"); W = torch.randn(1000, 768, device="cuda"); b = torch.randn(1000, device="cuda")
r = {"linear": time_ms(lambda: torch.nn.functional.linear(f, W, b)),
     "transposed": time_ms(lambda: torch.addmm(b[:, None], W, f.t()).t()),
     "linear_bs1": time_ms(lambda: torch.nn.functional.linear(f[:1], W, b))}
print(json.dumps(r))
