// Hopper (sm_90a) form of trt_swin::fused_attention: the same contract and roundings (fused_attention.h), with the
// block's products as warpgroup MMAs (wgmma) on a window of 64 padded rows.
//
// CTA = NWG warpgroups over a persistent loop of windows (warpgroup gw takes windows gw, gw + G, ...). The CTA loads
// all of w_qkv and w_proj into shared memory once (C <= 128: at most 128 KB); each warpgroup then, per window:
//   (1) its rows of x, gathered with 16-byte cp.async (shift, crop and padding in the index math, padded rows zero)
//       while the previous window was computed, are LayerNorm'd in place to fp16; the next window's gather starts;
//   (2) per head h:  [q | k | v] = A [Wq_h | Wk_h | Wv_h]^T + b      wgmma m64n96, A and W in shared memory
//                    q stays in registers (the A fragment of q k^T), k -> sK, v -> sVt (transposed, keys along K)
//                    S = q k^T                                        wgmma m64n64, A from registers
//                    P = softmax(S * scale + bias64[h] + mask)        FP32, in the accumulator registers
//                    O = P v                                          wgmma m64n32, A (P, fp16) from registers
//                    Y += fp16(O / rowsum) Wproj[:, 32h : 32h + 32]^T wgmma m64nC, accumulated over heads
//   (3) fp16(Y + b_proj) staged row-major in the window's A buffer, then x[token] += row with 16-byte accesses.
// Warp w of a warpgroup holds accumulator rows 16 w .. 16 w + 15, the same fragments as mma.sync's m16n8k16, so each
// product's result feeds the next one from registers (FlashAttention 3's scheme) and the mask bits and softmax are
// the mma.sync kernel's.
//
// Shared-memory operands are K-major in wgmma's no-swizzle canonical layout: 8 rows x 16 bytes per 128-byte core
// matrix, core matrices 128 bytes apart along K (LBO) and K / 8 * 128 bytes apart along M / N (SBO). Reads of a core
// matrix (wgmma, the LayerNorm pass, one 16-byte chunk per lane for 8 lanes) are bank-conflict free.
#include <cuda_fp16.h>

#include <cstdint>

#include "common/canon_layernorm.cuh"
#include "common/cuda_check.h"
#include "common/kernel_choice.h"
#include "common/mma.cuh"
#include "common/wgmma.cuh"
#include "fused_attention/fused_attention.h"
#include "fused_attention/window_geometry.cuh"

