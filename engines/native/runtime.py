"""The native engine runtime: our fused kernels + cuBLASLt GEMMs, replayed as CUDA graphs per batch bucket.

Per Swin block (FP16, 7 launches; INT8 adds the dequantizing epilogues, except where the Triton INT8 GEMM fuses them):
  ln_shift_partition (norm1 + roll + pad + window partition)
  -> QKV GEMM (+bias, cuBLASLt epilogue; attention scale folded into q)
  -> window_attention (rel-pos bias + shift mask + softmax + PV; blocks with an FP16 QKV output in a Triton
     attention_kernel engine: its Triton version, plugins/window_attention/triton_window_attention.py, which also
     writes an FP8 proj GEMM's input)
  -> proj GEMM (+bias)
  -> window_reverse_ (reverse + unshift + crop + residual, in place, + norm2)
  -> FC1 GEMM (+bias + GELU: cuBLASLt tanh epilogue, or GEMM + erf-GELU epilogue op)
  -> FC2 GEMM (+bias, + residual as cuBLASLt's C matrix)
Blocks with C <= fused_mlp_max_c (FP16 MLPs): window_reverse_ without LN2, then fused_mlp_ (LN2 + FC1 + GELU + FC2 +
residual in one kernel, the 4C hidden kept on chip; the Triton kernel or the CUDA one, see resolve_fused_kernel): 5
launches.
Blocks with C <= fused_attention_max_c (FP16 QKV and proj, head_dim 32, windows of <= 64 tokens, timm's shift mask):
the whole attention half in one kernel per window (fused_attention_, or its Triton version: q, k, v and the head
outputs stay on chip), then the MLP half: with the fused MLP too, 2 launches per block.
FP8: the LN / attention kernels write FP8 GEMM inputs directly, FC1 writes FC2's FP8 input from cuBLASLt's epilogue;
where the Triton kernels run, blocks with C <= fused_mlp_max_c / fused_attention_max_c run the Triton fused MLP's /
fused attention's FP8 forms.
INT8: where the Triton kernels run, the same blocks run the fused halves' INT8 forms (the INT8 recipes' quantization
points inside one kernel each); elsewhere the LN / attention kernels write INT8 GEMM inputs and the GEMMs dequantize in
their epilogues.
Batch 1 (Triton kernels, FP16 GEMMs): unfused blocks with C <= 512 run 5 launches, norm1 folded into QKV and norm2
into FC1 (plugins/ln_gemm): ln_gemm(window gather) -> window attention -> proj GEMM + window reverse + residual ->
ln_gemm(FC1 + GELU) -> FC2 GEMM (+ residual), and the Triton kernels launch with programmatic dependent launch.
Patch merging: patch_merge (gather + LN) -> reduction GEMM; on compute capability 9.0, stage 1's (C <= 96, FP16 GEMM,
even map) as one kernel, plugins/patch_merge_gemm (LN folded into the GEMM). Patch embedding: one kernel
(plugins/patch_embed: the Triton one in an engine that runs Triton kernels, else the CUDA one for 3 channels / patch 4
/ C 96, 128, 192) on the caller's images ahead of the CUDA graph; otherwise a GEMM over p x p patches (K padded to a
multiple of 8) + LN. Residual stream: float16 [B, H, W, C].

On CPU tensors the same op sequence runs the ops' PyTorch references (FP32 math, float16 / int8 storage), which is how
the engine is tested without a GPU.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from trt_swin.plugins import ops as _ops  # noqa: F401  (registers torch.ops.trt_swin.*)
from trt_swin.plugins.epilogue.op import epilogue
from trt_swin.plugins.epilogue.reference import quantize_fp8, quantize_int8
from trt_swin.plugins._library import runs_hopper_kernels
from trt_swin.plugins.fused_attention.op import HOPPER_MAX_C, fused_attention_
from trt_swin.plugins.fused_attention.reference import MAX_C as FUSED_ATTENTION_MAX_C
from trt_swin.plugins.fused_attention.reference import Int8AttentionScales, pad_bias, swin_shift_mask
from trt_swin.plugins.fused_mlp.op import fused_mlp_
from trt_swin.plugins.fused_mlp.reference import TRITON_MAX_C as TRITON_MLP_MAX_C  # wider MLPs take the CUDA kernel
from trt_swin.plugins.fused_mlp.reference import Int8MlpScales
from trt_swin.plugins.gemm.op import gemm
from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
from trt_swin.plugins.patch_embed.op import patch_embed, patch_embed_cuda_available, patch_embed_cuda_fits
from trt_swin.plugins.patch_merge.op import patch_merge
from trt_swin.plugins.patch_merge_gemm.op import patch_merge_gemm
from trt_swin.plugins.patch_merge_gemm.reference import SUPPORTED_C as PATCH_MERGE_GEMM_C
from trt_swin.plugins.window_attention.op import window_attention
from trt_swin.plugins.window_reverse.op import window_reverse_

from ._format import EngineFormatError, check_compatible, device_info, read_engine


def fused_mlp_triton_(*args):
    """The Triton fused MLP, imported on first use: Triton is only needed by engines that run it."""
    from trt_swin.plugins.fused_mlp.triton_mlp import fused_mlp_triton_ as op

    return op(*args)


def fused_attention_triton_(*args):
    """The Triton fused attention half, imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.fused_attention.triton_attention import fused_attention_triton_ as op

    return op(*args)


def gemm_int8_triton(*args):
    """The Triton INT8 GEMM with its epilogue fused, imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.gemm.triton_int8 import gemm_int8_triton as op

    return op(*args)


def window_attention_triton_(*args, **kw):
    """The Triton window attention (unfused blocks with FP16 QKV outputs), imported on first use (as
    fused_mlp_triton_)."""
    from trt_swin.plugins.window_attention.triton_window_attention import window_attention_triton as op

    return op(*args, **kw)


def patch_embed_triton(*args, **kw):
    """The Triton patch embedding (stem), imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.patch_embed.triton_patch_embed import patch_embed_triton as op

    return op(*args, **kw)


def ln_gemm_triton(*args):
    """The Triton LayerNorm-folded GEMM over gathered rows, imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.ln_gemm.triton_ln_gemm import ln_gemm_triton as op

    return op(*args)


def gemm_window_reverse_triton(*args):
    """The Triton proj GEMM + window reverse + residual, imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.ln_gemm.triton_ln_gemm import gemm_window_reverse_triton as op

    return op(*args)


