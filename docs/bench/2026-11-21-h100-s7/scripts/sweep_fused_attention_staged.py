"""Scratch (not committed): fused attention with the head outputs staged in an L2-resident workspace (no proj
accumulators live across the head loop), persistent grid-stride over windows, vs the committed kernel."""
import json, os
import torch, triton
import triton.language as tl
from trt_swin.plugins.fused_attention.triton_attention import _fused_attention_kernel, column_blocks, shift_regions, _wt
from trt_swin.plugins.fused_attention.reference import pad_bias


@triton.jit
def _fa_v3(x_ptr, gamma_ptr, beta_ptr, wqkv_ptr, bqkv_ptr, bias_ptr, wp_ptr, bp_ptr, ws_ptr, H, W, nWh, nWw, shift,
           eps, scale, total,
           C: tl.constexpr, C0: tl.constexpr, C1: tl.constexpr, NH: tl.constexpr, WS: tl.constexpr, NP: tl.constexpr):
    HD: tl.constexpr = 32
    LOG2E: tl.constexpr = 1.4426950408889634
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    r = tl.arange(0, NP)
    c0 = tl.arange(0, C0)
    d = tl.arange(0, HD)
    bias_offs = r[:, None] * 64 + r[None, :]
    wsp = ws_ptr + pid.to(tl.int64) * (NP * C) + r[:, None] * C  # this program's [NP, C] staging rows
    for win in range(pid, total, nprog):
        nW = nWh * nWw
        b = win // nW
        wy = (win % nW) // nWw
        wx = (win % nW) % nWw
        y = wy * WS + r // WS
        xx = wx * WS + r % WS
        inmap = (r < WS * WS) & (y < H) & (xx < W)
        src = (b * H + (y + shift) % H).to(tl.int64) * W + (xx + shift) % W
        rm = inmap[:, None]
        x0 = tl.load(x_ptr + src[:, None] * C + c0[None, :], mask=rm, other=0.0).to(tl.float32)
        s1 = tl.sum(x0, axis=1)
        if C1 > 0:
            c1 = C0 + tl.arange(0, C1)
            x1 = tl.load(x_ptr + src[:, None] * C + c1[None, :], mask=rm, other=0.0).to(tl.float32)
            s1 += tl.sum(x1, axis=1)
        mean = s1 / C
        d0 = x0 - mean[:, None]
        s2 = tl.sum(d0 * d0, axis=1)
        if C1 > 0:
            d1 = x1 - mean[:, None]
            s2 += tl.sum(d1 * d1, axis=1)
        rstd = tl.rsqrt(s2 / C + eps)
        h0 = d0 * rstd[:, None] * tl.load(gamma_ptr + c0)[None, :] + tl.load(beta_ptr + c0)[None, :]
        h0 = tl.where(rm, h0, 0.0).to(tl.float16)
        if C1 > 0:
            h1 = d1 * rstd[:, None] * tl.load(gamma_ptr + c1)[None, :] + tl.load(beta_ptr + c1)[None, :]
            h1 = tl.where(rm, h1, 0.0).to(tl.float16)
        rid = shift_regions(y, xx, nWh, nWw, WS, shift)
        for h in range(NH):
            hq = h * HD
            q = tl.dot(h0, _wt(wqkv_ptr, hq, C, c0, d))
            k = tl.dot(h0, _wt(wqkv_ptr, C + hq, C, c0, d))
            v = tl.dot(h0, _wt(wqkv_ptr, 2 * C + hq, C, c0, d))
            if C1 > 0:
                q = tl.dot(h1, _wt(wqkv_ptr, hq, C, c1, d), q)
                k = tl.dot(h1, _wt(wqkv_ptr, C + hq, C, c1, d), k)
                v = tl.dot(h1, _wt(wqkv_ptr, 2 * C + hq, C, c1, d), v)
            q = (q + tl.load(bqkv_ptr + hq + d)[None, :]).to(tl.float16)
            k = (k + tl.load(bqkv_ptr + C + hq + d)[None, :]).to(tl.float16)
            v = (v + tl.load(bqkv_ptr + 2 * C + hq + d)[None, :]).to(tl.float16)
            bias = tl.load(bias_ptr + h * 4096 + bias_offs).to(tl.float32)
            s = tl.dot(q, tl.trans(k)) * scale + bias + tl.where(rid[:, None] != rid[None, :], -100.0, 0.0)
            m = tl.max(s, axis=1)
            p = tl.exp2((s - m[:, None]) * LOG2E)
            o = (tl.dot(p.to(tl.float16), v) / tl.sum(p, axis=1)[:, None]).to(tl.float16)
            tl.store(wsp + hq + d[None, :], o)
        tl.debug_barrier()  # the head outputs, written by all warps, are read back as whole rows
        o0 = tl.load(wsp + c0[None, :])
        acc0 = tl.dot(o0, tl.load(wp_ptr + c0[None, :] * C + c0[:, None]))
        if C1 > 0:
            o1 = tl.load(wsp + c1[None, :])
            acc0 = tl.dot(o1, tl.load(wp_ptr + c0[None, :] * C + c1[:, None]), acc0)
            acc1 = tl.dot(o0, tl.load(wp_ptr + c1[None, :] * C + c0[:, None]))
            acc1 = tl.dot(o1, tl.load(wp_ptr + c1[None, :] * C + c1[:, None]), acc1)
        tl.debug_barrier()  # before the next window overwrites the staging rows
        y0 = (acc0 + tl.load(bp_ptr + c0)[None, :]).to(tl.float16).to(tl.float32)
        offs0 = src[:, None] * C + c0[None, :]
        y0 += tl.load(x_ptr + offs0, mask=rm, other=0.0).to(tl.float32)
        tl.store(x_ptr + offs0, y0.to(tl.float16), mask=rm)
        if C1 > 0:
            y1 = (acc1 + tl.load(bp_ptr + c1)[None, :]).to(tl.float16).to(tl.float32)
            offs1 = src[:, None] * C + c1[None, :]
            y1 += tl.load(x_ptr + offs1, mask=rm, other=0.0).to(tl.float32)
            tl.store(x_ptr + offs1, y1.to(tl.float16), mask=rm)


