"""Native engine on the GPU: logits against PyTorch per precision and batch size (1, a non-power-of-two, 8), CUDA
graph replay after batch-size changes, and dynamic batch up to the maximum.

Bounds (FP16: measured on CPU 7e-4 with the reference ops; the CUDA kernels add float16 rounding differences):
FP16 engine vs FP32 timm rel-L2 < 1e-2 and identical top-1 on these images; INT8 / FP8 engines vs the FP32 model
rel-L2 < 0.1 (quantization noise measured at 1.5e-2 - 2e-2 on CPU) and top-1 agreement >= 80 %.
"""
from __future__ import annotations

import pytest
import torch

from trt_swin.engines.native import BuildConfig, NativeEngine, build_native_engine, calibrate_max

from engine_test_utils import rel_l2

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def engines(mini):
    model, info, _, calib, _ = mini
    out = {}
    for prec in ("fp16", "int8", "fp8"):
        if prec == "fp8" and torch.cuda.get_device_capability() < (8, 9):
            continue
        scales = calibrate_max(model, calib, prec) if prec != "fp16" else None
        plan, tensors, build = build_native_engine(model, BuildConfig(prec, max_batch=16, recipe=prec if scales else None),
                                                   scales, model_info=info.to_dict(), device=torch.device("cuda"))
        out[prec] = (plan, tensors, build)
    return out


def _load(engines, prec, **kw) -> NativeEngine:
    if prec not in engines:
        pytest.skip(f"{prec} needs compute capability 8.9+")
    plan, tensors, build = engines[prec]
    return NativeEngine({"config": plan, "build": build}, tensors, "cuda", **kw)


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("prec", ["fp16", "int8", "fp8"])
def test_engine_vs_pytorch(mini, engines, prec, batch):
    model, info, images, _, ref = mini
    eng = _load(engines, prec)
    out = eng(images[:batch].cuda())
    assert out.shape == (batch, 10) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    if prec == "fp16":
        assert rel_l2(out, ref[:batch]) < 1e-2
        assert bool((out.cpu().argmax(1) == ref[:batch].argmax(1)).all())
    else:
        assert rel_l2(out, ref[:batch]) < 0.1


@pytest.mark.parametrize("prec", ["int8", "fp8"])
def test_quantized_top1_agreement(mini, engines, prec):
    _, _, images, _, ref = mini
    out = _load(engines, prec)(images.cuda())
    assert float((out.cpu().argmax(1) == ref.argmax(1)).float().mean()) >= 0.8


@pytest.mark.parametrize("prec", ["fp16", "int8"])
def test_graph_matches_eager_across_batch_changes(mini, engines, prec):
    _, _, images, _, _ = mini
    eager = _load(engines, prec, cuda_graphs=False)
    graphed = _load(engines, prec, buckets=[4, 16])
    x = images.cuda()
    want = eager(x)
    for b in (16, 3, 1, 16, 4, 7):  # every change of batch replays another (or the same) bucket
        got = graphed(x[:b])
        assert torch.allclose(got, want[:b], atol=2e-3, rtol=2e-3), f"batch {b}"
    assert sorted(graphed._graphs) == [4, 16]


def test_random_swin_t_fp16(cuda_device):
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, info = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=4), device=cuda_device)
    out = NativeEngine({"config": plan, "build": build}, tensors, "cuda")(x.cuda())
    assert rel_l2(out, ref) < 2e-2


def test_batch_above_max_on_gpu(engines):
    eng = _load(engines, "fp16")
    with pytest.raises(ValueError, match="exceeds the engine's max batch 16"):
        eng(torch.zeros(17, 1, 28, 28, device="cuda"))


@pytest.mark.parametrize("option,kernel", [("mlp_kernel", "cuda"), ("mlp_kernel", "triton"),
                                           ("attention_kernel", "cuda"), ("attention_kernel", "triton")])
def test_random_swin_t_fp16_fused_kernels(cuda_device, option, kernel):
    """Each fused MLP / attention kernel, in every block it can take (stages 1-2 of Swin-T: MLP C <= 256, attention
    C <= 192, shifted and not; with attention_kernel triton the Triton window attention in the other 8 blocks), gives
    timm's logits at a batch that is not a captured bucket's size."""
    if kernel == "triton":
        pytest.importorskip("triton")
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, info = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    widest = {"fused_mlp_max_c": 256} if option == "mlp_kernel" else {"fused_attention_max_c": 192}
    cfg = BuildConfig("fp16", max_batch=4, **widest, **{option: kernel})
    plan, tensors, build = build_native_engine(model, cfg, device=cuda_device)
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cuda")
    assert getattr(eng, option) == kernel
    if option == "attention_kernel":
        blocks = [blk for st in plan["stages"] for blk in st["blocks"]]
        assert sum(blk["rel_bias"] + ":64" in eng.t for blk in blocks) == 4
        assert sum(blk["rel_bias"] + ":w64" in eng.t for blk in blocks) == (8 if kernel == "triton" else 0)
    assert rel_l2(eng(x.cuda()), ref) < 2e-2