def classifier_head_triton(*args):
    """The tail (final LayerNorm + pool in Triton, FP32 head), imported on first use (as fused_mlp_triton_)."""
    from trt_swin.plugins.classifier_head.triton_head import classifier_head_triton as op

    return op(*args)


def resolve_fused_kernel(choice: str, device: torch.device, path: str = "engine", option: str = "mlp_kernel") -> str:
    """The kernel an engine runs for a fused op (build option `option`: mlp_kernel or attention_kernel): "triton" or
    "cuda". "auto" is triton on a CUDA device of compute capability 9.x with Triton installed (measured faster
    there), else cuda; CPU engines run the op's reference either way. An explicit "triton" without Triton on a CUDA
    device is an error, not a silent fallback."""
    if choice not in ("auto", "cuda", "triton"):
        raise ValueError(f"engine {path}: unknown {option} {choice!r} (expected auto, cuda or triton)")
    if device.type != "cuda" or choice == "cuda":
        return "cuda"
    if importlib.util.find_spec("triton") is None:
        if choice == "triton":
            raise RuntimeError(f"engine {path} was built with {option}='triton' but Triton is not installed here; "
                               f"pip install triton, or rebuild with --{option.replace('_', '-')} cuda")
        return "cuda"
    if choice == "triton":
        return "triton"
    return "triton" if torch.cuda.get_device_capability(device)[0] == 9 else "cuda"


# fused_attention_max_c=None (auto) per attention kernel: the widest C where it beat the unfused kernels on the H100 at
# batch 128 (BuildConfig.fused_attention_max_c).
AUTO_FUSED_ATTENTION_MAX_C = {"cuda": 96, "triton": 128}
# ... and, under auto with the Triton kernels, blocks with C up to the first number also run both fused halves (the
# fused attention and the fused MLP) where the block's grid has at least the second number of windows. Swin-T stage 2
# (C 192) on the H100, same engine and GEMM algorithms: 1.268 vs 1.284 ms at batch 32 (512 windows), 2.231 vs 2.278 at
# batch 64, 4.341 vs 4.362 at batch 128; slower at batch 1 (0.456 vs 0.413 ms, session 7), where the cuBLASLt path
# wins (BENCHMARKS.md, session 8). FP8 engines too, on the kernels' FP8 forms (tanh GELU for the MLP): 1.177 vs 1.205
# ms at batch 32, 3.711 vs 3.806 at batch 128 (session 11).
AUTO_WIDE_FUSION = {"triton": (192, 512)}
# The Triton INT8 GEMM (cuBLASLt's INT8 GEMM + the epilogue op in one kernel, the same result up to rounding ties) from
# this many rows, for GEMMs with these activations. Session 9 (H100, op by op, batch 128) set 32768: faster on Swin-T's
# stage-1 and -2 GEMMs (0.27 vs 0.46 ms for the stage-1 QKV), not on stage 3's (25088 rows) nor with the erf-GELU
# epilogue. Session 18 (H100, Swin-T INT8 engine, stages 1-2 now fused), every non-GELU INT8 GEMM on it vs the old
# rule: batch 128 5.745 vs 6.264 ms, batch 32 1.878 vs 1.864, batch 1 0.988 vs 0.641; the GELU ones too: 5.908 at 128.
# Hence from 16384 rows (stage 3 at batch 128), no GELU (BENCHMARKS.md, session 18).
TRITON_INT8_GEMM_MIN_M = 16384
TRITON_INT8_GEMM_ACTS = ("none",)
# Batch 1 takes PDL, and its blocks of at most 1024 tokens (Swin-T's largest unfused block at batch 1 has 784) and C
# <= 512 the row-gathered Triton GEMMs: FP16 on the H100, Swin-T 0.405 -> 0.360 ms, Swin-B 0.819 -> 0.759; at batch
# 2 - 8 they lost 1 - 10 %, and at C 768 / 1024 (stage 4) the wide QKV and FC1 GEMMs lose to cuBLASLt (BENCHMARKS.md,
# session 10).
LN_GEMM_MAX_BATCH = 1
LN_GEMM_MAX_ROWS = 1024
LN_GEMM_MAX_C = 512
PDL_MAX_BATCH = 1
# The Hopper kernels (fused_attention_sm90a.cu, fused_mlp_sm90a.cu) take a block's fused FP16 halves on grids of at
# least this many windows: the attention half from 512 (Swin-T stage 1 from batch 8), the MLP half from 4096 (batch
# 64). H100, Swin-T FP16 engine, ms, Triton kernels / + Hopper attention / + Hopper MLP: batch 1 0.3625 / 0.3634 /
# 0.3636, 8: 0.5838 / 0.5840 / 0.6140, 32: 1.2347 / 1.1875 / 1.1953, 64: 2.2318 / 2.1354 / 2.1091, 128: 4.1849 /
# 3.9786 / 3.8784 (BENCHMARKS.md, session 13). HOPPER_MLP_MAX_C: fused_mlp_'s Hopper kernel keeps w1 and w2 in shared
# memory.
HOPPER_MIN_WINDOWS = {"attention": 512, "mlp": 4096}
HOPPER_MLP_MAX_C = 96
# patch_merge_gemm (Hopper) takes a patch merging of at least this many merged tokens: H100, Swin-T stage 1, us per
# call against patch_merge + cuBLASLt: 784 tokens (batch 1) 10.8 / 6.3, 6272 (8) 11.8 / 11.4, 25088 (32) 20.2 / 30.7,
# 100352 (128) 50.0 / 99.7 (BENCHMARKS.md, session 15).
HOPPER_MERGE_MIN_TOKENS = 16384


