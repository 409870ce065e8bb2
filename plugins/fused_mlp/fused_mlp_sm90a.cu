// Hopper (sm_90a) form of trt_swin::fused_mlp for Hd = 4C, C <= 96 (Swin-T / Swin-S stage 1): the same contract and
// roundings (fused_mlp.h), with both GEMMs as warpgroup MMAs (wgmma) on tiles of 64 token rows.
//
// CTA = 2 warpgroups over a persistent loop of tiles (warpgroup gw takes tiles gw, gw + G, ...). The CTA loads w1 and
// w2 into shared memory once (C 96: 144 KB); each warpgroup then, per tile:
//   (1) its 64 rows of x, copied with 16-byte cp.async while the previous tile was computed, are LayerNorm'd to fp16
//       into the A tile (the rows of x stay for the residual); the next tile's copy starts;
//   (2) per hidden chunk j of C columns:  S = A W1_j^T            wgmma m64nC, A and W in shared memory
//                                         P = fp16(act(S + b1))   in the accumulator registers
//                                         Y += P W2_j^T           wgmma m64nC, A (P) from registers
//       chunk j + 1's FC1 is issued before chunk j's activation (two sets of S accumulators), so the warpgroup's FC1,
//       activation and FC2 overlap. Y starts at b2. (b1 preloaded into S the same way was slower: 0.213 vs 0.189 ms,
//       H100, Swin-T stage 1, batch 128: FC1 cannot issue before those loads land.)
//   (3) x = fp16(Y + x), the sum in FP32 straight from the accumulators, x from the tile's rows in shared memory.
// (ncu, H100, Swin-T stage 1, batch 128: re-reading x from global memory in (3) held about 7 % of the warps' stall
// samples.)
// Shared-memory operands are K-major in wgmma's no-swizzle canonical layout (common/wgmma.cuh), as in
// fused_attention_sm90a.cu, whose structure this kernel shares.
#include <cuda_fp16.h>

#include <cstdint>

#include "common/canon_layernorm.cuh"
#include "common/cuda_check.h"
#include "common/kernel_choice.h"
#include "common/mma.cuh"
#include "common/wgmma.cuh"
#include "fused_mlp/fused_mlp.h"

