"""The deploy form of a timm Swin V1 model: blocks and patch merges rewritten around the fused plugins.

Per block (x: [B, H, W, C] residual stream):
    LnShiftPartition(x) -> [DQ] -> qkv GEMM -> [Q] -> WindowAttention -> [DQ] -> proj GEMM -> [Q]
    -> WindowReverse(y, x) -> (x', LN2(x')) -> [DQ] -> fc1 -> GELU -> fc2 -> x' + mlp
Per patch merge: PatchMerge(x) -> [DQ] -> reduction GEMM.
The bracketed Q/DQ appear for INT8 plugin I/O: a plugin writes INT8 exactly where the fake-quantized model quantizes
the same values (the consumer GEMM's input quantizer, the qkv / proj output quantizers), with that quantizer's scale;
the GEMM's own quantizer is then switched off in the deploy copy so nothing is quantized twice. Plugin inputs and
outputs are float16 (Cast nodes in the float32 graph); other quantizers (FP8, weights, fc2, reduction outputs) are
ModelOpt's own and export as its Q/DQ.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from trt_swin.plugins.window_attention.reference import gather_relative_position_bias, shift_mask

from .symbolic import dequantize_int8, plugin_call, quantize_int8


def int8_scale(quantizer: nn.Module | None) -> float | None:
    """The per-tensor INT8 scale (amax / 127) of an enabled ModelOpt 8-bit integer quantizer, else None."""
    if quantizer is None or getattr(quantizer, "_disabled", True):
        return None
    if getattr(quantizer, "num_bits", None) != 8 or quantizer.amax is None or quantizer.amax.numel() != 1:
        return None
    return float(quantizer.amax) / float(quantizer.maxbound)


def _take(module: nn.Module, name: str) -> float | None:
    """int8_scale of module.<name> and switch that quantizer off (the plugin I/O reproduces it)."""
    q = getattr(module, name, None)
    s = int8_scale(q)
    if s is not None:
        q.disable()
    return s


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().float().clone()


def _maybe_input_quant(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A LayerNorm input quantizer, when a rule enabled one, still applies to the plugin's input."""
    q = getattr(norm, "input_quantizer", None)
    return q(x) if q is not None and not q._disabled else x