@triton.jit
def _fa_v4(x_ptr, gamma_ptr, beta_ptr, wqkv_ptr, bqkv_ptr, bias_ptr, wp_ptr, bp_ptr, ws_ptr, H, W, nWh, nWw, shift,
           eps, scale, total,
           C: tl.constexpr, C0: tl.constexpr, C1: tl.constexpr, NH: tl.constexpr, WS: tl.constexpr, NP: tl.constexpr):
    HD: tl.constexpr = 32
    LOG2E: tl.constexpr = 1.4426950408889634
    win = tl.program_id(0)
    r = tl.arange(0, NP)
    c0 = tl.arange(0, C0)
    d = tl.arange(0, HD)
    bias_offs = r[:, None] * 64 + r[None, :]
    wsp = ws_ptr + win.to(tl.int64) * (NP * C) + r[:, None] * C  # this window's [NP, C] staging rows
    if win < total:
        nW = nWh * nWw
        b = win // nW
        wy = (win % nW) // nWw
        wx = (win % nW) % nWw
        y = wy * WS + r // WS
        xx = wx * WS + r % WS
        inmap = (r < WS * WS) & (y < H) & (xx < W)
        src = (b * H + (y + shift) % H).to(tl.int64) * W + (xx + shift) % W
        rm = inmap[:, None]
        x0 = tl.load(x_ptr + src[:, None] * C + c0[None, :], mask=rm, other=0.0).to(tl.float32)
        s1 = tl.sum(x0, axis=1)
        if C1 > 0:
            c1 = C0 + tl.arange(0, C1)
            x1 = tl.load(x_ptr + src[:, None] * C + c1[None, :], mask=rm, other=0.0).to(tl.float32)
            s1 += tl.sum(x1, axis=1)
        mean = s1 / C
        d0 = x0 - mean[:, None]
        s2 = tl.sum(d0 * d0, axis=1)
        if C1 > 0:
            d1 = x1 - mean[:, None]
            s2 += tl.sum(d1 * d1, axis=1)
        rstd = tl.rsqrt(s2 / C + eps)
        h0 = d0 * rstd[:, None] * tl.load(gamma_ptr + c0)[None, :] + tl.load(beta_ptr + c0)[None, :]
        h0 = tl.where(rm, h0, 0.0).to(tl.float16)
        if C1 > 0:
            h1 = d1 * rstd[:, None] * tl.load(gamma_ptr + c1)[None, :] + tl.load(beta_ptr + c1)[None, :]
            h1 = tl.where(rm, h1, 0.0).to(tl.float16)
        rid = shift_regions(y, xx, nWh, nWw, WS, shift)
        for h in range(NH):
            hq = h * HD
            q = tl.dot(h0, _wt(wqkv_ptr, hq, C, c0, d))
            k = tl.dot(h0, _wt(wqkv_ptr, C + hq, C, c0, d))
            v = tl.dot(h0, _wt(wqkv_ptr, 2 * C + hq, C, c0, d))
            if C1 > 0:
                q = tl.dot(h1, _wt(wqkv_ptr, hq, C, c1, d), q)
                k = tl.dot(h1, _wt(wqkv_ptr, C + hq, C, c1, d), k)
                v = tl.dot(h1, _wt(wqkv_ptr, 2 * C + hq, C, c1, d), v)
            q = (q + tl.load(bqkv_ptr + hq + d)[None, :]).to(tl.float16)
            k = (k + tl.load(bqkv_ptr + C + hq + d)[None, :]).to(tl.float16)
            v = (v + tl.load(bqkv_ptr + 2 * C + hq + d)[None, :]).to(tl.float16)
            bias = tl.load(bias_ptr + h * 4096 + bias_offs).to(tl.float32)
            s = tl.dot(q, tl.trans(k)) * scale + bias + tl.where(rid[:, None] != rid[None, :], -100.0, 0.0)
            m = tl.max(s, axis=1)
            p = tl.exp2((s - m[:, None]) * LOG2E)
            o = (tl.dot(p.to(tl.float16), v) / tl.sum(p, axis=1)[:, None]).to(tl.float16)
            tl.store(wsp + hq + d[None, :], o)
        tl.debug_barrier()  # the head outputs, written by all warps, are read back as whole rows
        o0 = tl.load(wsp + c0[None, :])
        acc0 = tl.dot(o0, tl.load(wp_ptr + c0[None, :] * C + c0[:, None]))
        if C1 > 0:
            o1 = tl.load(wsp + c1[None, :])
            acc0 = tl.dot(o1, tl.load(wp_ptr + c0[None, :] * C + c1[:, None]), acc0)
            acc1 = tl.dot(o0, tl.load(wp_ptr + c1[None, :] * C + c0[:, None]))
            acc1 = tl.dot(o1, tl.load(wp_ptr + c1[None, :] * C + c1[:, None]), acc1)
        tl.debug_barrier()  # before the next window overwrites the staging rows
        y0 = (acc0 + tl.load(bp_ptr + c0)[None, :]).to(tl.float16).to(tl.float32)
        offs0 = src[:, None] * C + c0[None, :]
        y0 += tl.load(x_ptr + offs0, mask=rm, other=0.0).to(tl.float32)
        tl.store(x_ptr + offs0, y0.to(tl.float16), mask=rm)
        if C1 > 0:
            y1 = (acc1 + tl.load(bp_ptr + c1)[None, :]).to(tl.float16).to(tl.float32)
            offs1 = src[:, None] * C + c1[None, :]
            y1 += tl.load(x_ptr + offs1, mask=rm, other=0.0).to(tl.float32)
            tl.store(x_ptr + offs1, y1.to(tl.float16), mask=rm)




