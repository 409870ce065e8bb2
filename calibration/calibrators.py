"""PTQ calibration of a ModelOpt fake-quantized model: max, percentile, entropy and mse.

ModelOpt 0.47's `mtq.quantize` crashes on histogram calibrators with `algorithm="max"` (trt_notes 6.4), so the flow
is manual: insert the quantizers without calibrating, collect statistics over the calibration batches (quantization
off, so every layer sees floating-point activations), then load each quantizer's amax with its own method. Weights
use `max` (per channel where the plan says so); activations use the plan's calibrator per quantizer.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from ..quant.rules import QuantPlan


class UncalibratedError(ValueError):
    """Enabled quantizers without amax: ModelOpt would silently quantize them with a per-batch dynamic range."""


def iter_quantizers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(module path, TensorQuantizer) of every quantizer in `model`, in model order."""
    from modelopt.torch.quantization.nn import TensorQuantizer

    for name, m in model.named_modules():
        if isinstance(m, TensorQuantizer):
            yield name, m


def is_quantized(model: nn.Module) -> bool:
    return next(iter_quantizers(model), None) is not None


def insert_quantizers(model: nn.Module, plan: QuantPlan) -> nn.Module:
    """Replace the quantizable modules of `model` (in place) by ModelOpt's, configured by `plan`, uncalibrated."""
    import modelopt.torch.quantization as mtq

    mtq.quantize(model, {"quant_cfg": plan.quant_cfg, "algorithm": None}, None)
    present = {n for n, q in iter_quantizers(model) if not q._disabled}
    expected = set(plan.enabled)
    if present != expected:  # the plan and ModelOpt's module registry disagree: say which quantizers
        raise RuntimeError(f"quantizers enabled by ModelOpt differ from the plan: missing {sorted(expected - present)[:5]}, "
                           f"unexpected {sorted(present - expected)[:5]}")
    return model


def _batches(loader: Iterable, device: torch.device, progress: bool, desc: str) -> Iterator[torch.Tensor]:
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if len(x):
            yield x.to(device)


@torch.no_grad()
def calibrate(model: nn.Module, plan: QuantPlan, loader: Iterable, device: str | torch.device = "cpu",
              progress: bool = True) -> dict[str, torch.Tensor]:
    """Collect statistics over `loader` ((images, labels) batches) and set the amax of every enabled quantizer.

    Args:
        model: a model after `insert_quantizers(model, plan)`, on `device`.
        plan: the plan that says which calibrator each quantizer uses.
        loader: calibration batches (images [B, C, H, W] first in each batch).
    Returns:
        amax by quantizer name (per-channel weights: [out_features, 1]; per-tensor: scalar).
    Raises:
        ValueError: the loader yields no images.
    """
    from modelopt.torch.quantization.model_calib import enable_stats_collection

    device = torch.device(device)
    model.eval()
    enable_stats_collection(model)
    n = 0
    for x in _batches(loader, device, progress, "calibrate"):
        model(x)
        n += len(x)
    if n == 0:
        raise ValueError("the calibration set is empty: no images reached the model; check --data and --calib-images")
    amax = {}
    for name, q in iter_quantizers(model):
        if q._disabled:
            continue
        spec = plan.quantizers[name]
        method = spec.calibrator.method
        if method == "percentile":
            q.load_calib_amax("percentile", percentile=spec.calibrator.percentile)
        elif method in ("entropy", "mse"):
            cal = q._calibrator
            if cal._calib_hist is None:
                raise RuntimeError(f"quantizer {name} saw no activations during calibration")
            hist = torch.as_tensor(cal._calib_hist).double().cpu()
            edges = torch.as_tensor(cal._calib_bin_edges).double().cpu()
            fn = entropy_amax if method == "entropy" else mse_amax
            q.amax = fn(hist, edges, spec.bits).float()
        else:
            q.load_calib_amax()
        q.enable_quant()
        q.disable_calib()
        amax[name] = q.amax.detach().cpu().clone()
    check_calibrated(model)
    return amax


