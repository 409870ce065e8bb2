// Window geometry of the fused attention kernels (kernel code only; the mma.sync kernel and the Hopper kernel both use
// it): which token of x a window row gathers, and timm's shift mask derived from window coordinates.
#pragma once
#include <cstdint>

namespace trt_swin {
namespace fattn {

// Region of the padded, shifted map that coordinate y (0 <= y < P, P = padded extent) falls in: timm's
// get_attn_mask slices (0, -ws), (-ws, -shift), (-shift, None).
__device__ __forceinline__ int region(int y, int P, int ws, int shift) { return y < P - ws ? 0 : (y < P - shift ? 1 : 2); }

// Token row of x that row r (< N = ws^2) of window w gathers (-1: padding outside the image), and its shift-mask
// region rid (0..8), for a [B, H, W] map in windows of ws with a cyclic shift: the shift, crop and padding of
// timm's block folded into the index math. nWh, nWw: windows per column / row of the padded map.
__device__ __forceinline__ void window_row(int w, int r, int H, int W, int ws, int shift, int nWh, int nWw, int& tok,
                                           int& rid) {
  const int b = w / (nWh * nWw), wi = w % (nWh * nWw);
  const int i = r / ws, j = r - (r / ws) * ws;
  const int y = (wi / nWw) * ws + i, xx = (wi % nWw) * ws + j;  // padded, shifted frame
  tok = y < H && xx < W ? (b * H + (y + shift) % H) * W + (xx + shift) % W : -1;
  rid = region(y, nWh * ws, ws, shift) * 3 + region(xx, nWw * ws, ws, shift);
}

// Mask bits of one thread's logits in the m16n8 accumulator layout (rows r0 and r0 + 8, lane column t = lane % 4):
// bit 2 nt + e of same0 / same1 says whether key 8 nt + 2 t + e lies in the same region as row r0 / r1. rid: the
// window's 64 region ids (rows >= N hold region 0: those keys are -inf in bias64 and those rows are dropped).
__device__ __forceinline__ void shift_mask_bits(const int8_t* rid, int r0, int r1, int t, uint32_t& same0,
                                                uint32_t& same1) {
  const int id0 = rid[r0], id1 = rid[r1];
  same0 = same1 = 0;
#pragma unroll
  for (int k = 0; k < 16; ++k) {
    const int idc = rid[(k / 2) * 8 + 2 * t + k % 2];
    same0 |= static_cast<uint32_t>(idc == id0) << k;
    same1 |= static_cast<uint32_t>(idc == id1) << k;
  }
}

}  // namespace fattn
}  // namespace trt_swin