def default_buckets(max_batch: int) -> list[int]:
    """Batch sizes that get a CUDA graph: powers of two below max_batch, and max_batch itself."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return out + [max_batch]


class NativeEngine:
    """A loaded native engine: `engine(images [B, C, H, W]) -> logits [B, num_classes]` float32.

    Images are normalized like the model's training input (engine.mean / engine.std). Any batch from 1 to max_batch
    runs without a rebuild: on CUDA the batch is padded up to the nearest captured bucket and its graph replayed.
    """

    def __init__(self, doc: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device | str = "cpu",
                 cuda_graphs: bool = True, buckets: list[int] | None = None, path: str | Path = "engine"):
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.path = str(path)
        self.plan: dict[str, Any] = doc["config"]
        self.build: dict[str, Any] = doc["build"]
        if self.device.type == "cuda":
            check_compatible(self.build, device_info(self.device), self.path)
        self.max_batch = int(self.build["max_batch"])
        self.precision = self.build["precision"]
        self.gelu = self.build.get("config", {}).get("gelu", "erf")
        self.fused_mlp_max_c = int(self.build.get("config", {}).get("fused_mlp_max_c", 0))
        self.mlp_kernel = resolve_fused_kernel(self.build.get("config", {}).get("mlp_kernel", "cuda"), self.device,
                                               self.path, "mlp_kernel")
        self.attention_kernel = resolve_fused_kernel(self.build.get("config", {}).get("attention_kernel", "cuda"),
                                                     self.device, self.path, "attention_kernel")
        attn_max_c = self.build.get("config", {}).get("fused_attention_max_c", 0)
        auto_attn = attn_max_c is None
        if auto_attn:  # "auto": the widest C at which the kernel that runs measured faster than unfused
            attn_max_c = AUTO_FUSED_ATTENTION_MAX_C[self.attention_kernel]
        self.fused_attention_max_c = int(attn_max_c)
        # On compute capability 9.0 the fused FP16 halves of small-C blocks run the ops' Hopper (wgmma) kernels on
        # large grids, under either kernel choice (_hopper_attention, _hopper_mlp).
        self.hopper = runs_hopper_kernels(self.device)
        # (C bound, min windows) of the large-grid rule (AUTO_WIDE_FUSION); (0, 0): off
        self.wide_fusion = (AUTO_WIDE_FUSION.get(self.attention_kernel, (0, 0)) if auto_attn and self.mlp_kernel ==
                            self.attention_kernel else (0, 0))
        pe = self.plan["patch_embed"]["gemm"]
        # Where the engine already runs Triton kernels (compute capability 9.x under auto: where they were measured),
        # three more parts run as Triton kernels.
        runs_triton = "triton" in (self.mlp_kernel, self.attention_kernel)
        # The stem (patch gather + GEMM + LayerNorm in one kernel) for an FP16 patch GEMM, on the caller's images ahead
        # of the CUDA graph, whose input is then the residual stream: the Triton kernel where the engine runs Triton
        # kernels, else the CUDA one where it is built for the shape (plugins/patch_embed: 3 channels, patch 4, C 96 /
        # 128 / 192). H100, Swin-T FP16 engine, ms (BENCHMARKS.md session 16): Triton / CUDA stem at batch 1 0.366 /
        # 0.369, at 128 3.854 / 3.854; with the CUDA fused kernels (no Triton), unfused / CUDA stem at batch 1 0.481 /
        # 0.474, at 32 1.323 / 1.283, at 128 4.225 / 4.045.
        fusable_stem = pe["mode"] == "fp16" and bool(pe["bias"])
        cin, (H0, W0) = int(self.plan["in_chans"]), map(int, self.plan["img_size"])
        cuda_stem = (fusable_stem and pe["N"] == pe["N_orig"]
                     and patch_embed_cuda_fits(cin, self.plan["patch_size"], pe["N"], H0, W0)
                     and patch_embed_cuda_available(self.device))
        self.stem_kernel = "triton" if fusable_stem and runs_triton else "cuda" if cuda_stem else None
        # INT8 GEMMs without an activation and with at least TRITON_INT8_GEMM_MIN_M rows, one kernel each
        # (plugins/gemm/triton_int8.py: the epilogue fused, no int32 round trip); the others as cuBLASLt's INT8 GEMM +
        # the epilogue op.
        self.triton_int8_gemm = runs_triton
        # Batch 1: unfused blocks run three row-gathered FP16 GEMMs (plugins/ln_gemm), each one kernel for a memory
        # op + a GEMM (norm1 + shift + partition -> QKV; proj -> window reverse + residual; norm2 -> FC1 + GELU),
        # and the Triton kernels launch with programmatic dependent launch (plugins/triton_utils.py). Where they
        # lose to the default path: the bounds (LN_GEMM_MAX_*, PDL_MAX_BATCH).
        self.ln_gemm_max_batch = LN_GEMM_MAX_BATCH if runs_triton else 0
        self.ln_gemm_max_rows = LN_GEMM_MAX_ROWS
        self.ln_gemm_max_c = LN_GEMM_MAX_C
        self.pdl_max_batch = PDL_MAX_BATCH if runs_triton else 0
        self.folds: dict[str, Any] = {}
        # On compute capability 9.0, stage 1's patch merging + reduction as one kernel (plugins/patch_merge_gemm)
        self.merge_folds: dict[str, Any] = {}
        head = self.plan["head"]
        # The tail: the final LayerNorm + average pool as one kernel (plugins/classifier_head) instead of a LayerNorm
        # pass writing fp16 and a mean kernel; the FP32 head GEMM as cuBLAS's or, from 32 images, a tf32x3 Triton
        # kernel (plugins/classifier_head/triton_head.py). For an FP32 head (keep_fp32, the default) without
        # quantization.
        self.triton_head = (runs_triton and bool(self.plan.get("norm"))
                            and (head is None or (head["mode"] == "fp32" and head["act"] == "none"
                                                  and head["out_scale"] is None and head["K"] == head["K_orig"])))
        model = self.plan.get("model") or {}
        self.mean, self.std = tuple(model.get("mean", ())), tuple(model.get("std", ()))
        self.num_classes = int(self.plan["num_classes"])
        self.input_shape = (int(self.plan["in_chans"]), *map(int, self.plan["img_size"]))
        self.t = {k: v.to(self.device) for k, v in tensors.items()}
        self._prepare()
        self._prepare_folds()
        if self.hopper:
            self._prepare_merge_folds()
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.buckets = sorted(set(buckets or default_buckets(self.max_batch)))
        if any(b < 1 or b > self.max_batch for b in self.buckets):
            raise ValueError(f"CUDA graph buckets must lie in 1..max_batch={self.max_batch}, got {self.buckets}")
        if self.buckets[-1] != self.max_batch:
            self.buckets.append(self.max_batch)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._pool = None

    # ---- load-time preparation -------------------------------------------------------------------------------
    def _gemms(self):
        from .builder import _iter_gemms

        return _iter_gemms(self.plan)

    def _prepare(self) -> None:
        """Derived device tensors: float16 biases for cuBLASLt's bias epilogue, FP8 scales as device scalars (cuBLASLt
        reads them on the device, and a CUDA graph cannot capture their upload)."""
        def scalar(v: float) -> torch.Tensor:
            return torch.tensor([v], dtype=torch.float32, device=self.device)

        for g in self._gemms():
            if g["bias"] and g["mode"] in ("fp16", "fp8"):
                self.t[g["bias"] + ":fp16"] = self.t[g["bias"]].half()
            if g["mode"] == "fp8":
                self.t[g["name"] + ":sa"] = scalar(g["in_scale"])
                self.t[g["name"] + ":sb"] = scalar(g["w_scale_value"])
        for st in self.plan["stages"]:
            for blk in st["blocks"]:  # FC1 writes FC2's FP8 input directly
                if blk["fc1"]["mode"] == "fp8" and blk["fc2"]["mode"] == "fp8":
                    self.t[blk["fc1"]["name"] + ":out_inv"] = scalar(1.0 / blk["fc2"]["in_scale"])
                fusable = self._attention_fusable(blk, self.fused_attention_max_c)
                wide = self._attention_fusable(blk, self.wide_fusion[0])  # FP16, or FP8 on the Triton kernels
                if fusable or wide:  # the Triton kernel reads a float16 table (half the bytes)
                    bias64 = pad_bias(self.t[blk["rel_bias"]])
                    # the Triton kernel reads float16 (":64h"), the CUDA kernels float32 (":64")
                    self.t[blk["rel_bias"] + ":64"] = bias64
                    if self.attention_kernel == "triton":
                        self.t[blk["rel_bias"] + ":64h"] = bias64.half()
                if not fusable and self._triton_window_attention_ok(blk):  # wide blocks take it on small grids
                    self.t[blk["rel_bias"] + ":w64"] = pad_bias(self.t[blk["rel_bias"]]).half()

    def _prepare_folds(self) -> None:
        """norm1 folded into QKV and norm2 into FC1 (self.folds) for the row-gathered Triton GEMMs, in the blocks the
        batch-1 rule can send there (one image's tokens within ln_gemm_max_rows, C within ln_gemm_max_c): a folded
        weight is a second copy of the GEMM's weight."""
        from trt_swin.plugins.ln_gemm.reference import fold_layer_norm

        for st in self.plan["stages"] if self.ln_gemm_max_batch else ():
            for blk in st["blocks"]:
                if blk["H"] * blk["W"] > self.ln_gemm_max_rows or blk["C"] > self.ln_gemm_max_c:
                    continue
                for g, norm in ((blk["qkv"], blk["norm1"]), (blk["fc1"], blk["norm2"])):
                    if self._fp16_unpadded(g):
                        self.folds[g["name"]] = fold_layer_norm(self.t[g["weight"]], self.t[norm["gamma"]],
                                                                self.t[norm["beta"]],
                                                                self.t[g["bias"]] if g["bias"] else None)

    def _prepare_merge_folds(self) -> None:
        """The patch-merging norms folded into the reductions (self.merge_folds) that patch_merge_gemm can take: FP16,
        unpadded, C in PATCH_MERGE_GEMM_C (Swin V1 stage 1), 4C -> 2C."""
        from trt_swin.plugins.ln_gemm.reference import fold_layer_norm

        for ds in (st["downsample"] for st in self.plan["stages"] if st["downsample"]):
            red, norm = ds["gemm"], ds["norm"]
            if self._fp16_unpadded(red) and red["K"] // 4 in PATCH_MERGE_GEMM_C and red["N"] * 2 == red["K"]:
                self.merge_folds[red["name"]] = fold_layer_norm(self.t[red["weight"]], self.t[norm["gamma"]],
                                                                self.t[norm["beta"]])

    def _merge_in_one(self, ds: dict[str, Any], x: torch.Tensor) -> bool:
        """Whether the patch merging of x runs as patch_merge_gemm: a folded reduction (self.merge_folds), an even
        map, at least HOPPER_MERGE_MIN_TOKENS merged tokens."""
        B, H, W, _ = x.shape
        return (ds["gemm"]["name"] in self.merge_folds and H % 2 == 0 and W % 2 == 0
                and B * (H // 2) * (W // 2) >= HOPPER_MERGE_MIN_TOKENS)

    @staticmethod
    def _fp16_unpadded(g: dict[str, Any]) -> bool:
        """An FP16 GEMM without output quantization or padding, K % 16 == 0: what the row-gathered GEMMs take."""
        return (g["mode"] == "fp16" and g["out_scale"] is None and g["K"] == g["K_orig"] and g["N"] == g["N_orig"]
                and g["K"] % 16 == 0)

    def _attention_fusable(self, blk: dict[str, Any], max_c: int) -> bool:
        """Whether the block's attention half can run as fused_attention_: FP16 QKV and proj (or FP8 ones, with the
        Triton kernel's FP8 form) without output quantization, or INT8 ones as the INT8 recipes quantize them (the
        Triton kernel's INT8 form: _int8_attention_ok), head_dim 32, windows of <= 64 tokens, C within max_c, and the
        engine's mask being the one the kernel derives (timm's)."""
        qkv_g, proj_g = blk["qkv"], blk["proj"]
        if qkv_g["mode"] == proj_g["mode"] == "int8":
            modes_ok = self.attention_kernel == "triton" and self._int8_attention_ok(blk)
        else:
            modes_ok = ((qkv_g["mode"] == proj_g["mode"] == "fp16"
                         or (qkv_g["mode"] == proj_g["mode"] == "fp8" and self.attention_kernel == "triton"))
                        and qkv_g["out_scale"] is None and proj_g["out_scale"] is None)
        if not (blk["C"] <= min(max_c, FUSED_ATTENTION_MAX_C) and blk["hd"] == 32 and blk["ws"] <= 8 and modes_ok
                and qkv_g["N"] == 3 * blk["C"] and qkv_g["K"] == blk["C"] and proj_g["N"] == proj_g["K"] == blk["C"]):
            return False
        return self._mask_is_timms(blk)

    @staticmethod
    def _int8_attention_ok(blk: dict[str, Any]) -> bool:
        """INT8 QKV and proj GEMMs the Triton attention's INT8 form computes: int8 q / k / v (the QKV output
        quantizer), the attention scale not folded into q, biases on both, the proj output quantized into the
        residual or floating point."""
        qkv_g, proj_g = blk["qkv"], blk["proj"]
        return (qkv_g["out_scale"] is not None and not qkv_g["out_qdq"] and not qkv_g.get("q_scale_folded")
                and bool(qkv_g["bias"]) and bool(proj_g["bias"]) and qkv_g["act"] == proj_g["act"] == "none")

    def _int8_attention_scales(self, blk: dict[str, Any]):
        """The Int8AttentionScales of an INT8 block the Triton attention's INT8 form runs."""
        qkv_g, proj_g = blk["qkv"], blk["proj"]
        return Int8AttentionScales(qkv_g["in_scale"], self.t[qkv_g["w_scale"]], qkv_g["out_scale"],
                                   proj_g["in_scale"], self.t[proj_g["w_scale"]], proj_g["out_scale"])

    @staticmethod
    def _num_windows(blk: dict[str, Any], B: int) -> int:
        """Windows of the block's padded map at batch B."""
        return B * -(-blk["H"] // blk["ws"]) * -(-blk["W"] // blk["ws"])

    def _hopper_grid(self, blk: dict[str, Any], B: int, half: str) -> bool:
        """A compute capability 9.0 engine (self.hopper) on a grid of at least HOPPER_MIN_WINDOWS[half] windows."""
        return self.hopper and self._num_windows(blk, B) >= HOPPER_MIN_WINDOWS[half]

    def _hopper_attention(self, blk: dict[str, Any], B: int) -> bool:
        """Whether the block's fused FP16 attention half runs fused_attention_'s Hopper kernel (C <= HOPPER_MAX_C)."""
        return self._hopper_grid(blk, B, "attention") and blk["C"] <= HOPPER_MAX_C and blk["qkv"]["mode"] == "fp16"

    def _hopper_mlp(self, blk: dict[str, Any], B: int) -> bool:
        """Whether the block's fused FP16 MLP half runs fused_mlp_'s Hopper kernel (Hd = 4C, C <= HOPPER_MLP_MAX_C)."""
        return (self._hopper_grid(blk, B, "mlp") and blk["C"] <= HOPPER_MLP_MAX_C and blk["fc1"]["mode"] == "fp16"
                and blk["fc1"]["N"] == 4 * blk["C"] and blk["fc1"]["K"] == blk["C"])

    def _triton_window_attention_ok(self, blk: dict[str, Any]) -> bool:
        """Whether an unfused block's window attention runs the Triton kernel: attention_kernel triton, an FP16 QKV
        output (an FP16 or FP8 QKV GEMM without output quantization), a proj GEMM taking FP16 (FP16, no output
        quantization) or FP8 (the kernel writes it), head_dim 32, windows of <= 64 tokens, timm's mask."""
        qkv_g, proj_g = blk["qkv"], blk["proj"]
        return (self.attention_kernel == "triton" and blk["hd"] == 32 and blk["ws"] <= 8
                and qkv_g["mode"] in ("fp16", "fp8") and qkv_g["out_scale"] is None
                and (proj_g["mode"] == "fp8" or (proj_g["mode"] == "fp16" and proj_g["out_scale"] is None))
                and self._mask_is_timms(blk))

    def _mask_is_timms(self, blk: dict[str, Any]) -> bool:
        """The block's stored shift mask is the one the fused / Triton kernels derive from window coordinates."""
        expected = swin_shift_mask(blk["H"], blk["W"], blk["ws"], blk["ss"])
        mask = self.t[blk["mask"]] if blk["mask"] else None
        if expected is None or mask is None:
            return expected is None and mask is None
        return mask.shape == expected.shape and bool(torch.equal(mask.cpu(), expected))

    # ---- one GEMM with its epilogue ----------------------------------------------------------------------------
    def _finish(self, y, in_scale, col_scale, bias, act, residual, g) -> torch.Tensor:
        """bias / activation / residual / output quantization of a raw GEMM result `y` through the epilogue op."""
        out_scale = g["out_scale"]
        if g["out_qdq"]:  # the model quantizes this output, its consumer wants floating point: Q then DQ (+ residual)
            q = epilogue(y, in_scale, col_scale, bias, act, None, out_scale)
            return epilogue(q, out_scale, None, None, "none", residual, None)
        if (y.dtype == torch.float16 and col_scale is None and bias is None and act == "none" and residual is None
                and out_scale is None and in_scale == 1.0):
            return y
        return epilogue(y, in_scale, col_scale, bias, act, residual, out_scale)

    def _gemm(self, x: torch.Tensor, g: dict[str, Any], residual: torch.Tensor | None = None,
              final: bool = False, fp8_consumer: dict[str, Any] | None = None) -> torch.Tensor:
        """y = act(x W^T + b) (+ residual) of GEMM spec `g`: float16 [M, N], or int8 when its consumer takes INT8, or
        float8_e4m3fn when `fp8_consumer` (the next GEMM's spec) takes FP8 and this GEMM can write it.
        `final` (the classifier): an FP32 GEMM keeps its float32 result (float16 logits would create ties)."""
        t, mode = self.t, g["mode"]
        W = t[g["weight"]]
        bias = t[g["bias"]] if g["bias"] else None
        act = "gelu" if g["act"] == "gelu" else "none"
        if x.shape[1] != g["K"]:  # K padded at build time (patch embedding)
            x = F.pad(x, (0, g["K"] - x.shape[1]))
        if mode == "fp32":
            xf = x.float() * g["in_scale"] if x.dtype == torch.int8 else x.float()
            y = F.linear(xf, W, bias)
            if act == "gelu":
                y = F.gelu(y)
            if residual is not None:
                y = y + residual.float()
            if g["out_scale"] is not None:
                q = quantize_int8(y, g["out_scale"])
                return q.float().mul_(g["out_scale"]).half() if g["out_qdq"] else q
            return y if final else y.half()
        if mode == "int8":
            xq = x if x.dtype == torch.int8 else quantize_int8(x, g["in_scale"])
            if (self.triton_int8_gemm and xq.is_cuda and act in TRITON_INT8_GEMM_ACTS
                    and xq.shape[0] >= TRITON_INT8_GEMM_MIN_M):
                return gemm_int8_triton(xq, W, g["in_scale"], t[g["w_scale"]], bias, act, residual, g["out_scale"],
                                        bool(g["out_qdq"]))
            acc = gemm(xq.contiguous(), W)  # int32 accumulators
            return self._finish(acc, g["in_scale"], t[g["w_scale"]], bias, act, residual, g)
        if mode == "fp8":
            xq = x if x.dtype == torch.float8_e4m3fn else quantize_fp8(x.half(), g["in_scale"])
            sa, sb = t[g["name"] + ":sa"], t[g["name"] + ":sb"]
            b16 = t[g["bias"] + ":fp16"] if bias is not None else None
            if act == "none" or self.gelu == "tanh":  # everything in cuBLASLt's FP8 epilogue
                inv = t.get(g["name"] + ":out_inv") if fp8_consumer is not None else None
                return gemm(xq.contiguous(), W, b16, residual, "gelu_tanh" if act == "gelu" else "none", 1.0, sa, sb,
                            inv)
            y = self._finish(gemm(xq.contiguous(), W, None, None, "none", 1.0, sa, sb), 1.0, None, bias, act,
                             residual, g)
            if fp8_consumer is not None:  # erf GELU: the FP8 input of the next GEMM quantized here
                return quantize_fp8(y, fp8_consumer["in_scale"])
            return y
        if x.dtype != torch.float16:
            x = x.half()
        x = x.contiguous()
        # fp16: bias (+ tanh GELU) and the residual ride on cuBLASLt's epilogue when nothing else is needed
        if g["out_scale"] is None and (act == "none" or self.gelu == "tanh"):
            b16 = t[g["bias"] + ":fp16"] if bias is not None else None
            return gemm(x, W, b16, residual, "gelu_tanh" if act == "gelu" else "none")
        return self._finish(gemm(x, W), 1.0, None, bias, act, residual, g)

    # ---- the network --------------------------------------------------------------------------------------------
    @staticmethod
    def _quant_out(g: dict[str, Any], key: str = "out_scale") -> dict[str, Any]:
        """Output-quantization arguments of the kernel that produces GEMM `g`'s input: INT8 or FP8 in the scale `g`
        wants (keyword `key`), or none for a floating-point input."""
        if g["mode"] == "int8":
            return {key: g["in_scale"]}
        if g["mode"] == "fp8":
            return {key: g["in_scale"], "out_fp8": True}
        return {}

    def _ln(self, x: torch.Tensor, n: dict[str, Any], out_scale: float | None = None) -> torch.Tensor:
        """Plain LayerNorm over C of [B, H, W, C]: ln_shift_partition with 1 x 1 windows and no shift. -> [B*H*W, C]"""
        return ln_shift_partition(x, self.t[n["gamma"]], self.t[n["beta"]], n["eps"], 1, 0, out_scale)

    def _block(self, x: torch.Tensor, blk: dict[str, Any]) -> torch.Tensor:
        """One Swin block on the residual stream x [B, H, W, C] float16 -> [B, H, W, C] float16."""
        t = self.t
        B, H, W, C = x.shape
        ws, ss = blk["ws"], blk["ss"]
        n1, n2 = blk["norm1"], blk["norm2"]
        qkv_g, proj_g, fc1_g, fc2_g = blk["qkv"], blk["proj"], blk["fc1"], blk["fc2"]
        # the large-grid rule (AUTO_WIDE_FUSION): both halves fused where the grid has enough windows
        wide = (C <= self.wide_fusion[0] and self._num_windows(blk, B) >= self.wide_fusion[1]
                and blk["rel_bias"] + ":64" in t)
        fused_mlp = ((C <= self.fused_mlp_max_c or wide) and fc1_g["mode"] == fc2_g["mode"] == "fp16"
                     or self._fp8_mlp_fusable(blk, wide) or self._int8_mlp_fusable(blk, wide))
        if blk["rel_bias"] + ":64" in t and (C <= self.fused_attention_max_c or wide):  # _attention_fusable at load
            args = (x, t[n1["gamma"]], t[n1["beta"]], n1["eps"], t[qkv_g["weight"]], t[qkv_g["bias"]],
                    t[blk["rel_bias"] + ":64"], t[proj_g["weight"]], t[proj_g["bias"]], ws, ss, blk["attn_scale"])
            if qkv_g["mode"] == "fp8":  # the Triton kernel's FP8 form
                fused_attention_triton_(*args[:6], t[blk["rel_bias"] + ":64h"], *args[7:], None,
                                        (qkv_g["in_scale"], qkv_g["w_scale_value"], proj_g["in_scale"],
                                         proj_g["w_scale_value"]))
            elif qkv_g["mode"] == "int8":  # the Triton kernel's INT8 form
                fused_attention_triton_(*args[:6], t[blk["rel_bias"] + ":64h"], *args[7:], None, None,
                                        self._int8_attention_scales(blk))
            elif self.attention_kernel == "triton" and not self._hopper_attention(blk, B):
                fused_attention_triton_(*args[:6], t[blk["rel_bias"] + ":64h"], *args[7:])  # x += attention (in place)
            else:
                fused_attention_(*args)
            if fused_mlp:
                return self._fused_mlp(x, blk)
            h = ln_shift_partition(x, t[n2["gamma"]], t[n2["beta"]], n2["eps"], 1, 0, **self._quant_out(fc1_g))
            h = self._gemm(h, fc1_g, fp8_consumer=fc2_g if fc2_g["mode"] == "fp8" else None)  # B*H*W, 4C
            return self._gemm(h, fc2_g, residual=x.view(-1, C)).view(B, H, W, C)
        small = (B <= self.ln_gemm_max_batch and B * H * W <= self.ln_gemm_max_rows
                 and C <= self.ln_gemm_max_c)  # plugins/ln_gemm
        if small and qkv_g["name"] in self.folds:
            qkv = ln_gemm_triton(x, self.folds[qkv_g["name"]], n1["eps"], ("window", ws, ss))  # B*nW*N, 3C
        else:
            tok = ln_shift_partition(x, t[n1["gamma"]], t[n1["beta"]], n1["eps"], ws, ss, **self._quant_out(qkv_g))
            qkv = self._gemm(tok, qkv_g)  # B*nW*N, 3C
        s = qkv_g["out_scale"] if qkv.dtype == torch.int8 else 1.0
        if blk["rel_bias"] + ":w64" in t:  # _triton_window_attention_ok at load
            a = window_attention_triton_(qkv, t[blk["rel_bias"] + ":w64"], blk["nH"], blk["attn_scale"], H, W, ws, ss,
                                         out_scale=proj_g["in_scale"] if proj_g["mode"] == "fp8" else None)
        else:
            mask = t[blk["mask"]] if blk["mask"] else None
            a = window_attention(qkv, t[blk["rel_bias"]], mask, blk["nH"], blk["attn_scale"], s, s, s,
                                 **self._quant_out(proj_g))  # B*nW*N, C
        if small and a.dtype == torch.float16 and proj_g["act"] == "none" and self._fp16_unpadded(proj_g):
            gemm_window_reverse_triton(a, t[proj_g["weight"]], t[proj_g["bias"]] if proj_g["bias"] else None, x, ws,
                                       ss)  # x += attention branch (in place)
            if fused_mlp:
                return self._fused_mlp(x, blk)
            if fc1_g["name"] in self.folds:
                act = "none" if fc1_g["act"] != "gelu" else "gelu_tanh" if self.gelu == "tanh" else "gelu_erf"
                h = ln_gemm_triton(x.view(-1, C), self.folds[fc1_g["name"]], n2["eps"], ("rows",), act)  # B*H*W, 4C
            else:
                h = self._gemm(self._ln(x, n2, **self._quant_out(fc1_g)), fc1_g,
                               fp8_consumer=fc2_g if fc2_g["mode"] == "fp8" else None)
            return self._gemm(h, fc2_g, residual=x.view(-1, C)).view(B, H, W, C)
        y = self._gemm(a, proj_g)  # B*nW*N, C
        y_scale = proj_g["out_scale"] if y.dtype == torch.int8 else 1.0
        # Blocks within fused_mlp_max_c take the fused MLP at every batch size (at batch 1 it costs a little on the
        # H100: Swin-T erf GELU 0.540 ms with it vs 0.506 ms without); only the large-grid rule above depends on the
        # batch, so an image's logits can differ by FP16 rounding between batch buckets below and above it.
        if fused_mlp:
            window_reverse_(y, x, None, ws, ss, y_scale)  # x += attention branch (in place)
            return self._fused_mlp(x, blk)
        h = window_reverse_(y, x, None, ws, ss, y_scale, t[n2["gamma"]], t[n2["beta"]], n2["eps"],
                            **self._quant_out(fc1_g, "ln_out_scale"))  # x += attention branch (in place); h = norm2(x)
        h = self._gemm(h.view(-1, C), fc1_g, fp8_consumer=fc2_g if fc2_g["mode"] == "fp8" else None)  # B*H*W, 4C
        return self._gemm(h, fc2_g, residual=x.view(-1, C)).view(B, H, W, C)

    def _fp8_mlp_fusable(self, blk: dict[str, Any], wide: bool = False) -> bool:
        """Whether the block's MLP half runs as the Triton fused MLP's FP8 form: FP8 FC1 and FC2 (per-tensor weight
        scales), tanh GELU, C within fused_mlp_max_c (or a block the large-grid rule fuses: `wide`) and the Triton
        kernel's bound, the Triton MLP kernel."""
        fc1_g, fc2_g = blk["fc1"], blk["fc2"]
        return (self.mlp_kernel == "triton" and fc1_g["mode"] == fc2_g["mode"] == "fp8" and self.gelu == "tanh"
                and (blk["C"] <= self.fused_mlp_max_c or wide) and blk["C"] <= TRITON_MLP_MAX_C
                and fc2_g["out_scale"] is None
                and bool(fc1_g["bias"]) and bool(fc2_g["bias"]))

    def _int8_mlp_fusable(self, blk: dict[str, Any], wide: bool = False) -> bool:
        """Whether the block's MLP half runs as the Triton fused MLP's INT8 form: INT8 FC1 and FC2 with biases, FC1
        with the GELU and its int8 output in FC2's input scale, FC2's output quantized into the residual (recipe
        int8) or floating point (int8-fc2-pm-int32), Hd = 4C unpadded, C within fused_mlp_max_c (or a block the
        large-grid rule fuses: `wide`) and the Triton kernel's bound, the Triton MLP kernel. (The engine's GELU, tanh
        by default, as in its FP16 and FP8 MLPs; the unfused INT8 FC1's epilogue computes erf.)"""
        fc1_g, fc2_g, C = blk["fc1"], blk["fc2"], blk["C"]
        return (self.mlp_kernel == "triton" and fc1_g["mode"] == fc2_g["mode"] == "int8"
                and (C <= self.fused_mlp_max_c or wide) and C <= TRITON_MLP_MAX_C
                and fc1_g["act"] == "gelu" and fc2_g["act"] == "none" and bool(fc1_g["bias"]) and bool(fc2_g["bias"])
                and fc1_g["out_scale"] is not None and not fc1_g["out_qdq"]
                and abs(fc1_g["out_scale"] - fc2_g["in_scale"]) <= 1e-6 * fc2_g["in_scale"]
                and (fc2_g["out_scale"] is None or fc2_g["out_qdq"])
                and fc1_g["K"] == fc1_g["K_orig"] == C and fc1_g["N"] == fc1_g["N_orig"] == 4 * C
                and fc2_g["K"] == fc2_g["K_orig"] == 4 * C and fc2_g["N"] == fc2_g["N_orig"] == C)

    def _fused_mlp(self, x: torch.Tensor, blk: dict[str, Any]) -> torch.Tensor:
        """x += the block's MLP half (LN2 + FC1 + GELU + FC2), in place, in one kernel (self.mlp_kernel's; FP8 and
        INT8 MLPs the Triton kernel's FP8 / INT8 forms)."""
        t, n2, fc1_g, fc2_g = self.t, blk["norm2"], blk["fc1"], blk["fc2"]
        act = "gelu_tanh" if self.gelu == "tanh" else "gelu_erf"
        args = (x.view(-1, x.shape[-1]), t[n2["gamma"]], t[n2["beta"]], n2["eps"], t[fc1_g["weight"]],
                t[fc1_g["bias"]], t[fc2_g["weight"]], t[fc2_g["bias"]], act)
        if fc1_g["mode"] == "fp8":  # _fp8_mlp_fusable (tanh GELU)
            scales = (fc1_g["in_scale"], fc1_g["w_scale_value"], fc2_g["in_scale"], fc2_g["w_scale_value"])
            return fused_mlp_triton_(*args, None, scales).view(x.shape)
        if fc1_g["mode"] == "int8":  # _int8_mlp_fusable
            scales = Int8MlpScales(fc1_g["in_scale"], t[fc1_g["w_scale"]], fc2_g["in_scale"], t[fc2_g["w_scale"]],
                                   fc2_g["out_scale"])
            return fused_mlp_triton_(*args, None, None, scales).view(x.shape)
        triton = (self.mlp_kernel == "triton" and x.shape[-1] <= TRITON_MLP_MAX_C
                  and not self._hopper_mlp(blk, x.shape[0]))
        op = fused_mlp_triton_ if triton else fused_mlp_
        return op(*args).view(x.shape)

    def stem(self, images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Patch embedding (+ its LayerNorm) of images [B, Cin, H, W] on the engine's device -> the residual stream
        [B, H / p, W / p, C] float16 (written into `out` when given: the Triton stem only)."""
        plan, t = self.plan, self.t
        B = images.shape[0]
        cin, H0, W0 = self.input_shape
        p = plan["patch_size"]
        Hp, Wp = H0 // p, W0 // p
        pe, norm = plan["patch_embed"]["gemm"], plan["patch_embed"]["norm"]
        if self.stem_kernel:
            if images.dtype not in (torch.float32, torch.float16):  # the kernels read these two
                images = images.float()
            op = patch_embed if self.stem_kernel == "cuda" else patch_embed_triton
            return op(images, t[pe["weight"]], t[pe["bias"] + ":fp16"], p, t[norm["gamma"]] if norm else None,
                      t[norm["beta"]] if norm else None, norm["eps"] if norm else 1e-5, out=out)
        # p x p patches as GEMM rows: the permutation and the dtype cast in one copy kernel
        x = torch.empty((B, Hp, Wp, cin, p, p), device=images.device,
                        dtype=torch.float32 if pe["mode"] == "fp32" else torch.float16)
        x.copy_(images.reshape(B, cin, Hp, p, Wp, p).permute(0, 2, 4, 1, 3, 5))
        x = x.view(B * Hp * Wp, cin * p * p)
        x = self._gemm(x, pe).view(B, Hp, Wp, -1)  # B, Hp, Wp, C
        if norm:
            x = self._ln(x, norm).view(x.shape)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The whole network, eagerly, on images [B, Cin, H, W] already on the engine's device -> logits float32."""
        return self.body(self.stem(images))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The stages, final norm, pooling and head on the residual stream x [B, Hp, Wp, C] float16 -> logits."""
        if x.shape[0] <= self.pdl_max_batch:
            from trt_swin.plugins import triton_utils

            triton_utils.PDL = True
            try:
                return self._body(x)
            finally:
                triton_utils.PDL = False
        return self._body(x)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        plan, t = self.plan, self.t
        B = x.shape[0]
        for st in plan["stages"]:
            ds = st["downsample"]
            if ds and self._merge_in_one(ds, x):
                f = self.merge_folds[ds["gemm"]["name"]]
                x = patch_merge_gemm(x, f.weight, f.u, f.v, ds["norm"]["eps"])  # B, H/2, W/2, 2C
            elif ds:
                red = ds["gemm"]
                m = patch_merge(x, t[ds["norm"]["gamma"]], t[ds["norm"]["beta"]], ds["norm"]["eps"],
                                **self._quant_out(red))
                x = self._gemm(m.view(-1, m.shape[-1]), red).view(B, m.shape[1], m.shape[2], -1)  # B, H/2, W/2, 2C
            for blk in st["blocks"]:
                x = self._block(x, blk)
        C = x.shape[-1]
        head, n = plan["head"], plan["norm"]
        if self.triton_head:
            if head is None:
                return classifier_head_triton(x.view(B, -1, C), t[n["gamma"]], t[n["beta"]], n["eps"])
            N = head["N_orig"]  # the head's rows without the build's padding: the logits come out unpadded
            return classifier_head_triton(x.view(B, -1, C), t[n["gamma"]], t[n["beta"]], n["eps"],
                                          t[head["weight"]][:N], t[head["bias"]][:N] if head["bias"] else None)
        feats = self._ln(x, plan["norm"]).view(B, -1, C).mean(1, dtype=torch.float32)  # B, C
        if head is None:
            return feats
        return self._gemm(feats, head, final=True)[:, :head["N_orig"]].float()

    # ---- the public call ----------------------------------------------------------------------------------------
    def check_input(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != self.input_shape:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"engine {self.path} takes images [B, {', '.join(map(str, self.input_shape))}] "
                             f"(normalized with mean {self.mean}, std {self.std}), got {shape}")
        if not images.is_floating_point():
            raise ValueError(f"engine {self.path} takes floating-point images, got {images.dtype}")
        B = images.shape[0]
        if B < 1:
            raise ValueError(f"engine {self.path}: empty batch")
        if B > self.max_batch:
            raise ValueError(f"batch {B} exceeds the engine's max batch {self.max_batch} (built with --max-batch "
                             f"{self.max_batch}); split the batch or rebuild with a larger --max-batch")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes] float32 (on the engine's device) of images [B, Cin, H, W], 1 <= B <= max_batch."""
        self.check_input(images)
        images = images.to(self.device, non_blocking=True)
        if not self.cuda_graphs:
            return self.forward(images)
        B = images.shape[0]
        bucket = next(b for b in self.buckets if b >= B)
        graph, static_in, static_out = self._graph(bucket)
        if self.stem_kernel:  # the graph starts at the residual stream: the stem writes its input
            self.stem(images, out=static_in[:B])
        else:
            static_in[:B].copy_(images)
        graph.replay()
        # (The tail run after the replay into fresh tensors, instead of this copy, measured slower below batch 32: the
        # first kernel after a replay starts ~4 us late on the H100, BENCHMARKS.md session 17.)
        return static_out[:B].clone()

    def _graph(self, bucket: int):
        if bucket not in self._graphs:
            self._graphs[bucket] = self._capture(bucket)
        return self._graphs[bucket]

    def capture_all(self) -> None:
        """Capture every bucket's CUDA graph now (largest first, so the shared memory pool is sized once)."""
        for b in sorted(self.buckets, reverse=True):
            self._graph(b)

    def _capture(self, bucket: int):
        """(graph, static input, static output) of one bucket: the graph runs forward, or body after a one-kernel
        stem."""
        static_in = torch.zeros((bucket, *self.input_shape), device=self.device)
        run = self.forward
        if self.stem_kernel:
            static_in = self.stem(static_in)  # compiles the stem now; its output buffer is the graph's input
            run = self.body
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up outside capture: cuBLASLt heuristics, workspace, lazy module loads
            run(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            static_out = run(static_in)
        return graph, static_in, static_out

    def describe(self) -> dict[str, Any]:
        """Build record plus the runtime state (device, buckets captured)."""
        return {**self.build, "path": self.path, "device": str(self.device), "buckets": self.buckets,
                "captured": sorted(self._graphs)}


def load_native(path: str | Path, device: torch.device | str | None = None, cuda_graphs: bool = True,
                buckets: list[int] | None = None, capture: bool = True, verify: bool = True) -> NativeEngine:
    """Load a native engine file (validated: format, content hash, GPU and versions) and capture its CUDA graphs.

    Args:
        path: the `.engine` file.
        device: "cuda" (default when available) or "cpu" (the ops' PyTorch references: slow, for tests).
        cuda_graphs: replay per-bucket CUDA graphs (CUDA only).
        buckets: batch sizes to capture (default: powers of two and max_batch).
        capture: capture all buckets now rather than on first use.
        verify: check the content hash (detects corrupt files).
    """
    doc, tensors = read_engine(path, verify=verify)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    engine = NativeEngine(doc, tensors, device, cuda_graphs=cuda_graphs, buckets=buckets, path=path)
    if engine.cuda_graphs and capture:
        engine.capture_all()
    return engine


__all__ = ["EngineFormatError", "NativeEngine", "default_buckets", "load_native"]
