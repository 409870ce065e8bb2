// Fused attention-half kernel template (included by fused_attention.cu only).
//
// CTA = WPC windows, 4 warps per window; warp (window wl, tile mt) owns query rows [16 mt, 16 mt + 16) of its
// window, whose keys are padded to 64 (rows >= N of the tile are zero, their keys get -inf from bias64).
//   (1) gather the window's rows of x (shift, crop and padding in the index math; cp.async 16 B, zero-fill) into sA,
//       and LayerNorm them in place to fp16 (one warp per row, FP32 statistics); padded rows stay zero.
//   (2) per head h, with head h + 1's weights streaming into the other half of a double-buffered stage (the three
//       32-row q / k / v slabs of w_qkv and the 32 columns of w_proj that head h feeds; all CTAs read the same
//       weights, which stay L2-resident):
//         k, v = A Wk^T + bk, A Wv^T + bv    warp's 16 rows, fp16 into the window's sK / sV
//         q = A Wq^T + bq                    kept in registers as the A fragment of q k^T (FlashAttention's trick)
//         S = q k^T * scale + bias64[h] + mask, softmax, O = P v       (wattn::softmax_pv)
//         Y += fp16(O / rowsum) Wproj[:, 32h:32h+32]^T                FP32 accumulators across all heads
//   (3) epilogue: fp16(Y + b_proj) staged in the warp's own sA rows, then x[row] += it with 16-byte accesses.
// Barriers: one CTA barrier per head (the stage has landed; every warp is done with the previous head's sK / sV),
// and one per window per head between writing k, v and reading them (named barrier of the window's 4 warps).
#pragma once
#include <cuda_fp16.h>
#include <cstdint>

#include "common/cuda_check.h"
#include "common/mma.cuh"
#include "common/smem_layernorm.cuh"
#include "fused_attention/fused_attention.h"
#include "fused_attention/window_geometry.cuh"
#include "window_attention/window_attention_kernel.cuh"  // wattn::softmax_pv

