#!/usr/bin/env bash
# Where the native engine's time goes (after `source tools/device_setup.sh`):  bash tools/bench_native_profile.sh OUT_DIR
# FP16 engines of random-init Swin-T with erf GELU (epilogue op) and tanh GELU (cuBLASLt epilogue), latency at batch 1
# and 128, and the CUDA kernel-time table of one batch-128 replay (torch.profiler), written to OUT_DIR.
set -u
OUT=${1:?usage: bench_native_profile.sh OUT_DIR}
timeout 200 python3 - "$OUT" <<'PY'
import json, sys
import torch
from trt_swin.cli.bench import time_fn
from trt_swin.engines.native import BuildConfig, NativeEngine, build_native_engine
from trt_swin.models import load_model

out = sys.argv[1]
torch.manual_seed(0)
model, info = load_model("swin_tiny_patch4_window7_224")
res = {}
for gelu in ("erf", "tanh"):
    plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=128, gelu=gelu), device=torch.device("cuda"))
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cuda", buckets=[1, 128])
    for B in (1, 128):
        x = torch.randn(B, 3, 224, 224, device="cuda")
        r = time_fn(eng, x, 100, 20)
        res[f"fp16-{gelu}-bs{B}"] = r
        print(f"fp16 gelu={gelu} bs{B}: median {r['median_ms']:.3f} ms p90 {r['p90_ms']:.3f} ms {r['images_per_s']:.0f} img/s", flush=True)
    if gelu == "erf":
        x = torch.randn(128, 3, 224, 224, device="cuda")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            eng(x)
            torch.cuda.synchronize()
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25)
        open(f"{out}/h5_profile_bs128.txt", "w").write(table)
        print(table)
json.dump(res, open(f"{out}/h5_gelu.json", "w"), indent=1)
PY