namespace trt_swin {
namespace fmlp90 {

constexpr int kRows = 64;  // token rows per tile

template <int C_>
struct Cfg {
  static constexpr int C = C_;
  static constexpr int kNWG = 2;  // the registers of two S sets + Y
  static constexpr int HD = 4 * C;
  static constexpr int NCHUNK = HD / C;                  // hidden chunks of C columns
  static constexpr int KC = C / 8;                       // 16-byte chunks of a row
  static constexpr int kThreads = 128 * kNWG;
  static constexpr int CHUNK_BYTES = C * C * 2;          // one [C x C] canonical tile of w1 or w2
  static constexpr int W_BYTES = 2 * NCHUNK * CHUNK_BYTES;
  static constexpr int A_BYTES = kRows * C * 2;          // the 64 x C canonical tile
  static constexpr int PARAM_BYTES = (HD + 3 * C) * 4;   // b1, b2, gamma, beta (FP32)
  static constexpr int WG_BYTES = 3 * A_BYTES;          // rows of x (ping-pong) + the normalized A tile
  static constexpr int kSmemBytes = W_BYTES + kNWG * WG_BYTES + PARAM_BYTES;
  static_assert(C % 32 == 0 && C <= 96, "C: multiple of 32 up to 96 (weights resident)");
  static_assert(kSmemBytes <= 227 * 1024, "fits Hopper's 227 KB per CTA");
};

// tanh GELU 0.5 v (1 + tanh(0.79788 v (1 + 0.044715 v^2))) of two values in packed half2 math with the hardware
// tanh, v rounded to fp16 first: the Triton kernel's form (triton_mlp._act), constants 0.035677, 0.79788, 0.5.
__device__ __forceinline__ uint32_t gelu_tanh_h2(uint32_t v) {
  uint32_t out;
  asm("{\n.reg .b32 v2, u, t, hv, c1, c0, half;\n"
      "mov.b32 c1, 0x28912891;\n"
      "mov.b32 c0, 0x3A623A62;\n"
      "mov.b32 half, 0x38003800;\n"
      "mul.rn.f16x2 v2, %1, %1;\n"
      "fma.rn.f16x2 u, v2, c1, c0;\n"
      "mul.rn.f16x2 u, u, %1;\n"
      "tanh.approx.f16x2 t, u;\n"
      "mul.rn.f16x2 hv, %1, half;\n"
      "fma.rn.f16x2 %0, hv, t, hv;\n}\n"
      : "=r"(out)
      : "r"(v));
  return out;
}

// act(v) of two FP32 values (S + b1) -> their fp16 pair (the FC2 A fragment element).
template <MlpAct ACT>
__device__ __forceinline__ uint32_t act_pair(float a, float b) {
  if constexpr (ACT == MlpAct::kGeluTanh) {
    return gelu_tanh_h2(pack_half2(a, b));
  } else {  // erf GELU in FP32
    return pack_half2(0.5f * a * (1.f + erff(a * 0.7071067811865476f)), 0.5f * b * (1.f + erff(b * 0.7071067811865476f)));
  }
}

template <class K, MlpAct ACT>
__global__ void __launch_bounds__(K::kThreads, 1) fused_mlp_sm90a_kernel(FusedMlpParams p, int num_tiles) {
  constexpr int C = K::C, KC = K::KC;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, wg = tid / 128, wtid = tid % 128;
  const int warp = wtid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  unsigned char* sW1 = smem;                                   // NCHUNK x [C hidden rows x C]
  unsigned char* sW2 = sW1 + K::NCHUNK * K::CHUNK_BYTES;       // NCHUNK x [C out rows x C hidden]
  unsigned char* sX0 = smem + K::W_BYTES + wg * K::WG_BYTES;  // this warpgroup's 2 tiles of x rows (ping-pong)
  unsigned char* sA = sX0 + 2 * K::A_BYTES;                    // its LayerNorm'd A tile
  float* sB1 = reinterpret_cast<float*>(smem + K::W_BYTES + K::kNWG * K::WG_BYTES);
  float* sB2 = sB1 + K::HD;
  float* sGamma = sB2 + C;
  float* sBeta = sGamma + C;

  // ---- weights, once per CTA: w1 row n (hidden), chunk kc -> chunk n / C's tile (row n % C, kc); w2 row n (out),
  // hidden chunk kc -> chunk kc / KC's tile (row n, kc % KC).
  for (int i = tid; i < K::HD * KC; i += K::kThreads) {
    const int n = i / KC, kc = i % KC;
    copy16(sW1 + (n / C) * K::CHUNK_BYTES + canon(n % C, kc, KC), p.w1 + static_cast<int64_t>(n) * C + kc * 8);
  }
  for (int i = tid; i < C * (K::HD / 8); i += K::kThreads) {
    const int n = i / (K::HD / 8), kc = i % (K::HD / 8);
    copy16(sW2 + (kc / KC) * K::CHUNK_BYTES + canon(n, kc % KC, KC), p.w2 + static_cast<int64_t>(n) * K::HD + kc * 8);
  }
  copy_commit();
  for (int i = tid; i < K::HD; i += K::kThreads) sB1[i] = p.b1[i];
  for (int i = tid; i < C; i += K::kThreads) {
    sB2[i] = p.b2[i];
    sGamma[i] = p.gamma[i];
    sBeta[i] = p.beta[i];
  }

  const int G = gridDim.x * K::kNWG;
  // Thread wtid copies tile row wtid % 64, chunks [half * KC / 2, (half + 1) * KC / 2); rows past M are zero-filled.
  auto load_tile = [&](int tile, int buf) {
    const int row = wtid % kRows, half = wtid / kRows;
    const int64_t m = static_cast<int64_t>(tile) * kRows + row;
    const bool valid = m < p.M;
    unsigned char* dst = sX0 + buf * K::A_BYTES;
    const __half* src = p.x + (valid ? m : 0) * C;
#pragma unroll
    for (int kc = half * (KC / 2); kc < (half + 1) * (KC / 2); ++kc) copy16(dst + canon(row, kc, KC), src + kc * 8, valid);
  };

  int tile = blockIdx.x * K::kNWG + wg;
  if (tile < num_tiles) load_tile(tile, 0);
  copy_commit();
  copy_wait<0>();
  fence_proxy_async();
  __syncthreads();  // the weights and parameters are in place

  const uint32_t w1_base = smem_u32(sW1), w2_base = smem_u32(sW2), a_base = smem_u32(sA);
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this thread's accumulator rows

  for (int buf = 0; tile < num_tiles; tile += G, buf ^= 1) {
    copy_wait<0>();
    warpgroup_barrier(wg);  // the rows have landed; every warp's products of the previous tile are done with sA
    const unsigned char* sX = sX0 + buf * K::A_BYTES;
    const int64_t m0 = static_cast<int64_t>(tile) * kRows;

    // ---- (1) LayerNorm into the A tile (rows past M: zeros, as loaded)
    layernorm_canon_tile<C>(sX, sA, warp, lane, sGamma, sBeta, p.eps, [&](int row) { return m0 + row < p.M; });
    fence_proxy_async();  // the normalized tile, for wgmma
    warpgroup_barrier(wg);
    if (tile + G < num_tiles) load_tile(tile + G, buf ^ 1);  // the next tile streams in meanwhile
    copy_commit();

    // Y starts at b2: this thread's pairs (c, c + 1), c = 8 nt + 2 t, in rows r0 and r1.
    float y[C / 2];
#pragma unroll
    for (int nt = 0; nt < C / 8; ++nt) {
      const float2 bb = *reinterpret_cast<const float2*>(sB2 + nt * 8 + 2 * t);
      y[4 * nt] = y[4 * nt + 2] = bb.x;
      y[4 * nt + 1] = y[4 * nt + 3] = bb.y;
    }

    // ---- (2) per chunk j: S = A W1_j^T (64 x C hidden columns, K = C); P = fp16(act(S + b1)), whose n-tiles
    // 2 kk, 2 kk + 1 are FC2's k16 step kk; Y += P W2_j^T (64 x C, K = C hidden), left in flight.
    auto fc1 = [&](int j, float (&s)[C / 2]) {
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < C / 16; ++ks) {
        wgmma_ss<C>(s, make_smem_desc(a_base + ks * 256, 128, KC * 128),
                    make_smem_desc(w1_base + j * K::CHUNK_BYTES + ks * 256, 128, KC * 128), ks);
      }
      wgmma_commit();
    };
    auto act_fc2 = [&](int j, const float (&s)[C / 2]) {
      uint32_t pa[C / 16][4];
      const float* b1 = sB1 + j * C;
#pragma unroll
      for (int nt = 0; nt < C / 8; ++nt) {
        const float2 bb = *reinterpret_cast<const float2*>(b1 + nt * 8 + 2 * t);
        pa[nt / 2][(nt % 2) * 2] = act_pair<ACT>(s[4 * nt] + bb.x, s[4 * nt + 1] + bb.y);
        pa[nt / 2][(nt % 2) * 2 + 1] = act_pair<ACT>(s[4 * nt + 2] + bb.x, s[4 * nt + 3] + bb.y);
      }
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < C / 16; ++ks) {
        wgmma_rs<C>(y, pa[ks], make_smem_desc(w2_base + j * K::CHUNK_BYTES + ks * 256, 128, KC * 128), 1);
      }
      wgmma_commit();
    };
    float s0[C / 2], s1[C / 2];
    fc1(0, s0);
#pragma unroll
    for (int j = 0; j < K::NCHUNK; ++j) {  // unrolled: s0 / s1 stay registers
      if (j + 1 < K::NCHUNK) {
        fc1(j + 1, (j & 1) ? s0 : s1);
        wgmma_wait<1>();  // chunk j's FC1 (and chunk j - 1's FC2) done; chunk j + 1's FC1 may run on
      } else {
        wgmma_wait<0>();
      }
      act_fc2(j, (j & 1) ? s1 : s0);
    }
    wgmma_wait<0>();

