"""Build a native engine from a timm Swin V1 (float, or fake-quantized by trt_swin.quant): the load-time preprocessing
FasterTransformer does, done once at build time and written into the engine file.

- relative-position bias gathered per block ([nH, N, N]) and shift masks ([nW, N, N]) precomputed; the attention
  kernel adds both in registers, so they stay two tensors (a combined [nW, nH, N, N] copy would be nW times larger);
- QKV weights kept in timm's packed [3][nH][hd] layout, which the attention kernel reads directly; in FP16 GEMMs the
  attention scale hd^-0.5 is folded into the q rows of the weight and bias (INT8 keeps it in the kernel: q, k and v
  share one output scale, and folding would waste ~2.5 bits of q's range);
- LayerNorm parameters kept as they are: every LayerNorm is fused into a kernel that reads gamma / beta anyway, and
  folding them into the next GEMM would change the INT8 input ranges the scales were calibrated on;
- weights quantized per output channel (INT8, scale = amax / 127) or per tensor (FP8 E4M3, scale = amax / 448) with
  the calibrated scales; which GEMMs run INT8/FP8 and which outputs stay INT8 follow the recipe's quantizers
  (`scales.json` shape: {quantizer path: {enabled, bits, axis, amax}});
- patch embedding as a GEMM over p x p patches, its K padded to a multiple of 8 for tensor cores;
- chosen modules kept in FP32 (`keep_fp32` globs, by default the classifier head).
"""
from __future__ import annotations

import fnmatch
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from trt_swin.plugins.epilogue.reference import FP8_E4M3_MAX, quantize_fp8, quantize_int8

from ._format import device_info, write_engine

Precision = Literal["fp16", "int8", "fp8"]