def test_random_swin_t_fp16_auto_kernels_large_and_small_grids(cuda_device):
    """Default build (kernels auto): where the Triton kernels run (compute capability 9.x), stage 2 of Swin-T fuses both
    halves on a large grid (batch 64: 1024 windows, AUTO_WIDE_FUSION's bound is 512) and not at batch 3, stage 3's
    window attention takes its large-grid form at batch 128 (512 windows: 4 heads per program, heads-first), and the
    tail is the Triton classifier head (its tf32x3 head GEMM from 32 images); every batch size gives timm's logits."""
    pytest.importorskip("triton")
    from trt_swin.engines.native.runtime import AUTO_WIDE_FUSION
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, info = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    x = torch.randn(128, 3, 224, 224)
    with torch.no_grad():
        ref = torch.cat([model(x[i:i + 16]) for i in range(0, 128, 16)])
    plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=128), device=cuda_device)
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cuda")
    if eng.attention_kernel != "triton" or eng.mlp_kernel != "triton":
        pytest.skip(f"the Triton kernels run on compute capability 9.x under auto ({torch.cuda.get_device_name()})")
    assert eng.wide_fusion == AUTO_WIDE_FUSION["triton"] and eng.triton_head
    stage2 = plan["stages"][1]["blocks"]
    assert all(blk["rel_bias"] + ":64" in eng.t and blk["rel_bias"] + ":w64" in eng.t for blk in stage2)
    for b in (128, 64, 3):
        out = eng(x[:b].cuda())
        assert rel_l2(out, ref[:b]) < 2e-2, f"batch {b}"
        assert bool((out.cpu().argmax(1) == ref[:b].argmax(1)).float().mean() >= 0.95), f"batch {b}"


def _random_swin_t(precision: str, device, buckets: list[int], recipe: str | None = None, **config):
    """(model, plan, engine) of a random-init Swin-T with 10 classes: the engine with CUDA graphs for `buckets` (max
    batch their largest); INT8 / FP8 scales max-calibrated on 8 random images under `recipe` (default: the
    precision's); `config`: more BuildConfig options."""
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, _ = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    g = torch.Generator().manual_seed(0)
    quantized = precision != "fp16"
    recipe = recipe or (precision if quantized else None)
    scales = calibrate_max(model, torch.randn(8, 3, 224, 224, generator=g), recipe) if quantized else None
    plan, tensors, build = build_native_engine(
        model, BuildConfig(precision, max_batch=max(buckets), recipe=recipe, **config), scales, device=device)
    return model, plan, NativeEngine({"config": plan, "build": build}, tensors, "cuda", buckets=buckets)


def _recapture(eng: NativeEngine) -> None:
    """Drop the engine's CUDA graphs, so that the next call captures them with its changed attributes."""
    eng._graphs.clear()
    eng._pool = None