    // ---- (3) x = fp16(Y + x) in FP32, rounded once (rows past M are not stored); x from the tile's rows (pairs at
    // row r, column c of the canonical tile: conflict-free).
    const bool v0 = m0 + r0 < p.M, v1 = m0 + r1 < p.M;
#pragma unroll
    for (int nt = 0; nt < C / 8; ++nt) {
      const int c = nt * 8 + 2 * t;
      const float2 f0 = __half22float2(*reinterpret_cast<const __half2*>(sX + canon(r0, nt, KC) + 4 * t));
      const float2 f1 = __half22float2(*reinterpret_cast<const __half2*>(sX + canon(r1, nt, KC) + 4 * t));
      if (v0) *reinterpret_cast<uint32_t*>(p.x + (m0 + r0) * C + c) = pack_half2(y[4 * nt] + f0.x, y[4 * nt + 1] + f0.y);
      if (v1) *reinterpret_cast<uint32_t*>(p.x + (m0 + r1) * C + c) = pack_half2(y[4 * nt + 2] + f1.x, y[4 * nt + 3] + f1.y);
    }
  }
}

template <int C, MlpAct ACT>
cudaError_t launch(const FusedMlpParams& p, cudaStream_t stream) {
  using K = Cfg<C>;
  auto kernel = fused_mlp_sm90a_kernel<K, ACT>;
  int sms = 0;
  TRT_SWIN_CUDA_TRY(opt_in_shared_memory(kernel, K::kSmemBytes, &sms));
  const int64_t tiles = (p.M + kRows - 1) / kRows;
  if (tiles >= (int64_t{1} << 31)) return cudaErrorInvalidValue;
  // Persistent: one CTA per SM (its shared memory), never more warpgroups than tiles.
  const int64_t need = (tiles + K::kNWG - 1) / K::kNWG;
  const int blocks = static_cast<int>(need < sms ? need : sms);
  kernel<<<blocks, K::kThreads, K::kSmemBytes, stream>>>(p, static_cast<int>(tiles));
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

template <MlpAct ACT>
cudaError_t dispatch_c(const FusedMlpParams& p, cudaStream_t stream) {
  switch (p.C) {
    case 32: return launch<32, ACT>(p, stream);
    case 64: return launch<64, ACT>(p, stream);
    default: return launch<96, ACT>(p, stream);
  }
}

}  // namespace fmlp90

bool fused_mlp_sm90a_supported(int C, int Hd) { return (C == 32 || C == 64 || C == 96) && Hd == 4 * C; }

cudaError_t fused_mlp_sm90a(const FusedMlpParams& p, cudaStream_t stream) {
  if (!fused_mlp_sm90a_supported(p.C, p.Hd)) return cudaErrorInvalidValue;
  return p.act == MlpAct::kGeluErf ? fmlp90::dispatch_c<MlpAct::kGeluErf>(p, stream)
                                   : fmlp90::dispatch_c<MlpAct::kGeluTanh>(p, stream);
}

}  // namespace trt_swin