namespace trt_swin {
namespace fattn {

constexpr int kHd = 32;         // head_dim of every Swin V1 model
constexpr int kNK = 64;         // keys (and query rows) per window, padded
constexpr int kPad = 8;         // row padding in halves: row strides are odd multiples of 16 B mod 128 -> ldmatrix is
                                // conflict-free
constexpr int kLDH = kHd + kPad;  // stride of sK / sV and of the w_proj slice

template <int C_, int WPC_>
struct Tile {
  static constexpr int C = C_;
  static constexpr int WPC = WPC_;
  static constexpr int NH = C / kHd;
  static constexpr int kWarps = 4 * WPC;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int LDA = C + kPad;
  static constexpr int A_HALVES = WPC * kNK * LDA;
  static constexpr int WQKV_HALVES = 3 * kHd * LDA;  // q, k, v slabs of one head: rows [part * 32 + j]
  static constexpr int WP_HALVES = C * kLDH;          // w_proj[:, 32h : 32h + 32]: rows n, 32 columns
  static constexpr int STAGE_HALVES = WQKV_HALVES + WP_HALVES;
  static constexpr int KV_HALVES = WPC * 2 * kNK * kLDH;
  // + per tile row: token index (int) and mask region (int8)
  static constexpr int kSmemBytes = (A_HALVES + 2 * STAGE_HALVES + KV_HALVES) * 2 + WPC * kNK * 5;
  // Two resident CTAs per SM where their shared memory fits (228 KB on H100, 1 KB reserved per CTA).
  static constexpr int kMinBlocks = 2 * (kSmemBytes + 1024) <= 228 * 1024 ? 2 : 1;
  static_assert(C % kHd == 0 && C >= 32 && C <= 192, "C: multiple of 32 in [32, 192]");
  static_assert(WPC == 1 || WPC == 2, "one or two windows per CTA");
};

// Barrier of the 4 warps of window wl (ids 1, 2; 0 is __syncthreads). Immediate ids: a register id makes ptxas
// reserve all 16 barriers.
__device__ __forceinline__ void window_barrier(int wl) {
  if (wl == 0) {
    asm volatile("bar.sync 1, 128;\n" ::: "memory");
  } else {
    asm volatile("bar.sync 2, 128;\n" ::: "memory");
  }
}


template <class K>
__global__ void __launch_bounds__(K::kThreads, K::kMinBlocks) fused_attention_kernel(FusedAttentionParams p) {
  constexpr int C = K::C, LDA = K::LDA, NH = K::NH;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sA = reinterpret_cast<__half*>(smem_raw);
  __half* sW = sA + K::A_HALVES;          // 2 stages of [w_qkv slabs | w_proj slice]
  __half* sKV = sW + 2 * K::STAGE_HALVES;  // per window: k [64][40], v [64][40]
  int* sTok = reinterpret_cast<int*>(sKV + K::KV_HALVES);  // per tile row: token index into x, or -1 (padding)
  int8_t* sRid = reinterpret_cast<int8_t*>(sTok + K::WPC * kNK);  // per tile row: shift-mask region (0..8)

  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;
  const int wl = warp / 4, mt = warp % 4;
  const int ws = p.ws, shift = p.shift, N = ws * ws;
  const int nWh = (p.H + ws - 1) / ws, nWw = (p.W + ws - 1) / ws;
  const int64_t num_windows = static_cast<int64_t>(p.B) * nWh * nWw;
  const int64_t w0 = static_cast<int64_t>(blockIdx.x) * K::WPC;

  auto load_head = [&](int h, int stage) {
    __half* wq = sW + stage * K::STAGE_HALVES;
    __half* wp = wq + K::WQKV_HALVES;
    for (int i = tid; i < 3 * kHd * (C / 8); i += K::kThreads) {
      const int r = i / (C / 8), c8 = i % (C / 8);  // r = part * 32 + j
      const int grow = (r / kHd) * C + h * kHd + r % kHd;
      copy16(wq + r * LDA + c8 * 8, p.w_qkv + static_cast<int64_t>(grow) * C + c8 * 8);
    }
    for (int i = tid; i < C * (kHd / 8); i += K::kThreads) {
      const int n = i / (kHd / 8), c8 = i % (kHd / 8);
      copy16(wp + n * kLDH + c8 * 8, p.w_proj + static_cast<int64_t>(n) * C + h * kHd + c8 * 8);
    }
  };

  // ---- (1) token row and shift-mask region of every tile row, once (index math off the per-chunk path), then the
  // gather: tile row (wl, r) is window w0 + wl's token r; rows outside the window or the image are zeros.
  for (int row = tid; row < K::WPC * kNK; row += K::kThreads) {
    const int64_t w = w0 + row / kNK;
    const int r = row % kNK;
    int tok = -1, rid = 0;
    if (w < num_windows && r < N) {  // num_windows <= B * H * W < 2^31 (checked on the host)
      window_row(static_cast<int>(w), r, p.H, p.W, ws, shift, nWh, nWw, tok, rid);
    }
    sTok[row] = tok;
    sRid[row] = static_cast<int8_t>(rid);
  }
  __syncthreads();
  for (int i = tid; i < K::WPC * kNK * (C / 8); i += K::kThreads) {
    const int row = i / (C / 8), c8 = i % (C / 8);
    const int tok = sTok[row];
    copy16(sA + row * LDA + c8 * 8, p.x + static_cast<int64_t>(tok >= 0 ? tok : 0) * C + c8 * 8, tok >= 0);
  }
  copy_commit();
  load_head(0, 0);
  copy_commit();
  copy_wait<1>();  // the rows have landed; head 0's weights may still be in flight
  __syncthreads();

  // LayerNorm in place, one warp per row.
  for (int row = warp; row < K::WPC * kNK; row += K::kWarps) {
    if (sTok[row] < 0) continue;  // padding stays zero (timm pads after norm1)
    layernorm_row_inplace<C>(sA + row * LDA, lane, p.gamma, p.beta, p.eps);
  }

  // Shift mask of this thread's logits, head-independent: bit (2 nt + e) of same0 / same1 says whether key
  // 8 nt + 2t + e is in the same region as query row r0 / r1. Unshifted blocks: all same. Rows >= N hold region 0:
  // those keys are -inf in bias64 and those query rows are dropped.
  const int r0 = mt * 16 + g, r1 = r0 + 8;
  uint32_t same0 = 0xffffffffu, same1 = 0xffffffffu;
  if (shift > 0) shift_mask_bits(sRid + wl * kNK, r0, r1, t, same0, same1);

  float y[C / 8][4];
#pragma unroll
  for (int j = 0; j < C / 8; ++j) y[j][0] = y[j][1] = y[j][2] = y[j][3] = 0.f;

  const __half* a_row = sA + (wl * kNK + mt * 16 + (lane % 16)) * LDA + (lane / 16) * 8;  // ldmatrix A address
  const int b_row = (lane / 16) * 8 + (lane % 8);  // ldmatrix B (W rows = output columns) row / column offsets
  const int b_col = ((lane / 8) % 2) * 8;
  __half* sK = sKV + wl * 2 * kNK * kLDH;
  __half* sV = sK + kNK * kLDH;

  // One 16 x 32 slab of this warp's rows: acc = A W[part]^T over K = C.
  auto qkv_part = [&](const __half* wq, int part, float (&acc)[4][4]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < C / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, a_row + ks * 16);
#pragma unroll
      for (int nt = 0; nt < 4; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, wq + (part * kHd + nt * 8 + b_row) * LDA + ks * 16 + b_col);
        mma_16816(acc[nt], a, b[0], b[1]);
        mma_16816(acc[nt + 1], a, b[2], b[3]);
      }
    }
  };

  for (int h = 0; h < NH; ++h) {
    copy_wait<0>();   // head h's weights have landed (this thread's copies) ...
    __syncthreads();  // ... everyone's; and every warp is done with head h - 1 (its stage, sK, sV)
    if (h + 1 < NH) load_head(h + 1, (h + 1) & 1);
    copy_commit();
    const __half* wq = sW + (h & 1) * K::STAGE_HALVES;
    const __half* wp = wq + K::WQKV_HALVES;
    const float* bq = p.b_qkv + h * kHd;

    // k and v of this warp's 16 rows -> the window's sK / sV (fp16, + bias in FP32 first)
#pragma unroll
    for (int part = 1; part <= 2; ++part) {
      float acc[4][4];
      qkv_part(wq, part, acc);
      __half* dst = part == 1 ? sK : sV;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int c = nt * 8 + 2 * t;
        const float2 bb = __ldg(reinterpret_cast<const float2*>(bq + part * C + c));
        *reinterpret_cast<uint32_t*>(dst + r0 * kLDH + c) = pack_half2(acc[nt][0] + bb.x, acc[nt][1] + bb.y);
        *reinterpret_cast<uint32_t*>(dst + r1 * kLDH + c) = pack_half2(acc[nt][2] + bb.x, acc[nt][3] + bb.y);
      }
    }
    // q: its accumulators, + bias and rounded to fp16, are the A fragments of q k^T's two k16 steps
    uint32_t qa[2][4];
    {
      float acc[4][4];
      qkv_part(wq, 0, acc);
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const float2 bb = __ldg(reinterpret_cast<const float2*>(bq + nt * 8 + 2 * t));
        qa[nt / 2][(nt % 2) * 2 + 0] = pack_half2(acc[nt][0] + bb.x, acc[nt][1] + bb.y);
        qa[nt / 2][(nt % 2) * 2 + 1] = pack_half2(acc[nt][2] + bb.x, acc[nt][3] + bb.y);
      }
    }
    window_barrier(wl);  // the window's 64 k / v rows are in shared memory

    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