class DeploySwinBlock(nn.Module):
    """A timm SwinTransformerBlock (eval) run through the three block plugins; same function, fused pieces."""

    def __init__(self, block: nn.Module):
        super().__init__()
        if block.window_size[0] != block.window_size[1] or block.shift_size[0] != block.shift_size[1]:
            raise ValueError(f"plugins need square windows and shifts, got window {block.window_size}, "
                             f"shift {block.shift_size}")
        if getattr(block, "dynamic_mask", False):
            raise ValueError("plugins need the static shift mask (timm dynamic_mask=False)")
        self.block = block
        attn = block.attn
        self.ws, self.shift, self.num_heads = block.window_size[0], block.shift_size[0], attn.num_heads
        self.register_buffer("rel_bias", gather_relative_position_bias(attn))      # nH, N, N
        mask = shift_mask(block)
        self.register_buffer("mask", mask if self.shift and mask is not None else None)  # nW, N, N
        self.register_buffer("ln1_w", _fp32(block.norm1.weight))
        self.register_buffer("ln1_b", _fp32(block.norm1.bias))
        self.register_buffer("ln2_w", _fp32(block.norm2.weight))
        self.register_buffer("ln2_b", _fp32(block.norm2.bias))
        self.eps1, self.eps2 = float(block.norm1.eps), float(block.norm2.eps)
        self.s_xw = _take(attn.qkv, "input_quantizer")        # LN1 windows -> qkv GEMM
        self.s_qkv = _take(attn.qkv, "output_quantizer")      # qkv GEMM -> attention
        self.s_attn = _take(attn.proj, "input_quantizer")     # attention -> proj GEMM
        self.s_y = _take(attn.proj, "output_quantizer")       # proj GEMM -> window reverse
        self.s_ln2 = _take(block.mlp.fc1, "input_quantizer")  # LN2 -> fc1 GEMM
        if self.s_ln2 is not None and getattr(block.norm2, "input_quantizer", None) is not None \
                and not block.norm2.input_quantizer._disabled:
            raise ValueError("norm2 input quantization cannot be fused into the window-reverse plugin")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C] float -> [B, H, W, C] float."""
        blk, attn = self.block, self.block.attn
        dt = x.dtype
        xw = plugin_call("ln_shift_partition", _maybe_input_quant(blk.norm1, x).half(), self.ln1_w, self.ln1_b,
                         window_size=self.ws, shift=self.shift, eps=self.eps1, out_int8=self.s_xw is not None,
                         out_scale=self.s_xw)                                   # B*nW*N, C
        xw = dequantize_int8(xw, self.s_xw).to(dt) if self.s_xw is not None else xw.to(dt)
        qkv = attn.qkv(xw)                                                      # B*nW*N, 3C
        qkv = quantize_int8(qkv, self.s_qkv) if self.s_qkv is not None else qkv.half()
        inputs = (qkv, self.rel_bias) if self.mask is None else (qkv, self.rel_bias, self.mask)
        a = plugin_call("window_attention", *inputs, num_heads=self.num_heads, scale=float(attn.scale),
                        qkv_int8=self.s_qkv is not None, q_scale=self.s_qkv, k_scale=self.s_qkv,
                        v_scale=self.s_qkv, out_int8=self.s_attn is not None, out_scale=self.s_attn)  # B*nW*N, C
        a = dequantize_int8(a, self.s_attn).to(dt) if self.s_attn is not None else a.to(dt)
        y = attn.proj(a)
        y = quantize_int8(y, self.s_y) if self.s_y is not None else y.half()
        out, ln = plugin_call("window_reverse", y, x.half(), self.ln2_w, self.ln2_b, window_size=self.ws,
                              shift=self.shift, y_int8=self.s_y is not None, y_scale=self.s_y, has_bias=0, has_ln=1,
                              eps=self.eps2, ln_out_int8=self.s_ln2 is not None, ln_out_scale=self.s_ln2)
        ln = dequantize_int8(ln, self.s_ln2).to(dt) if self.s_ln2 is not None else ln.to(dt)
        B, H, W, C = x.shape
        return out.to(dt) + blk.mlp(ln.reshape(B, H * W, C)).reshape(B, H, W, C)


class DeployPatchMerging(nn.Module):
    """A timm PatchMerging through the patch-merge plugin, then its reduction GEMM."""

    def __init__(self, pm: nn.Module):
        super().__init__()
        self.pm = pm
        self.register_buffer("ln_w", _fp32(pm.norm.weight))
        self.register_buffer("ln_b", _fp32(pm.norm.bias))
        self.eps = float(pm.norm.eps)
        self.s_out = _take(pm.reduction, "input_quantizer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C] -> [B, ceil(H/2), ceil(W/2), out_dim]."""
        dt = x.dtype
        m = plugin_call("patch_merge", _maybe_input_quant(self.pm.norm, x).half(), self.ln_w, self.ln_b,
                        eps=self.eps, out_int8=self.s_out is not None, out_scale=self.s_out)
        m = dequantize_int8(m, self.s_out).to(dt) if self.s_out is not None else m.to(dt)
        return self.pm.reduction(m)


def deploy_model(model: nn.Module) -> nn.Module:
    """A copy of the timm Swin V1 `model` (float or fake-quantized, eval) with every block and patch merge replaced by
    its plugin form. The input model is not modified."""
    from timm.models.swin_transformer import PatchMerging, SwinTransformerBlock

    if not hasattr(model, "layers"):
        raise TypeError(f"expected a timm SwinTransformer (V1), got {type(model).__name__}")
    m = copy.deepcopy(model).eval()
    n_blocks = 0
    for stage in m.layers:
        if isinstance(stage.downsample, PatchMerging):
            stage.downsample = DeployPatchMerging(stage.downsample)
        for i, blk in enumerate(stage.blocks):
            if not isinstance(blk, SwinTransformerBlock):
                raise TypeError(f"stage block {i} is {type(blk).__name__}, not a Swin V1 SwinTransformerBlock")
            stage.blocks[i] = DeploySwinBlock(blk)
            n_blocks += 1
    if n_blocks == 0:
        raise TypeError("the model has no SwinTransformerBlock to replace")
    return m