namespace trt_swin {
namespace fattn90 {

constexpr int kHd = 32;  // head_dim
constexpr int kRows = 64;  // window rows (tokens) and keys, padded

template <int C_, int NWG_>
struct Cfg {
  static constexpr int C = C_;
  static constexpr int NWG = NWG_;
  static constexpr int NH = C / kHd;
  static constexpr int KC = C / 8;  // 16-byte chunks of a row
  static constexpr int kThreads = 128 * NWG;
  static constexpr int HEAD_QKV_BYTES = 3 * kHd * C * 2;  // [q_h | k_h | v_h] rows (N 96) x K = C
  static constexpr int HEAD_PROJ_BYTES = C * kHd * 2;     // w_proj[:, 32h : 32h + 32]: N = C x K = 32
  static constexpr int W_BYTES = NH * (HEAD_QKV_BYTES + HEAD_PROJ_BYTES);
  static constexpr int LDS = C + 8;                      // row stride (halves) of the epilogue's row-major staging
  static constexpr int A_BYTES = kRows * LDS * 2;        // >= the 64 x C canonical tile
  static constexpr int KV_BYTES = kRows * kHd * 2;
  static constexpr int WG_BYTES = 2 * A_BYTES + 2 * KV_BYTES + 2 * kRows * 4 + 2 * kRows;
  static constexpr int PARAM_BYTES = 6 * C * 4;          // b_qkv, b_proj, gamma, beta (FP32)
  static constexpr int LDB = kRows + 8;                  // bias row stride (halves): conflict-free fragment reads
  static constexpr int BIAS_BYTES = NH * kRows * LDB * 2;
  static constexpr int kMaxSmem = 227 * 1024;           // Hopper's per-CTA limit
  // The relative-position bias as fp16 in shared memory where it fits (not at C 128), else read from bias64.
  static constexpr bool kBiasSmem = W_BYTES + NWG * WG_BYTES + PARAM_BYTES + BIAS_BYTES <= kMaxSmem;
  static constexpr int kSmemBytes = W_BYTES + NWG * WG_BYTES + PARAM_BYTES + (kBiasSmem ? BIAS_BYTES : 0);
  static_assert(C % kHd == 0 && C >= 32 && C <= 128, "C: multiple of 32 in [32, 128] (weights resident)");
  static_assert(A_BYTES % 128 == 0 && W_BYTES % 128 == 0, "128-byte aligned regions");
  static_assert(W_BYTES + NWG * WG_BYTES + PARAM_BYTES <= kMaxSmem || NWG == 3, "the 2-warpgroup tile fits");
};

template <class K>
__global__ void __launch_bounds__(K::kThreads, 1) fused_attention_sm90a_kernel(FusedAttentionParams p, int num_windows) {
  constexpr int C = K::C, NH = K::NH, KC = K::KC;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  unsigned char* sWq = smem;                                   // NH x [96 x C]
  unsigned char* sWp = sWq + NH * K::HEAD_QKV_BYTES;           // NH x [C x 32]
  unsigned char* wgs = smem + K::W_BYTES + wg * K::WG_BYTES;   // this warpgroup's buffers
  unsigned char* sA0 = wgs;                                    // 2 x A tile (ping-pong over windows)
  unsigned char* sK = wgs + 2 * K::A_BYTES;                    // [64 keys x 32]
  unsigned char* sVt = sK + K::KV_BYTES;                       // [32 x 64 keys]
  int* sTok = reinterpret_cast<int*>(sVt + K::KV_BYTES);       // [2][64] token row of x, -1: padding
  int8_t* sRid = reinterpret_cast<int8_t*>(sTok + 2 * kRows);  // [2][64] shift-mask region
  float* sBq = reinterpret_cast<float*>(smem + K::W_BYTES + K::NWG * K::WG_BYTES);  // b_qkv [3C]
  float* sBp = sBq + 3 * C;                                    // b_proj [C]
  float* sGamma = sBp + C;                                     // norm1 [C]
  float* sBeta = sGamma + C;
  __half* sBias = reinterpret_cast<__half*>(sBeta + C);        // [NH][64][LDB] (kBiasSmem)

  // ---- weights, once per CTA: w_qkv row R = part * C + 32 h + j -> head h's tile row part * 32 + j; w_proj row n,
  // chunk kc -> head kc / 4's tile (row n, chunk kc % 4).
  for (int i = tid; i < 3 * C * KC; i += K::kThreads) {
    const int R = i / KC, kc = i % KC;
    const int part = R / C, h = (R % C) / kHd, n = part * kHd + R % kHd;
    copy16(sWq + h * K::HEAD_QKV_BYTES + canon(n, kc, KC), p.w_qkv + static_cast<int64_t>(R) * C + kc * 8);
  }
  for (int i = tid; i < C * KC; i += K::kThreads) {
    const int n = i / KC, kc = i % KC;
    copy16(sWp + (kc / 4) * K::HEAD_PROJ_BYTES + canon(n, kc % 4, 4), p.w_proj + static_cast<int64_t>(n) * C + kc * 8);
  }
  copy_commit();
  for (int i = tid; i < 3 * C; i += K::kThreads) sBq[i] = p.b_qkv[i];
  for (int i = tid; i < C; i += K::kThreads) {
    sBp[i] = p.b_proj[i];
    sGamma[i] = p.gamma[i];
    sBeta[i] = p.beta[i];
  }
  if constexpr (K::kBiasSmem) {
    for (int i = tid; i < NH * kRows * kRows / 2; i += K::kThreads) {
      const int row = i / (kRows / 2), c2 = i % (kRows / 2);  // row = h * 64 + r
      const float2 b = reinterpret_cast<const float2*>(p.bias64)[i];
      reinterpret_cast<__half2*>(sBias + row * K::LDB)[c2] = __floats2half2_rn(b.x, b.y);  // -inf stays -inf
    }
  }

  const int ws = p.ws, shift = p.shift, N = ws * ws;
  const int nWh = (p.H + ws - 1) / ws, nWw = (p.W + ws - 1) / ws;
  const int G = gridDim.x * K::NWG;

  // Thread wtid gathers tile row wtid % 64, chunks [half * KC / 2, (half + 1) * KC / 2), and records its token and
  // region. Rows outside the window or the image are zero-filled (timm pads after norm1).
  auto gather = [&](int w, int buf) {
    const int row = wtid % kRows, half = wtid / kRows;
    int tok = -1, rid = 0;
    if (w < num_windows && row < N) fattn::window_row(w, row, p.H, p.W, ws, shift, nWh, nWw, tok, rid);
    if (half == 0) {
      sTok[buf * kRows + row] = tok;
      sRid[buf * kRows + row] = static_cast<int8_t>(rid);
    }
    unsigned char* dst = sA0 + buf * K::A_BYTES;
    const __half* src = p.x + static_cast<int64_t>(tok >= 0 ? tok : 0) * C;
#pragma unroll
    for (int kc = half * (KC / 2); kc < (half + 1) * (KC / 2); ++kc) {
      copy16(dst + canon(row, kc, KC), src + kc * 8, tok >= 0);
    }
  };

  int win = blockIdx.x * K::NWG + wg;
  if (win < num_windows) gather(win, 0);
  copy_commit();
  copy_wait<0>();
  fence_proxy_async();
  __syncthreads();  // the weights (everyone's copies) are in place

  const uint32_t wq_base = smem_u32(sWq), wp_base = smem_u32(sWp);
  const uint32_t k_base = smem_u32(sK), vt_base = smem_u32(sVt);
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this thread's accumulator rows
  constexpr float kLog2e = 1.4426950408889634f;

  for (int buf = 0; win < num_windows; win += G, buf ^= 1) {
    copy_wait<0>();   // this thread's copies of the window's rows ...
    warpgroup_barrier(wg);   // ... and everyone's; the previous window's epilogue is done with its buffer
    unsigned char* sA = sA0 + buf * K::A_BYTES;
    const int* tok_w = sTok + buf * kRows;

    // ---- (1) LayerNorm in place (padded rows stay zero)
    layernorm_canon_tile<C>(sA, sA, warp, lane, sGamma, sBeta, p.eps, [&](int row) { return tok_w[row] >= 0; });
    fence_proxy_async();  // the normalized tile, for wgmma
    warpgroup_barrier(wg);

    // Shift-mask bits of this thread's logits (as the mma.sync kernel): bit 2 nt + e of same0 / same1 says whether
    // key 8 nt + 2 t + e is in the same region as row r0 / r1.
    uint32_t same0 = 0xffffffffu, same1 = 0xffffffffu;
    if (shift > 0) fattn::shift_mask_bits(sRid + buf * kRows, r0, r1, t, same0, same1);
    // The next window's rows stream into the other buffer while this one is computed.
    if (win + G < num_windows) gather(win + G, buf ^ 1);
    copy_commit();

    const uint32_t a_base = smem_u32(sA);
    float y[C / 2];
#pragma unroll
    for (int i = 0; i < C / 2; ++i) y[i] = 0.f;

#pragma unroll 1
    for (int h = 0; h < NH; ++h) {
      // ---- (2) [q | k | v] of head h: 64 x 96, K = C
      float acc[48];
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < C / 16; ++ks) {
        wgmma_ss<96>(acc, make_smem_desc(a_base + ks * 256, 128, KC * 128),
                     make_smem_desc(wq_base + h * K::HEAD_QKV_BYTES + ks * 256, 128, KC * 128), ks);
      }
      wgmma_commit();
      wgmma_wait<0>();  // (also the previous head's projection)
      warpgroup_barrier(wg);   // every warp is done with the previous head's sK / sVt

      const float* bq = sBq + h * kHd;
      uint32_t qa[2][4];
#pragma unroll
      for (int i = 0; i < 12; ++i) {
        const int part = i / 4, nt = i % 4, d = nt * 8 + 2 * t;
        const float2 bb = *reinterpret_cast<const float2*>(bq + part * C + d);
        const float v00 = acc[4 * i] + bb.x, v01 = acc[4 * i + 1] + bb.y;
        const float v10 = acc[4 * i + 2] + bb.x, v11 = acc[4 * i + 3] + bb.y;
        if (part == 0) {  // q: the A fragments of q k^T's two k16 steps
          qa[nt / 2][(nt % 2) * 2] = pack_half2(v00, v01);
          qa[nt / 2][(nt % 2) * 2 + 1] = pack_half2(v10, v11);
        } else if (part == 1) {  // k: row = key, K = head dim
          *reinterpret_cast<uint32_t*>(sK + canon(r0, nt, 4) + 4 * t) = pack_half2(v00, v01);
          *reinterpret_cast<uint32_t*>(sK + canon(r1, nt, 4) + 4 * t) = pack_half2(v10, v11);
        } else {  // v^T: row = head dim, K = key
          __half* vt = reinterpret_cast<__half*>(sVt);
          const uint32_t o0 = canon(d, r0 / 8, 8) + (r0 % 8) * 2, o1 = canon(d, r1 / 8, 8) + (r1 % 8) * 2;
          vt[o0 / 2] = __float2half_rn(v00);
          vt[(o0 + 16) / 2] = __float2half_rn(v01);  // row d + 1
          vt[o1 / 2] = __float2half_rn(v10);
          vt[(o1 + 16) / 2] = __float2half_rn(v11);
        }
      }
      fence_proxy_async();
      warpgroup_barrier(wg);  // the window's k and v are in shared memory

      // ---- S = q k^T (64 x 64 keys, K = 32)
      float s[32];
      wgmma_fence();
      wgmma_rs<64>(s, qa[0], make_smem_desc(k_base, 128, 512), 0);
      wgmma_rs<64>(s, qa[1], make_smem_desc(k_base + 256, 128, 512), 1);
      wgmma_commit();
      float2 b0[8], b1[8];
      if constexpr (K::kBiasSmem) {
        const __half* t0 = sBias + (h * kRows + r0) * K::LDB + 2 * t;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          b0[nt] = __half22float2(*reinterpret_cast<const __half2*>(t0 + nt * 8));
          b1[nt] = __half22float2(*reinterpret_cast<const __half2*>(t0 + 8 * K::LDB + nt * 8));
        }
      } else {
        const float* t0 = p.bias64 + (static_cast<int64_t>(h) * kRows + r0) * kRows + 2 * t;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          b0[nt] = __ldg(reinterpret_cast<const float2*>(t0 + nt * 8));
          b1[nt] = __ldg(reinterpret_cast<const float2*>(t0 + 8 * kRows + nt * 8));
        }
      }
      wgmma_wait<0>();