def test_random_swin_t_patch_merge_in_one_kernel(cuda_device, monkeypatch):
    """On compute capability 9.0, stage 1's patch merging runs as patch_merge_gemm from HOPPER_MERGE_MIN_TOKENS merged
    tokens (batch 32: 25088), not at batch 3 (2352); the logits match the same engine without it and timm's."""
    import trt_swin.engines.native.runtime as rt

    model, _, eng = _random_swin_t("fp16", cuda_device, [3, 32])
    if not eng.hopper:
        pytest.skip(f"patch_merge_gemm runs on compute capability 9.0 ({torch.cuda.get_device_name()})")
    assert list(eng.merge_folds) == ["layers.1.downsample.reduction"]  # stage 2's input: C 192
    calls = []
    real = rt.patch_merge_gemm
    monkeypatch.setattr(rt, "patch_merge_gemm", lambda *a: calls.append(tuple(a[0].shape)) or real(*a))
    x = torch.randn(32, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    one, small = eng(x.cuda()), eng(x[:3].cuda())
    assert calls and set(calls) == {(32, 56, 56, 96)}, calls  # batch 3 takes the two kernels
    folds, eng.merge_folds = eng.merge_folds, {}
    _recapture(eng)
    two, small_two = eng(x.cuda()), eng(x[:3].cuda())
    assert torch.equal(small, small_two)
    assert rel_l2(one, two) < 5e-3
    assert rel_l2(one, ref) < 2e-2 and bool((one.cpu().argmax(1) == ref.argmax(1)).float().mean() >= 0.95)
    eng.merge_folds = folds


def test_random_swin_t_cuda_stem_matches_the_other_stems(cuda_device):
    """An engine that runs no Triton kernels takes Swin-T's stem as the CUDA kernel (plugins/patch_embed: 3 channels,
    patch 4, C 96) on the caller's images, fp16 or fp32, ahead of the graph; the logits match the Triton stem's, the
    unfused stem's (a graph that starts at the images) and timm's."""
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, _ = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    plan, tensors, build = build_native_engine(
        model, BuildConfig("fp16", max_batch=3, mlp_kernel="cuda", attention_kernel="cuda"), device=cuda_device)
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cuda", buckets=[3])
    assert eng.stem_kernel == "cuda"
    x = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    cuda16, cuda32 = eng(x.half().cuda()), eng(x.cuda())
    outs = {}
    for other in ("triton", None):
        eng.stem_kernel = other
        _recapture(eng)
        outs[other] = eng(x.cuda())
    eng.stem_kernel = "cuda"
    _recapture(eng)
    assert rel_l2(cuda32, outs["triton"]) < 2e-3 and rel_l2(cuda32, outs[None]) < 2e-3
    assert rel_l2(cuda16, cuda32) < 2e-3  # the fp16 images are the fp32 ones rounded
    assert rel_l2(cuda32, ref) < 2e-2


def test_random_swin_t_fp8_large_grid_fuses_stage2(cuda_device):
    """Where the Triton kernels run (compute capability 9.x), an FP8 engine (tanh GELU) fuses both halves of Swin-T's
    stage 2 on a large grid (batch 32: 512 windows) on the fused kernels' FP8 forms. Its logits are as close to timm's
    FP32 ones as the same engine's with the rule off (the unfused FP8 GEMMs), and batch 3 (48 windows) runs the same
    path with the rule on or off."""
    pytest.importorskip("triton")
    from trt_swin.engines.native.runtime import AUTO_WIDE_FUSION

    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs compute capability 8.9+")
    model, plan, eng = _random_swin_t("fp8", cuda_device, [3, 32])
    if eng.attention_kernel != "triton" or eng.mlp_kernel != "triton":
        pytest.skip(f"the Triton kernels run on compute capability 9.x under auto ({torch.cuda.get_device_name()})")
    assert eng.wide_fusion == AUTO_WIDE_FUSION["triton"] and 32 * 16 >= eng.wide_fusion[1] > 3 * 16
    stage2 = plan["stages"][1]["blocks"]
    assert all(blk["rel_bias"] + ":64" in eng.t and eng._fp8_mlp_fusable(blk, True)
               and not eng._fp8_mlp_fusable(blk) for blk in stage2)
    x = torch.randn(32, 3, 224, 224)
    with torch.no_grad():
        ref = torch.cat([model(x[i:i + 16]) for i in range(0, 32, 16)])
    fused, small = eng(x.cuda()), eng(x[:3].cuda())
    eng.wide_fusion = (0, 0)
    _recapture(eng)
    unfused = eng(x.cuda())
    assert bool(torch.isfinite(fused).all())
    assert rel_l2(fused, unfused) > 1e-3  # the rule changed the path
    assert rel_l2(fused, ref) <= 1.25 * rel_l2(unfused, ref) + 5e-3
    assert float((fused.cpu().argmax(1) == ref.argmax(1)).float().mean()) >= 0.8
    assert torch.equal(small, eng(x[:3].cuda()))


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32"])
def test_random_swin_t_int8_fuses_stages_1_2_on_the_triton_kernels(cuda_device, recipe):
    """Where the Triton kernels run (compute capability 9.x), an INT8 engine runs both halves of Swin-T's stage-1
    blocks (C 96) as the Triton kernels' INT8 forms at any batch, and stage 2's (C 192) on large grids (batch 32: 512
    windows). Its logits match the same plan on the unfused INT8 kernels (cuBLASLt INT8 GEMMs + epilogues, the kernel
    choice "cuda") up to int8 rounding ties, and are as close to timm's FP32 ones; under both INT8 recipes (FC2's
    output quantized into the residual, or not)."""
    pytest.importorskip("triton")
    model, plan, eng = _random_swin_t("int8", cuda_device, [3, 32], recipe)
    if eng.attention_kernel != "triton" or eng.mlp_kernel != "triton":
        pytest.skip(f"the Triton kernels run on compute capability 9.x under auto ({torch.cuda.get_device_name()})")
    stage1, stage2 = plan["stages"][0]["blocks"], plan["stages"][1]["blocks"]
    assert all(eng._attention_fusable(blk, eng.fused_attention_max_c) and eng._int8_mlp_fusable(blk) for blk in stage1)
    assert all(blk["rel_bias"] + ":64" in eng.t and eng._int8_mlp_fusable(blk, True)
               and not eng._int8_mlp_fusable(blk) for blk in stage2)
    assert (stage1[0]["fc2"]["out_scale"] is not None) == (recipe == "int8")
    unfused_build = {**eng.build, "config": {**eng.build["config"], "mlp_kernel": "cuda", "attention_kernel": "cuda"}}
    unfused_eng = NativeEngine({"config": plan, "build": unfused_build}, {k: v for k, v in eng.t.items()
                                                                         if ":" not in k}, "cuda", buckets=[3, 32])
    assert not any(unfused_eng._attention_fusable(blk, 192) or unfused_eng._int8_mlp_fusable(blk, True)
                   for blk in stage1 + stage2)
    x = torch.randn(32, 3, 224, 224)
    with torch.no_grad():
        ref = torch.cat([model(x[i:i + 16]) for i in range(0, 32, 16)])
    for b in (32, 3):
        fused, unfused = eng(x[:b].cuda()), unfused_eng(x[:b].cuda())
        assert bool(torch.isfinite(fused).all()), f"batch {b}"
        assert rel_l2(fused, unfused) < 3e-2, f"batch {b}"
        assert rel_l2(fused, ref[:b]) <= 1.25 * rel_l2(unfused, ref[:b]) + 5e-3, f"batch {b}"
        assert float((fused.argmax(1) == unfused.argmax(1)).float().mean()) >= 0.9, f"batch {b}"


def test_random_swin_t_int8_triton_gemm_matches_the_two_kernel_path(cuda_device):
    """Where the Triton kernels run (compute capability 9.x), an INT8 engine's non-GELU GEMMs of at least
    TRITON_INT8_GEMM_MIN_M rows run the Triton INT8 GEMM (epilogue fused); the same engine with it turned off
    (cuBLASLt INT8 GEMM + epilogue op) gives the same logits up to rounding ties, at batch 32 (stages 1-2 run fused,
    the stage-1 patch merging's reduction has 25088 rows) and at batch 1 (no GEMM that large: the same path)."""
    pytest.importorskip("triton")
    from trt_swin.engines.native.runtime import TRITON_INT8_GEMM_MIN_M

    _, _, eng = _random_swin_t("int8", cuda_device, [1, 32])
    if not eng.triton_int8_gemm:
        pytest.skip("the Triton kernels run on compute capability 9.x only")
    assert 32 * 28 * 28 >= TRITON_INT8_GEMM_MIN_M > 28 * 28
    x = torch.randn(32, 3, 224, 224, device="cuda")
    triton_out = eng(x)
    one = eng(x[:1])
    eng.triton_int8_gemm = False
    _recapture(eng)
    plain = eng(x)
    assert bool(torch.isfinite(triton_out).all())
    assert rel_l2(triton_out, plain) < 2e-2
    assert float((triton_out.argmax(1) == plain.argmax(1)).float().mean()) >= 0.9
    assert torch.equal(one, eng(x[:1]))


def test_random_swin_t_batch1_path_matches_the_default_path(cuda_device):
    """Where the Triton kernels run (compute capability 9.x), batch 1 takes the row-gathered GEMMs (plugins/ln_gemm)
    in unfused blocks and programmatic dependent launch: the logits match the same engine with both off and timm's
    FP32 model; batch 2 runs the default path (identical logits with the switch off)."""
    pytest.importorskip("triton")
    model, _, eng = _random_swin_t("fp16", cuda_device, [1, 2])
    if not eng.ln_gemm_max_batch:
        pytest.skip("the Triton kernels run on compute capability 9.x only")
    # QKV and FC1 folded in Swin-T's stage-2 and stage-3 blocks (2 + 6); stage 1 has 3136 tokens, stage 4 C 768
    assert eng.pdl_max_batch == 1 and len(eng.folds) == 2 * 8
    x = torch.randn(2, 3, 224, 224, device="cuda")
    with torch.no_grad():
        ref = model.float().cuda()(x).float()
    model.cpu()
    one = torch.cat([eng(x[:1]), eng(x[1:])])
    two = eng(x)
    eng.ln_gemm_max_batch = eng.pdl_max_batch = 0
    _recapture(eng)
    plain_one = torch.cat([eng(x[:1]), eng(x[1:])])
    assert torch.equal(eng(x), two)
    assert rel_l2(one, plain_one) < 5e-3
    assert rel_l2(one, ref) < 1e-2 and bool((one.argmax(1) == ref.argmax(1)).all())