def run_v4(x, g, be, wqkv, bqkv, bias, wp, bp, res, shift, warps=4, stages=2, ws=7, maxnreg=None):
    B, C = x.shape[0], x.shape[3]
    nWh = nWw = -(-res // ws)
    c0, c1 = column_blocks(C)
    total = B * nWh * nWw
    wsbuf = torch.empty((total, 64, C), dtype=torch.float16, device=x.device)
    _fa_v4[(total,)](x, g, be, wqkv, bqkv, bias, wp, bp, wsbuf, res, res, nWh, nWw, shift, 1e-5, 32 ** -0.5, total,
                     C=C, C0=c0, C1=c1, NH=C // 32, WS=ws, NP=64, num_warps=warps, num_stages=stages,
                     **({"maxnreg": maxnreg} if maxnreg else {}))


def run_v3(x, g, be, wqkv, bqkv, bias, wp, bp, res, shift, nprog, warps=4, stages=2, ws=7):
    B, C = x.shape[0], x.shape[3]
    nWh = nWw = -(-res // ws)
    c0, c1 = column_blocks(C)
    total = B * nWh * nWw
    nprog = min(nprog, total)
    wsbuf = torch.empty((nprog, 64, C), dtype=torch.float16, device=x.device)
    _fa_v3[(nprog,)](x, g, be, wqkv, bqkv, bias, wp, bp, wsbuf, res, res, nWh, nWw, shift, 1e-5, 32 ** -0.5, total,
                     C=C, C0=c0, C1=c1, NH=C // 32, WS=ws, NP=64, num_warps=warps, num_stages=stages)


if __name__ == "__main__":
    from trt_swin.plugins.bench_utils import time_ms
    dev = "cuda"; out = []
    nsm = torch.cuda.get_device_properties(0).multi_processor_count
    for C, res in ((96, 56), (128, 56), (192, 28)):
        for shift in (3,):
            B, ws, nH = 128, 7, C // 32
            g = 1 + 0.1 * torch.randn(C, device=dev); be = 0.1 * torch.randn(C, device=dev)
            wqkv = (torch.randn(3 * C, C, device=dev) * C ** -0.5).half(); bqkv = 0.1 * torch.randn(3 * C, device=dev)
            bias = pad_bias(torch.randn(nH, 49, 49, device=dev)).half()
            wp = (torch.randn(C, C, device=dev) * C ** -0.5).half(); bp = 0.01 * torch.randn(C, device=dev)
            x0 = torch.randn(B, res, res, C, device=dev).half()
            nWh = -(-res // ws); c0, c1 = column_blocks(C)
            base = lambda x: _fused_attention_kernel[(B * nWh * nWh,)](x, g, be, wqkv, bqkv, bias, wp, bp, res, res, nWh, nWh, shift, 1e-5, 32 ** -0.5, C=C, C0=c0, C1=c1, NH=nH, WS=ws, NP=64, num_warps=4, num_stages=2)
            ref = x0.clone(); base(ref)
            variants = [("base", base)]
            for st in (1, 2):
                for mr in (None, 168):
                    variants.append((f"v4_st{st}_mr{mr}", lambda x, st=st, mr=mr: run_v4(x, g, be, wqkv, bqkv, bias, wp, bp, res, shift, 4, st, maxnreg=mr)))
            for per_sm in (3,):
                for st in (1, 2):
                    variants.append((f"v3_{per_sm}perSM_st{st}", lambda x, n=per_sm * nsm, st=st: run_v3(x, g, be, wqkv, bqkv, bias, wp, bp, res, shift, n, 4, st)))
            for name, fn in variants:
                try:
                    y = x0.clone(); fn(y)
                    err = (y.float() - ref.float()).abs().max().item()
                    xx = x0.clone()
                    ms = time_ms(lambda: fn(xx), rep=100)
                except Exception as e:
                    ms, err = None, repr(e)[:300]
                r = dict(C=C, res=res, shift=shift, variant=name, ms=ms, max_abs_err_vs_base=err)
                print(json.dumps(r), flush=True); out.append(r)
    json.dump(out, open(os.path.join(os.environ.get("OUT", "/tmp"), "exp3.json"), "w"), indent=1)