@dataclass(frozen=True)
class BuildConfig:
    """How an engine is built; written into the engine's metadata."""

    precision: Precision = "fp16"
    max_batch: int = 128
    recipe: str | None = None             # quantization recipe of the scales (int8 / fp8)
    keep_fp32: tuple[str, ...] = ("head.fc",)  # module path globs run in FP32
    # FC1's GELU. tanh (FasterTransformer's choice too): fused into cuBLASLt's GELU_BIAS epilogue and the fused MLP;
    # on the H100, Swin-T FP16 at batch 128 took 5.28 ms with it vs 6.20 ms with erf, and fmnist-mini top-1 was the
    # same (91.36 %, FP32 91.36 %). erf: timm's exact GELU (an epilogue kernel after FC1 outside the fused MLP).
    gelu: Literal["erf", "tanh"] = "tanh"
    backend: str = "native"
    # MLPs (LN2 -> FC1 -> GELU -> FC2 + residual) of blocks with C <= this run as one fused kernel that keeps the 4C
    # hidden on chip (FP16 MLPs only); 0: always cuBLASLt GEMMs. H100, Swin-T batch 128: stage 1 (C 96) fused takes
    # 0.63 ms (Triton kernel) / 0.70 ms (CUDA) for its 2 blocks; stage 2 (C 192) fused 0.47 ms (Triton) against
    # 0.35 ms for the engine's unfused path (LN2 inside window_reverse_, cuBLASLt GEMMs), so 128 stays the bound
    # (BENCHMARKS.md session 5).
    fused_mlp_max_c: int = 128
    # Which fused MLP kernel: "triton" (plugins/fused_mlp/triton_mlp.py, wgmma through Triton: the faster one on the
    # H100), "cuda" (the mma.sync kernel, every architecture) or "auto": triton on compute capability 9.x when Triton
    # imports, else cuda, decided when the engine is loaded.
    mlp_kernel: Literal["auto", "cuda", "triton"] = "auto"
    # Attention halves (LN1 -> shift -> partition -> QKV -> window attention -> proj -> reverse + residual) of blocks
    # with C <= this (at most 192) run as one kernel per window that keeps q, k, v and the head outputs on chip (FP16
    # QKV and proj, head_dim 32, windows of <= 64 tokens; plugins/fused_attention); 0: the unfused kernels. None:
    # decided at load by the kernel that runs it. H100, batch 128, against the unfused kernels: the CUDA kernel 1.34x
    # at C = 96, slower at 128 (0.88x) and 192 (0.80-0.87x), so 96; the Triton kernel 1.53x at 96, 1.48x at 128,
    # slower at 192 (0.94x), so 128 (BENCHMARKS.md, session 6).
    fused_attention_max_c: int | None = None
    # Which fused attention kernel: "triton" (plugins/fused_attention/triton_attention.py, wgmma through Triton),
    # "cuda" (the mma.sync kernel) or "auto" (as mlp_kernel: triton on compute capability 9.x when Triton imports).
    attention_kernel: Literal["auto", "cuda", "triton"] = "auto"

    def __post_init__(self):
        if self.precision not in ("fp16", "int8", "fp8"):
            raise ValueError(f"precision must be fp16, int8 or fp8, got {self.precision!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.gelu not in ("erf", "tanh"):
            raise ValueError(f"gelu must be 'erf' or 'tanh', got {self.gelu!r}")
        for option in ("mlp_kernel", "attention_kernel"):
            if getattr(self, option) not in ("auto", "cuda", "triton"):
                raise ValueError(f"{option} must be 'auto', 'cuda' or 'triton', got {getattr(self, option)!r}")
        if self.fused_mlp_max_c < 0:
            raise ValueError(f"fused_mlp_max_c must be >= 0, got {self.fused_mlp_max_c}")
        if self.fused_attention_max_c is not None and not 0 <= self.fused_attention_max_c <= 192:
            raise ValueError(f"fused_attention_max_c must be in 0..192 (the fused attention kernel's widest C), "
                             f"got {self.fused_attention_max_c}")


@dataclass
class _Builder:
    config: BuildConfig
    scales: dict[str, dict[str, Any]] | None
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, t: torch.Tensor) -> str:
        self.tensors[name] = t.detach().contiguous().cpu()
        return name

    def quantizer(self, path: str, role: str) -> dict[str, Any] | None:
        if self.scales is None:
            return None
        q = self.scales.get(f"{path}.{role}_quantizer")
        return q if q and q.get("enabled") and q.get("amax") is not None else None

    def act_scale(self, path: str, role: str, bits: Any) -> float | None:
        q = self.quantizer(path, role)
        if q is None or q.get("bits") != bits:
            return None
        amax = q["amax"]
        amax = max(amax) if isinstance(amax, list) else float(amax)
        return max(amax, 1e-12) / (127.0 if bits == 8 else FP8_E4M3_MAX)

    def gemm(self, path: str, weight: torch.Tensor, bias: torch.Tensor | None, act: str = "none",
             q_rows_scale: float | None = None, pad_k_to: int = 1, pad_n_to: int = 1) -> dict[str, Any]:
        """Plan and tensors of one GEMM y = x W^T + b; the mode follows keep_fp32, the precision and the scales.

        K and N are padded with zeros to multiples of pad_k_to / pad_n_to (tensor-core and IMMA alignment); the
        runtime pads the input's K and slices N_orig columns of the output.
        """
        W = weight.detach().float().clone()  # N, K
        b = None if bias is None else bias.detach().float().clone()
        N0, K = W.shape
        Kp = -(-K // pad_k_to) * pad_k_to
        N = -(-N0 // pad_n_to) * pad_n_to
        W = torch.nn.functional.pad(W, (0, Kp - K, 0, N - N0))  # zero columns meet zero-padded activations
        if b is not None:
            b = torch.nn.functional.pad(b, (0, N - N0))
        spec: dict[str, Any] = {"name": path, "N": N, "N_orig": N0, "K": Kp, "K_orig": K, "act": act, "in_scale": None,
                                "out_scale": None, "out_qdq": False, "bias": None, "w_scale": None}
        prec = self.config.precision
        mode = "fp16"
        if any(fnmatch.fnmatchcase(path, g) for g in self.config.keep_fp32):
            mode = "fp32"
        elif prec == "int8":
            s_in, wq = self.act_scale(path, "input", 8), self.quantizer(path, "weight")
            if s_in is not None and wq is not None and wq.get("bits") == 8 and Kp % 4 == 0:
                mode = "int8"
            elif wq is not None or s_in is not None:
                self.notes.append(f"{path}: not INT8 in and INT8 weight (or K % 4 != 0): runs FP16")
        elif prec == "fp8":
            s_in, wq = self.act_scale(path, "input", "e4m3"), self.quantizer(path, "weight")
            if s_in is not None and wq is not None and wq.get("bits") == "e4m3" and N % 16 == 0 and Kp % 16 == 0:
                mode = "fp8"
            elif wq is not None or s_in is not None:
                self.notes.append(f"{path}: not FP8 in and FP8 weight (or N, K not multiples of 16): runs FP16")
        spec["mode"] = mode
        if q_rows_scale is not None and mode in ("fp16", "fp32"):
            C = N // 3  # q rows of the packed [3][nH][hd] output
            W[:C] *= q_rows_scale
            if b is not None:
                b[:C] *= q_rows_scale
            spec["q_scale_folded"] = True
        if b is not None:
            spec["bias"] = self.put(f"{path}.bias", b)

        if mode == "int8":
            spec["in_scale"] = self.act_scale(path, "input", 8)
            amax = self.quantizer(path, "weight")["amax"]
            amax = torch.tensor(amax, dtype=torch.float32).reshape(-1)
            amax = amax.expand(N0) if amax.numel() == 1 else amax
            if amax.numel() != N0:
                raise ValueError(f"{path}.weight_quantizer has {amax.numel()} amax values for {N0} output channels")
            amax = torch.nn.functional.pad(amax, (0, N - N0), value=1.0)
            w_scale = amax.clamp_min(1e-12) / 127.0
            spec["weight"] = self.put(f"{path}.weight", quantize_int8(W, w_scale[:, None]))
            spec["w_scale"] = self.put(f"{path}.w_scale", w_scale)
        elif mode == "fp8":
            spec["in_scale"] = self.act_scale(path, "input", "e4m3")
            amax = self.quantizer(path, "weight")["amax"]
            amax = max(amax) if isinstance(amax, list) else float(amax)  # per-tensor: the GEMM takes one scale
            w_scale = max(amax, 1e-12) / FP8_E4M3_MAX
            spec["weight"] = self.put(f"{path}.weight", quantize_fp8(W, w_scale))
            spec["w_scale_value"] = w_scale
        else:
            wq = self.quantizer(path, "weight") if prec != "fp16" else None
            if wq is not None and wq.get("bits") == 8 and mode == "fp16":  # fake-quantized weight, as the model sees it
                amax = torch.tensor(wq["amax"], dtype=torch.float32).reshape(-1)
                amax = torch.nn.functional.pad(amax.expand(N0) if amax.numel() == 1 else amax, (0, N - N0), value=1.0)
                amax = amax.clamp_min(1e-12)[:, None]
                W = torch.round(W * 127.0 / amax).clamp_(-128, 127) * amax / 127.0
            spec["weight"] = self.put(f"{path}.weight", W.half() if mode == "fp16" else W)
        return spec

    def set_output(self, spec: dict[str, Any], consumer_in_scale: float | None, consumer_takes_int8: bool = False) -> None:
        """Output dtype of a GEMM: INT8 when its output quantizer is enabled (FT int8_mode 1) or when its consumer
        takes INT8 input. An enabled output quantizer whose consumer needs floating point (FC2 + residual, the
        reduction feeding the residual stream) becomes quantize-dequantize, as in the fake-quantized model."""
        own = self.act_scale(spec["name"], "output", 8) if self.config.precision == "int8" else None
        if own is not None and consumer_in_scale is not None and abs(own - consumer_in_scale) > 1e-6 * own:
            self.notes.append(f"{spec['name']}: output scale differs from its consumer's input scale; using the output's")
        if own is not None:
            spec["out_scale"] = own
            spec["out_qdq"] = consumer_in_scale is None and not consumer_takes_int8
        elif consumer_in_scale is not None:
            spec["out_scale"] = consumer_in_scale


def _in_q(spec: dict[str, Any]) -> float | None:
    """The INT8 scale a GEMM wants its input in, or None when it takes floating point."""
    return spec["in_scale"] if spec["mode"] == "int8" else None


def _ln(b: _Builder, name: str, norm: nn.Module) -> dict[str, Any]:
    return {"gamma": b.put(f"{name}.weight", norm.weight.float()), "beta": b.put(f"{name}.bias", norm.bias.float()),
            "eps": float(norm.eps)}


def _check_model(model: nn.Module) -> None:
    from timm.models.swin_transformer import SwinTransformer

    if not isinstance(model, SwinTransformer):
        raise ValueError(f"the native engine builds timm Swin V1 models (SwinTransformer), got {type(model).__name__}")
    if model.patch_embed.proj.kernel_size != model.patch_embed.proj.stride or model.patch_embed.proj.padding != (0, 0):
        raise ValueError("patch embedding must be a non-overlapping p x p convolution")
    if getattr(model.head, "global_pool", None) is not None and getattr(model.head.global_pool, "pool_type", "avg") != "avg":
        raise ValueError("only average pooling heads are supported")


@torch.no_grad()
def build_native_engine(model: nn.Module, config: BuildConfig, scales: dict[str, dict[str, Any]] | None = None,
                        model_info: dict[str, Any] | None = None, device: torch.device | str | None = None
                        ) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Plan, tensors and build record of the engine of `model`.

    Args:
        model: timm SwinTransformer in eval mode (float, or ModelOpt fake-quantized: its float weights are read).
        config: precision, max batch, recipe, FP32 modules, GELU flavour.
        scales: {quantizer path: {enabled, bits, axis, amax}} (`scales.json`'s "quantizers"); required for int8/fp8.
        model_info: the model's ModelInfo dict (name, mean, std, ...) to keep in the engine.
        device: the GPU the engine is built for (recorded; checked at load), or None / CPU for a portable build.

    Returns:
        (config dict, tensors, build dict), as `save_engine` writes them.
    """
    _check_model(model)
    if config.precision != "fp16" and not scales:
        raise ValueError(f"a {config.precision} engine needs calibrated scales: pass --quantized CKPT (from "
                         "`trt_swin quantize`) or --scales scales.json")
    t0 = time.time()
    b = _Builder(config, scales)
    pe = model.patch_embed
    p = pe.proj.kernel_size[0]
    cin = pe.proj.in_channels
    H0, W0 = pe.img_size
    C0 = pe.proj.out_channels
    plan: dict[str, Any] = {
        "img_size": [H0, W0], "in_chans": cin, "patch_size": p, "num_classes": model.num_classes,
        "model": model_info or {},
    }
    pe_spec = b.gemm("patch_embed.proj", pe.proj.weight.reshape(C0, -1), pe.proj.bias, pad_k_to=8)
    plan["patch_embed"] = {"gemm": pe_spec,
                           "norm": _ln(b, "patch_embed.norm", pe.norm) if isinstance(pe.norm, nn.LayerNorm) else None}
    from trt_swin.plugins.window_attention.reference import gather_relative_position_bias, shift_mask

    stages = []
    H, W = H0 // p, W0 // p
    for si, stage in enumerate(model.layers):
        st: dict[str, Any] = {"downsample": None, "blocks": []}
        if not isinstance(stage.downsample, nn.Identity):
            ds = stage.downsample
            path = f"layers.{si}.downsample"
            red = b.gemm(f"{path}.reduction", ds.reduction.weight, None)
            b.set_output(red, None)  # the residual stream is float16
            st["downsample"] = {"norm": _ln(b, f"{path}.norm", ds.norm), "gemm": red}
            H, W = (H + 1) // 2, (W + 1) // 2
        for bi, blk in enumerate(stage.blocks):
            path = f"layers.{si}.blocks.{bi}"
            if (H, W) != tuple(blk.input_resolution):
                raise ValueError(f"{path}: expected input resolution {(H, W)}, the model says {blk.input_resolution}")
            attn = blk.attn
            C, nH = blk.dim, attn.num_heads
            if blk.window_size[0] != blk.window_size[1] or blk.shift_size[0] != blk.shift_size[1]:
                raise ValueError(f"{path}: only square windows and shifts are supported, got {blk.window_size}")
            ws, ss = blk.window_size[0], blk.shift_size[0]
            hd = C // nH
            scale = float(attn.scale)
            qkv = b.gemm(f"{path}.attn.qkv", attn.qkv.weight, attn.qkv.bias, q_rows_scale=scale)
            proj = b.gemm(f"{path}.attn.proj", attn.proj.weight, attn.proj.bias)
            fc1 = b.gemm(f"{path}.mlp.fc1", blk.mlp.fc1.weight, blk.mlp.fc1.bias, act="gelu")
            fc2 = b.gemm(f"{path}.mlp.fc2", blk.mlp.fc2.weight, blk.mlp.fc2.bias)
            # INT8 q/k/v and INT8 y only with the qkv / proj output quantizers; the attention and window_reverse
            # kernels read INT8 in any scale.
            b.set_output(qkv, None, consumer_takes_int8=True)
            b.set_output(proj, None, consumer_takes_int8=True)
            b.set_output(fc1, _in_q(fc2))
            b.set_output(fc2, None)   # + residual in floating point
            mask = shift_mask(blk)
            st["blocks"].append({
                "name": path, "H": H, "W": W, "C": C, "nH": nH, "hd": hd, "ws": ws, "ss": ss,
                "attn_scale": 1.0 if qkv.get("q_scale_folded") else scale,
                "rel_bias": b.put(f"{path}.attn.rel_bias", gather_relative_position_bias(attn)),
                "mask": None if mask is None else b.put(f"{path}.attn.mask", mask),
                "norm1": _ln(b, f"{path}.norm1", blk.norm1), "norm2": _ln(b, f"{path}.norm2", blk.norm2),
                "qkv": qkv, "proj": proj, "fc1": fc1, "fc2": fc2,
            })
        st.update(H=H, W=W, C=stage.blocks[0].dim if len(stage.blocks) else None)
        stages.append(st)
    plan["stages"] = stages
    # The producer of each INT8 GEMM input writes INT8 directly (LN kernels take an output scale).
    plan["norm"] = _ln(b, "norm", model.norm)
    head = model.head.fc
    if isinstance(head, nn.Linear):
        plan["head"] = b.gemm("head.fc", head.weight, head.bias, pad_n_to=16)
        b.set_output(plan["head"], None)
    else:
        plan["head"] = None
    plan["final_C"] = model.num_features

    here = device_info(device)
    build = {**here, "precision": config.precision, "recipe": config.recipe, "max_batch": config.max_batch,
             "config": asdict(config), "notes": b.notes, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
             "build_seconds": round(time.time() - t0, 2),
             "gemm_modes": _mode_counts(plan)}
    return plan, b.tensors, build


def _iter_gemms(plan: dict[str, Any]):
    yield plan["patch_embed"]["gemm"]
    for st in plan["stages"]:
        if st["downsample"]:
            yield st["downsample"]["gemm"]
        for blk in st["blocks"]:
            for k in ("qkv", "proj", "fc1", "fc2"):
                yield blk[k]
    if plan.get("head"):
        yield plan["head"]


def _mode_counts(plan: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in _iter_gemms(plan):
        out[g["mode"]] = out.get(g["mode"], 0) + 1
    return out


def save_engine(path: str | Path, plan: dict[str, Any], tensors: dict[str, torch.Tensor], build: dict[str, Any]) -> Path:
    """Write the engine file (see `_format`)."""
    return write_engine(path, tensors, plan, build)


def scales_from_model(model: nn.Module) -> dict[str, dict[str, Any]] | None:
    """The `scales.json` quantizer table of a ModelOpt fake-quantized model, or None for a float model."""
    from trt_swin.calibration.calibrators import is_quantized

    if not is_quantized(model):
        return None
    from trt_swin.quant.checkpoint import quantizer_table

    return quantizer_table(model)


@torch.no_grad()
def calibrate_max(model: nn.Module, images: torch.Tensor, recipe: str = "int8", batch_size: int = 32
                  ) -> dict[str, dict[str, Any]]:
    """A `scales.json`-shaped quantizer table from plain max statistics of `model` on `images`.

    Which quantizers exist and are enabled comes from the recipe (`trt_swin.quant.compile_plan`); amax is the absolute
    maximum seen (per output channel for axis-0 weights). For tests and timing runs; use `trt_swin quantize` (its
    calibrators, QAT) for accuracy.
    """
    from trt_swin.quant import compile_plan

    plan = compile_plan(model, recipe)
    modules = dict(model.named_modules())
    stats: dict[str, float] = {}
    hooks = []
    wanted = {(q.module, q.role) for q in plan.enabled.values()}

    def hook(path):
        def fn(mod, inp, out):
            for role, t in (("input", inp[0]), ("output", out)):
                if (path, role) in wanted:
                    stats[f"{path}.{role}"] = max(stats.get(f"{path}.{role}", 0.0), float(t.detach().abs().max()))
        return fn

    for path in {m for m, _ in wanted}:
        hooks.append(modules[path].register_forward_hook(hook(path)))
    try:
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size])
    finally:
        for h in hooks:
            h.remove()
    table: dict[str, dict[str, Any]] = {}
    for name, q in plan.quantizers.items():
        entry: dict[str, Any] = {"enabled": q.enabled, "bits": q.bits, "axis": q.axis, "amax": None}
        if q.enabled:
            if q.role == "weight":
                w = modules[q.module].weight.detach().float()
                entry["amax"] = (w.abs().amax(dim=tuple(range(1, w.dim()))).tolist() if q.axis == 0
                                 else float(w.abs().max()))
            else:
                entry["amax"] = stats.get(f"{q.module}.{q.role}", 0.0) or 1e-6
        table[name] = entry
    return table