      // logits = S * scale + (bias + mask) in FP32; bias64's -inf marks the padded keys
      float m0 = -INFINITY, m1 = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int k = 2 * nt;
        s[4 * nt] = fmaf(s[4 * nt], p.scale, (same0 >> k & 1u) ? b0[nt].x : b0[nt].x + -100.f);
        s[4 * nt + 1] = fmaf(s[4 * nt + 1], p.scale, (same0 >> (k + 1) & 1u) ? b0[nt].y : b0[nt].y + -100.f);
        s[4 * nt + 2] = fmaf(s[4 * nt + 2], p.scale, (same1 >> k & 1u) ? b1[nt].x : b1[nt].x + -100.f);
        s[4 * nt + 3] = fmaf(s[4 * nt + 3], p.scale, (same1 >> (k + 1) & 1u) ? b1[nt].y : b1[nt].y + -100.f);
        m0 = fmaxf(m0, fmaxf(s[4 * nt], s[4 * nt + 1]));
        m1 = fmaxf(m1, fmaxf(s[4 * nt + 2], s[4 * nt + 3]));
      }
      m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 1));
      m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, 2));
      m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 1));
      m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, 2));
      const float c0 = m0 * kLog2e, c1 = m1 * kLog2e;
      float l0 = 0.f, l1 = 0.f;
      uint32_t pa[4][4];  // P (fp16): the A fragments of P v's four k16 steps
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const float p00 = exp2f(fmaf(s[4 * nt], kLog2e, -c0)), p01 = exp2f(fmaf(s[4 * nt + 1], kLog2e, -c0));
        const float p10 = exp2f(fmaf(s[4 * nt + 2], kLog2e, -c1)), p11 = exp2f(fmaf(s[4 * nt + 3], kLog2e, -c1));
        l0 += p00 + p01;
        l1 += p10 + p11;
        pa[nt / 2][(nt % 2) * 2] = pack_half2(p00, p01);
        pa[nt / 2][(nt % 2) * 2 + 1] = pack_half2(p10, p11);
      }
      l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
      l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
      l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
      l1 += __shfl_xor_sync(0xffffffffu, l1, 2);

      // ---- O = P v (64 x 32, K = 64 keys)
      float o[16];
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) wgmma_rs<32>(o, pa[ks], make_smem_desc(vt_base + ks * 256, 128, 1024), ks);
      wgmma_commit();
      wgmma_wait<0>();

      // ---- Y += fp16(O / rowsum) Wproj_h^T (64 x C, K = 32); left in flight until the next head's wait
      const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
      uint32_t oa[2][4];
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        oa[nt / 2][(nt % 2) * 2] = pack_half2(o[4 * nt] * inv0, o[4 * nt + 1] * inv0);
        oa[nt / 2][(nt % 2) * 2 + 1] = pack_half2(o[4 * nt + 2] * inv1, o[4 * nt + 3] * inv1);
      }
      wgmma_fence();
      wgmma_rs<C>(y, oa[0], make_smem_desc(wp_base + h * K::HEAD_PROJ_BYTES, 128, 512), 1);
      wgmma_rs<C>(y, oa[1], make_smem_desc(wp_base + h * K::HEAD_PROJ_BYTES + 256, 128, 512), 1);
      wgmma_commit();
    }
    // The residual rows this lane updates, loaded while the last projection runs.
    constexpr int kRmw = (16 * KC + 31) / 32;
    uint4 xv[kRmw];