#pragma unroll
      for (int nt = 0; nt < 8; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, sK + (nt * 8 + (lane / 16) * 8 + (lane % 8)) * kLDH + ks * 16 + ((lane / 8) % 2) * 8);
        mma_16816(s[nt], qa[ks], b[0], b[1]);
        mma_16816(s[nt + 1], qa[ks], b[2], b[3]);
      }
    }
    // logits = S * scale + (bias + mask) in FP32, as window_attention; bias64's -inf marks the padded keys
    const float* t0 = p.bias64 + (static_cast<int64_t>(h) * kNK + r0) * kNK + 2 * t;
    const float* t1 = t0 + 8 * kNK;
    float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const float2 b0 = __ldg(reinterpret_cast<const float2*>(t0 + nt * 8));
      const float2 b1 = __ldg(reinterpret_cast<const float2*>(t1 + nt * 8));
      const int k = 2 * nt;
      s[nt][0] = fmaf(s[nt][0], p.scale, (same0 >> k & 1u) ? b0.x : b0.x + -100.f);
      s[nt][1] = fmaf(s[nt][1], p.scale, (same0 >> (k + 1) & 1u) ? b0.y : b0.y + -100.f);
      s[nt][2] = fmaf(s[nt][2], p.scale, (same1 >> k & 1u) ? b1.x : b1.x + -100.f);
      s[nt][3] = fmaf(s[nt][3], p.scale, (same1 >> (k + 1) & 1u) ? b1.y : b1.y + -100.f);
      m0 = fmaxf(m0, fmaxf(s[nt][0], s[nt][1]));
      m1 = fmaxf(m1, fmaxf(s[nt][2], s[nt][3]));
    }
    float o[4][4], l0, l1;
    wattn::softmax_pv<8, kNK, 4, kLDH>(s, m0, m1, sV, lane, o, l0, l1);
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f;
    const float inv1 = l1 > 0.f ? 1.f / l1 : 0.f;

    // Y += fp16(O) Wproj_h^T: O's accumulators are the A fragments of the projection's two k16 steps
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      const uint32_t oa[4] = {pack_half2(o[2 * ks][0] * inv0, o[2 * ks][1] * inv0),
                              pack_half2(o[2 * ks][2] * inv1, o[2 * ks][3] * inv1),
                              pack_half2(o[2 * ks + 1][0] * inv0, o[2 * ks + 1][1] * inv0),
                              pack_half2(o[2 * ks + 1][2] * inv1, o[2 * ks + 1][3] * inv1)};