def entropy_amax(hist: torch.Tensor, edges: torch.Tensor, bits: int | str = 8, start_bin: int = 128) -> torch.Tensor:
    """amax minimizing KL(P || Q) (TensorRT's entropy calibration) over a histogram of |x|.

    Same definition as ModelOpt's `_compute_amax_entropy` (which loops in Python and takes minutes per model):
    for each candidate clip bin i, P = hist[:i] with the tail folded into its last bin, Q = P merged into 2^(bits-1)
    levels and spread back uniformly over the non-empty bins; the last minimum wins.
    Args:
        hist: [nbins] counts of |x|; edges: [nbins + 1] bin edges.
    """
    if bits == "e4m3":
        raise ValueError("the entropy calibrator is defined for INT8 levels only; use max, percentile or mse for FP8")
    bins = hist.clone()
    bins[0] = bins[1]  # ModelOpt's convention: the zero bin is dominated by exact zeros
    nlevels = 1 << (int(bits) - 1)
    n = len(bins)
    cand = torch.arange(start_bin, n + 1, dtype=torch.float64)           # [K] candidate clip bins i
    j = torch.arange(n, dtype=torch.float64)                             # [n] bin index
    valid = j[None, :] < cand[:, None]                                   # [K, n]: bins below the clip
    level = (j[None, :] * nlevels / cand[:, None]).floor().long().clamp(0, nlevels - 1)
    nz = valid & (bins != 0)[None, :]
    w = torch.where(nz, bins[None, :].expand_as(nz), torch.zeros((), dtype=torch.float64))
    level_sum = torch.zeros(len(cand), nlevels, dtype=torch.float64).scatter_add_(1, level, w)
    level_cnt = torch.zeros(len(cand), nlevels, dtype=torch.float64).scatter_add_(1, level, nz.double())
    q = torch.where(nz, level_sum.gather(1, level) / level_cnt.gather(1, level).clamp_min(1), 0.0)
    p = torch.where(valid, bins[None, :].expand_as(valid), torch.zeros((), dtype=torch.float64))
    tail = bins.flip(0).cumsum(0).flip(0)                                # tail[k] = sum(bins[k:])
    last = cand.long() - 1
    rows = torch.arange(len(cand))
    p[rows, last] += torch.cat([tail, tail.new_zeros(1)])[last + 1]     # fold the clipped tail into the last bin
    p = p / p.sum(1, keepdim=True)
    q = q / q.sum(1, keepdim=True).clamp_min(1e-300)
    m = p > 0
    ratio = torch.where(m, p / q.where(m, torch.ones(())), torch.ones(()))
    kl = torch.where(m & (q > 0), p * ratio.log(), torch.where(m, torch.tensor(float("inf"), dtype=torch.float64), 0.0)).sum(1)
    best = len(kl) - 1 - int(torch.argmin(kl.flip(0)))                  # the last minimum, as ModelOpt
    return edges[int(cand[best])].clone()


def mse_amax(hist: torch.Tensor, edges: torch.Tensor, bits: int | str = 8, start_bin: int = 128) -> torch.Tensor:
    """amax minimizing the histogram-weighted quantize-dequantize MSE (ModelOpt's `_compute_amax_mse`, vectorized).

    Candidates are the bin centers from `start_bin` on; INT: round-half-even to [-(2^(b-1)-1), 2^(b-1)-1] levels of
    amax / (2^(b-1)-1); FP8 E4M3: scaled to 448 and cast.
    """
    centers = (edges[1:] + edges[:-1]) / 2
    cand = centers[start_bin:]                                     # [K]
    x = centers[None, :] / cand[:, None]                           # [K, nbins], in units of amax
    if bits == "e4m3":
        xq = (x * 448.0).clamp(-448.0, 448.0).float().to(torch.float8_e4m3fn).double() / 448.0
    else:
        qmax = (1 << (int(bits) - 1)) - 1
        xq = torch.round(x * qmax).clamp(-qmax, qmax) / qmax
    err = (((xq - x) * cand[:, None]) ** 2 * hist[None, :]).mean(1)
    return cand[int(torch.argmin(err))].clone()


def collect_amax(model: nn.Module) -> dict[str, torch.Tensor]:
    """amax of every enabled, calibrated quantizer."""
    return {n: q.amax.detach().cpu().clone() for n, q in iter_quantizers(model)
            if not q._disabled and q.amax is not None}


def apply_amax(model: nn.Module, amax: dict[str, torch.Tensor]) -> None:
    """Set stored amax values (a calibration cache) on the enabled quantizers; every one must be covered."""
    missing = [n for n, q in iter_quantizers(model) if not q._disabled and n not in amax]
    if missing:
        raise ValueError(f"calibration cache has no amax for {len(missing)} enabled quantizer(s), e.g. {missing[:3]}")
    for name, q in iter_quantizers(model):
        if not q._disabled:
            q.amax = amax[name].to(next(model.parameters()).device)
            q.enable_quant()
            q.disable_calib()


def check_calibrated(model: nn.Module, what: str = "model") -> None:
    """Raise UncalibratedError naming every enabled quantizer whose amax is missing or not finite and positive."""
    bad = []
    for name, q in iter_quantizers(model):
        if q._disabled or getattr(q, "_dynamic", False):
            continue
        a = q.amax
        if a is None or not bool(torch.isfinite(a).all()) or not bool((a > 0).all()):
            bad.append(f"{name} (amax={'missing' if a is None else 'invalid'})")
    if bad:
        raise UncalibratedError(
            f"{what} has {len(bad)} enabled quantizer(s) without a valid amax: {', '.join(bad[:6])}"
            + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")
            + ". Uncalibrated quantizers fall back to per-batch dynamic ranges and ruin accuracy (FasterTransformer "
            "issue #357); calibrate first: trt_swin quantize --mode ptq")


def forward_loop(loader: Iterable, device: str | torch.device = "cpu", progress: bool = True) -> Callable[[nn.Module], None]:
    """A ModelOpt-style forward_loop over `loader` (for callers that use `mtq.quantize` directly)."""
    def loop(model: nn.Module) -> None:
        with torch.no_grad():
            for x in _batches(loader, torch.device(device), progress, "calibrate"):
                model(x)

    return loop