#pragma unroll
    for (int u = 0; u < kRmw; ++u) {
      const int j = lane + 32 * u;
      const int tok = j < 16 * KC ? tok_w[warp * 16 + j / KC] : -1;
      xv[u] = tok >= 0 ? *reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(tok) * C + (j % KC) * 8)
                       : make_uint4(0, 0, 0, 0);
    }
    wgmma_wait<0>();
    warpgroup_barrier(wg);  // every warp's products are done reading this window's tile

    // ---- (3) fp16(Y + b_proj) row-major into the tile's buffer (each warp its own 16 rows), then x[tok] += row.
    __half* stage = reinterpret_cast<__half*>(sA);
#pragma unroll
    for (int nt = 0; nt < C / 8; ++nt) {
      const int c = nt * 8 + 2 * t;
      const float2 bb = *reinterpret_cast<const float2*>(sBp + c);
      *reinterpret_cast<uint32_t*>(stage + r0 * K::LDS + c) = pack_half2(y[4 * nt] + bb.x, y[4 * nt + 1] + bb.y);
      *reinterpret_cast<uint32_t*>(stage + r1 * K::LDS + c) = pack_half2(y[4 * nt + 2] + bb.x, y[4 * nt + 3] + bb.y);
    }
    __syncwarp();
#pragma unroll
    for (int u = 0; u < kRmw; ++u) {
      const int j = lane + 32 * u;
      if (j >= 16 * KC) break;
      const int r = warp * 16 + j / KC, kc = j % KC;
      const int tok = tok_w[r];
      if (tok < 0) continue;
      const uint4 yv = *reinterpret_cast<const uint4*>(stage + r * K::LDS + kc * 8);
      const __half2* xh = reinterpret_cast<const __half2*>(&xv[u]);
      const __half2* yh = reinterpret_cast<const __half2*>(&yv);
      uint4 out;
      __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
      for (int e = 0; e < 4; ++e) oh[e] = __hadd2(xh[e], yh[e]);  // the exact sum rounded once, as in FP32
      *reinterpret_cast<uint4*>(p.x + static_cast<int64_t>(tok) * C + kc * 8) = out;
    }
  }
}

