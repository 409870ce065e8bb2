// LayerNorm of a 64-row fp16 tile in wgmma's canonical layout (common/wgmma.cuh: canon) into another (or the same)
// tile, by one warpgroup; shared by the Hopper fused attention and fused MLP kernels (kernel code only).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "common/mma.cuh"
#include "common/wgmma.cuh"

namespace trt_swin {

// Warp w normalizes 8-row groups w and w + 4; lane (q = lane / 8, r = lane % 8) holds row 8 grp + r, 16-byte chunks
// q + 4 i (conflict-free: 8 lanes on 8 consecutive rows of one chunk), two-pass FP32 statistics over the 4 lanes of a
// row (shuffles across q). Rows for which valid(row) is false are written as zeros (the padding). gamma / beta:
// FP32 [C], 16-byte aligned, in shared memory.
template <int C, class Valid>
__device__ __forceinline__ void layernorm_canon_tile(const unsigned char* src, unsigned char* dst, int warp, int lane,
                                                     const float* gamma, const float* beta, float eps, Valid valid) {
  constexpr int KC = C / 8;
  const int q = lane / 8, r = lane % 8;
#pragma unroll
  for (int grp = warp; grp < 8; grp += 4) {
    const int row = grp * 8 + r;
    float v[C / 32][8];
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < C / 32; ++i) {
      const uint4 raw = *reinterpret_cast<const uint4*>(src + canon(row, q + 4 * i, KC));
      const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        v[i][2 * e] = f.x;
        v[i][2 * e + 1] = f.y;
        s += f.x + f.y;
      }
    }
    s += __shfl_xor_sync(0xffffffffu, s, 8);
    s += __shfl_xor_sync(0xffffffffu, s, 16);
    const float mean = s * (1.f / C);
    float qs = 0.f;
#pragma unroll
    for (int i = 0; i < C / 32; ++i) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float d = v[i][e] - mean;
        qs += d * d;
      }
    }
    qs += __shfl_xor_sync(0xffffffffu, qs, 8);
    qs += __shfl_xor_sync(0xffffffffu, qs, 16);
    const float rstd = rsqrtf(qs * (1.f / C) + eps);
    const bool ok = valid(row);  // after the shuffles: every lane of the warp takes part in them
#pragma unroll
    for (int i = 0; i < C / 32; ++i) {
      const int c0 = (q + 4 * i) * 8;
      const float4 ga = *reinterpret_cast<const float4*>(gamma + c0);
      const float4 gb = *reinterpret_cast<const float4*>(gamma + c0 + 4);
      const float4 ba = *reinterpret_cast<const float4*>(beta + c0);
      const float4 bb = *reinterpret_cast<const float4*>(beta + c0 + 4);
      const float gm[8] = {ga.x, ga.y, ga.z, ga.w, gb.x, gb.y, gb.z, gb.w};
      const float bt[8] = {ba.x, ba.y, ba.z, ba.w, bb.x, bb.y, bb.z, bb.w};
      uint4 out;
      uint32_t* o32 = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        o32[e] = pack_half2(fmaf((v[i][2 * e] - mean) * rstd, gm[2 * e], bt[2 * e]),
                            fmaf((v[i][2 * e + 1] - mean) * rstd, gm[2 * e + 1], bt[2 * e + 1]));
      }
      if (!ok) out = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(dst + canon(row, q + 4 * i, KC)) = out;
    }
  }
}

}  // namespace trt_swin