#pragma unroll
      for (int dt = 0; dt < C / 8; dt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, wp + (dt * 8 + b_row) * kLDH + ks * 16 + b_col);
        mma_16816(y[dt], oa, b[0], b[1]);
        mma_16816(y[dt + 1], oa, b[2], b[3]);
      }
    }
  }

  // ---- (3) fp16(Y + b_proj) into this warp's own sA rows (only this warp read them), then x[tok] += row.
  __half* stage = sA + (wl * kNK + mt * 16) * LDA;
#pragma unroll
  for (int dt = 0; dt < C / 8; ++dt) {
    const int c = dt * 8 + 2 * t;
    const float2 bb = __ldg(reinterpret_cast<const float2*>(p.b_proj + c));
    *reinterpret_cast<uint32_t*>(stage + g * LDA + c) = pack_half2(y[dt][0] + bb.x, y[dt][1] + bb.y);
    *reinterpret_cast<uint32_t*>(stage + (g + 8) * LDA + c) = pack_half2(y[dt][2] + bb.x, y[dt][3] + bb.y);
  }
  __syncwarp();
  const int* tok_rows = sTok + wl * kNK + mt * 16;
  for (int j = lane; j < 16 * (C / 8); j += 32) {
    const int r = j / (C / 8), c8 = j % (C / 8);
    const int tok = tok_rows[r];
    if (tok < 0) continue;
    uint4* px = reinterpret_cast<uint4*>(p.x + static_cast<int64_t>(tok) * C + c8 * 8);
    const uint4 xv = *px;
    const uint4 yv = *reinterpret_cast<const uint4*>(stage + r * LDA + c8 * 8);
    const __half2* xh = reinterpret_cast<const __half2*>(&xv);
    const __half2* yh = reinterpret_cast<const __half2*>(&yv);
    uint4 out;
    __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 a = __half22float2(xh[e]), b = __half22float2(yh[e]);
      oh[e] = __floats2half2_rn(a.x + b.x, a.y + b.y);
    }
    *px = out;
  }
}

template <int C, int WPC>
cudaError_t launch(const FusedAttentionParams& p, int64_t num_windows, cudaStream_t stream) {
  using K = Tile<C, WPC>;
  auto kernel = fused_attention_kernel<K>;
  int device = 0, optin = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (K::kSmemBytes > optin) return cudaErrorNotSupported;
  if (K::kSmemBytes > 48 * 1024) {
    TRT_SWIN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, K::kSmemBytes));
  }
  const int64_t blocks = (num_windows + WPC - 1) / WPC;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  kernel<<<static_cast<unsigned>(blocks), K::kThreads, K::kSmemBytes, stream>>>(p);
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

}  // namespace fattn
}  // namespace trt_swin