template <int C, int NWG>
cudaError_t launch(const FusedAttentionParams& p, int num_windows, cudaStream_t stream) {
  using K = Cfg<C, NWG>;
  auto kernel = fused_attention_sm90a_kernel<K>;
  int sms = 0;
  TRT_SWIN_CUDA_TRY(opt_in_shared_memory(kernel, K::kSmemBytes, &sms));
  int per_sm = 0;
  TRT_SWIN_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, K::kThreads, K::kSmemBytes));
  if (per_sm < 1) return cudaErrorNotSupported;
  // Persistent: enough CTAs to fill the GPU, never more warpgroups than windows.
  const int64_t need = (static_cast<int64_t>(num_windows) + NWG - 1) / NWG;
  const int blocks = static_cast<int>(need < static_cast<int64_t>(sms) * per_sm ? need : static_cast<int64_t>(sms) * per_sm);
  kernel<<<blocks, K::kThreads, K::kSmemBytes, stream>>>(p, num_windows);
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

// 3 warpgroups where their buffers fit next to the weights (Hopper: 227 KB per CTA; not at C 128), else 2.
template <int C>
cudaError_t dispatch_nwg(const FusedAttentionParams& p, int nwg, int num_windows, cudaStream_t stream) {
  if constexpr (Cfg<C, 3>::kSmemBytes <= Cfg<C, 3>::kMaxSmem) {
    if (nwg == 3) return launch<C, 3>(p, num_windows, stream);
  }
  return launch<C, 2>(p, num_windows, stream);
}

}  // namespace fattn90

bool fused_attention_sm90a_supported(int C) { return C == 32 || C == 64 || C == 96 || C == 128; }

cudaError_t fused_attention_sm90a(const FusedAttentionParams& p, int64_t num_windows, int warpgroups,
                                  cudaStream_t stream) {
  if (!fused_attention_sm90a_supported(p.C) || num_windows >= (int64_t{1} << 31)) return cudaErrorInvalidValue;
  if (warpgroups != 2 && warpgroups != 3) return cudaErrorInvalidValue;
  const int nw = static_cast<int>(num_windows);
  switch (p.C) {
    case 32: return fattn90::dispatch_nwg<32>(p, warpgroups, nw, stream);
    case 64: return fattn90::dispatch_nwg<64>(p, warpgroups, nw, stream);
    case 96: return fattn90::dispatch_nwg<96>(p, warpgroups, nw, stream);
    default: return fattn90::dispatch_nwg<128>(p, warpgroups, nw, stream);
  }
}

}  // namespace trt_swin
