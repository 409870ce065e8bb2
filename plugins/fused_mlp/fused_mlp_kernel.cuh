// Fused MLP kernel template (included by the instantiation files fused_mlp_gelu_{erf,tanh}.cu only).
//
// CTA = BM token rows. (1) The x tile is copied into shared memory (cp.async, 16 B) and LayerNorm'd in place to
// fp16 (one warp per row, FP32 statistics). (2) The hidden dimension is walked in chunks of HC: the chunk's W1 rows
// [HC, C] and W2 columns [C, HC] are streamed into a double-buffered shared-memory stage (cp.async; the weights are
// shared by all CTAs and stay L2-resident) while the previous chunk computes. A warp owns 16 rows and, with WN
// warps per row group, 1/WN of the chunk's hidden columns and 1/WN of the output columns:
//   S = A W1c^T       mma m16n8k16, FP32 accumulators
//   P = fp16(act(S + b1))
//   O += P W2c^T      FP32 accumulators, kept in registers across all chunks
// With WN == 1 the S accumulators of two adjacent 8-column tiles are re-packed in place as the A fragment of one k16
// step (FlashAttention's register trick); with WN == 2 (wide C, where O for 16 x C would not fit the registers) the
// two warps of a row group exchange their halves of P through shared memory. (3) Epilogue: x = fp16(O + b2 + x).
#pragma once
#include <cuda_fp16.h>
#include <cstdint>

#include "common/cuda_check.h"
#include "common/mma.cuh"
#include "common/smem_layernorm.cuh"
#include "fused_mlp/fused_mlp.h"

namespace trt_swin {
namespace fmlp {

constexpr int kPadHalves = 8;  // row padding: row strides are odd multiples of 16 B mod 128 -> ldmatrix conflict-free

// The tile shape, fixed at compile time.
template <int C_, int BM_, int WN_, int HC_>
struct Tile {
  static constexpr int C = C_;    // channels
  static constexpr int BM = BM_;  // token rows per CTA
  static constexpr int WN = WN_;  // warps sharing a 16-row group (split of the hidden chunk and of the output columns)
  static constexpr int HC = HC_;  // hidden chunk per pipeline stage
  static constexpr int WM = BM / 16;
  static constexpr int kWarps = WM * WN;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int LDA = C + kPadHalves;   // row stride (halves) of the A tile and the W1 chunk
  static constexpr int LDH = HC + kPadHalves;  // row stride of the W2 chunk and of P
  static constexpr int A_HALVES = BM * LDA;
  static constexpr int W1_HALVES = HC * LDA;
  static constexpr int W2_HALVES = C * LDH;
  static constexpr int STAGE_HALVES = W1_HALVES + W2_HALVES;
  static constexpr int P_HALVES = WN > 1 ? BM * LDH : 0;
  static constexpr int kSmemBytes = (A_HALVES + 2 * STAGE_HALVES + P_HALVES) * 2;
  static constexpr int SW = HC / WN;  // S (hidden) columns per warp
  static constexpr int OW = C / WN;   // O (output) columns per warp
  // Resident CTAs per SM to ask of the register allocator: two 8-warp CTAs (128 registers a thread) where the O and S
  // accumulators take at most 96 of them and two CTAs' shared memory fits an SM (228 KB on H100, 1 KB reserved per
  // CTA), else one.
  static constexpr int kMinBlocks =
      kThreads == 256 && OW / 2 + SW / 2 <= 96 && 2 * ((A_HALVES + 2 * STAGE_HALVES + P_HALVES) * 2 + 1024) <= 228 * 1024
          ? 2 : 1;
  static_assert(C % 32 == 0 && C >= 32 && C <= 384, "C: multiple of 32 in [32, 384]");
  static_assert(BM % 16 == 0 && (WN == 1 || WN == 2), "tile shape");
  static_assert(SW % 16 == 0 && OW % 16 == 0, "warp columns come in pairs of n8 tiles");
  static_assert(64 % HC == 0, "Hd is a multiple of 64, so of HC");
};

template <MlpAct ACT>
__device__ __forceinline__ float activation(float v) {
  if constexpr (ACT == MlpAct::kGeluErf) {
    return 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  } else {
    // 0.5 v (1 + tanh(u)) == v * sigmoid(2u): one exp, and accurate where tanh(u) is near -1 (large negative v).
    // u is clamped so exp(-2u) stays finite (v < -10 gives 0 either way, instead of v / inf).
    const float u = fmaxf(0.7978845608028654f * fmaf(0.044715f * v, v * v, v), -40.f);
    return v / (1.f + __expf(-2.f * u));
  }
}

template <class K, MlpAct ACT>
__global__ void __launch_bounds__(K::kThreads, K::kMinBlocks) fused_mlp_kernel(FusedMlpParams p) {
  constexpr int C = K::C, HC = K::HC, LDA = K::LDA, LDH = K::LDH;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __half* sA = reinterpret_cast<__half*>(smem_raw);
  __half* sW = sA + K::A_HALVES;  // 2 stages of [W1 chunk | W2 chunk]
  __half* sP = sW + 2 * K::STAGE_HALVES;

  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t = lane % 4;  // mma fragment row (within 8) and column pair
  const int wm = warp % K::WM, wn = warp / K::WM;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * K::BM;
  const int rows = static_cast<int>(min(static_cast<int64_t>(K::BM), p.M - row0));
  const int nchunks = p.Hd / HC;

  auto load_chunk = [&](int chunk, int stage) {
    __half* w1s = sW + stage * K::STAGE_HALVES;
    __half* w2s = w1s + K::W1_HALVES;
    const __half* w1g = p.w1 + static_cast<int64_t>(chunk) * HC * C;  // rows [chunk*HC, +HC) of [Hd, C]
#pragma unroll 4
    for (int i = tid; i < HC * C / 8; i += K::kThreads) {
      const int r = i / (C / 8), c8 = i % (C / 8);
      copy16(w1s + r * LDA + c8 * 8, w1g + r * C + c8 * 8);
    }
    const __half* w2g = p.w2 + static_cast<int64_t>(chunk) * HC;  // columns [chunk*HC, +HC) of [C, Hd]
#pragma unroll 4
    for (int i = tid; i < C * HC / 8; i += K::kThreads) {
      const int r = i / (HC / 8), c8 = i % (HC / 8);
      copy16(w2s + r * LDH + c8 * 8, w2g + static_cast<int64_t>(r) * p.Hd + c8 * 8);
    }
  };

  // ---- x tile -> sA (rows past M zero-filled, never stored), and the first weight chunk.
  for (int i = tid; i < K::BM * C / 8; i += K::kThreads) {
    const int r = i / (C / 8), c8 = i % (C / 8);
    const bool valid = r < rows;
    copy16(sA + r * LDA + c8 * 8, p.x + (row0 + (valid ? r : 0)) * C + c8 * 8, valid);
  }
  copy_commit();
  load_chunk(0, 0);
  copy_commit();
  copy_wait<1>();  // the x tile has landed; chunk 0 may still be in flight
  __syncthreads();

  // ---- LayerNorm in place, one warp per row.
  for (int r = warp; r < rows; r += K::kWarps) layernorm_row_inplace<C>(sA + r * LDA, lane, p.gamma, p.beta, p.eps);

  float o[K::OW / 8][4];
#pragma unroll
  for (int j = 0; j < K::OW / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;

  const __half* a_row = sA + (wm * 16 + (lane % 16)) * LDA + (lane / 16) * 8;  // this lane's ldmatrix A address
  const int b_row = (lane / 16) * 8 + (lane % 8);                               // ... and B row / column offsets
  const int b_col = ((lane / 8) % 2) * 8;

  for (int chunk = 0; chunk < nchunks; ++chunk) {
    copy_wait<0>();   // this chunk's weights have landed (for this thread's copies) ...
    __syncthreads();  // ... for everyone's; and every warp is done with the stage the next copy overwrites
    if (chunk + 1 < nchunks) load_chunk(chunk + 1, (chunk + 1) & 1);
    copy_commit();
    const __half* w1s = sW + (chunk & 1) * K::STAGE_HALVES;
    const __half* w2s = w1s + K::W1_HALVES;

    // S = A W1c^T for this warp's 16 rows and SW hidden columns.
    float s[K::SW / 8][4];
#pragma unroll
    for (int j = 0; j < K::SW / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < C / 16; ++ks) {
      uint32_t a[4];
      ldmatrix_x4(a, a_row + ks * 16);
#pragma unroll
      for (int nt = 0; nt < K::SW / 8; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, w1s + (wn * K::SW + nt * 8 + b_row) * LDA + ks * 16 + b_col);
        mma_16816(s[nt], a, b[0], b[1]);
        mma_16816(s[nt + 1], a, b[2], b[3]);
      }
    }
    // + b1 and the activation in FP32, then fp16 (the stored hidden of an FP16 engine).
#pragma unroll
    for (int nt = 0; nt < K::SW / 8; ++nt) {
      const float2 bb = __ldg(reinterpret_cast<const float2*>(p.b1 + chunk * HC + wn * K::SW + nt * 8 + 2 * t));
      s[nt][0] = activation<ACT>(s[nt][0] + bb.x);
      s[nt][1] = activation<ACT>(s[nt][1] + bb.y);
      s[nt][2] = activation<ACT>(s[nt][2] + bb.x);
      s[nt][3] = activation<ACT>(s[nt][3] + bb.y);
    }

    // O += P W2c^T for this warp's 16 rows and OW output columns, over the chunk's HC hidden columns.
    auto accumulate = [&](const uint32_t (&a)[4], int kt) {
#pragma unroll
      for (int dt = 0; dt < K::OW / 8; dt += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, w2s + (wn * K::OW + dt * 8 + b_row) * LDH + kt * 16 + b_col);
        mma_16816(o[dt], a, b[0], b[1]);
        mma_16816(o[dt + 1], a, b[2], b[3]);
      }
    };
    if constexpr (K::WN == 1) {
      // The accumulators of S tiles 2kt and 2kt+1 are exactly the A fragment of P's k16 step kt.
#pragma unroll
      for (int kt = 0; kt < HC / 16; ++kt) {
        const uint32_t a[4] = {pack_half2(s[2 * kt][0], s[2 * kt][1]), pack_half2(s[2 * kt][2], s[2 * kt][3]),
                               pack_half2(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                               pack_half2(s[2 * kt + 1][2], s[2 * kt + 1][3])};
        accumulate(a, kt);
      }
    } else {
      // Each warp of the row group holds SW of the HC columns of P: share them through sP. The barrier before the
      // next chunk's writes to sP is the one at the top of the loop.
      const int r = wm * 16 + g;
#pragma unroll
      for (int nt = 0; nt < K::SW / 8; ++nt) {
        const int c = wn * K::SW + nt * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(sP + r * LDH + c) = pack_half2(s[nt][0], s[nt][1]);
        *reinterpret_cast<uint32_t*>(sP + (r + 8) * LDH + c) = pack_half2(s[nt][2], s[nt][3]);
      }
      __syncthreads();
#pragma unroll
      for (int kt = 0; kt < HC / 16; ++kt) {
        uint32_t a[4];
        ldmatrix_x4(a, sP + (wm * 16 + (lane % 16)) * LDH + kt * 16 + (lane / 16) * 8);
        accumulate(a, kt);
      }
    }
  }

  // ---- Epilogue: x = fp16(O + b2 + x). Each element is read and written by the same thread, and rows belong to
  // one CTA, so updating x in place is race-free.
#pragma unroll
  for (int dt = 0; dt < K::OW / 8; ++dt) {
    const int c = wn * K::OW + dt * 8 + 2 * t;
    const float2 bb = __ldg(reinterpret_cast<const float2*>(p.b2 + c));
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = wm * 16 + g + 8 * h;
      if (r < rows) {
        __half2* px = reinterpret_cast<__half2*>(p.x + (row0 + r) * C + c);
        const float2 xv = __half22float2(*px);
        *px = __floats2half2_rn(o[dt][2 * h] + bb.x + xv.x, o[dt][2 * h + 1] + bb.y + xv.y);
      }
    }
  }
}

template <int C, int BM, int WN, int HC, MlpAct ACT>
cudaError_t launch(const FusedMlpParams& p, cudaStream_t stream) {
  using K = Tile<C, BM, WN, HC>;
  auto kernel = fused_mlp_kernel<K, ACT>;
  int device = 0, optin = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (K::kSmemBytes > optin) return cudaErrorNotSupported;
  if (K::kSmemBytes > 48 * 1024) {
    TRT_SWIN_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, K::kSmemBytes));
  }
  const int64_t blocks = (p.M + BM - 1) / BM;
  if (blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  kernel<<<static_cast<unsigned>(blocks), K::kThreads, K::kSmemBytes, stream>>>(p);
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

// The tile shapes. Variant 0 (default):
//   C <= 128:  128 rows x 8 warps, 64-wide hidden chunks, P register-resident (WN 1): O is C/2 floats per thread.
//   C 192, 256: 64 rows x 4 warps, 32-wide chunks, P register-resident: O is C/2 floats per thread (206 / 242
//              registers, no spills). Measured faster than the WN 2 tile on H100 at batch 128 (0.330 vs 0.377 ms at
//              C 192, 0.503 vs 0.590 ms at C 256).
//   other C > 128: 64 rows x 8 warps, 2 per row group (P through shared memory), 32-wide chunks: O is C/4 floats per
//              thread, which keeps C up to 384 in registers.
// Variant 1 is the alternative the benchmark compares: the WN 2 tile for C = 96, 128, 192, 256; other C have only
// variant 0.
template <MlpAct ACT>
cudaError_t dispatch(const FusedMlpParams& p, int variant, cudaStream_t stream) {
  const bool alt = variant == 1;
  switch (p.C) {
    case 32: return launch<32, 128, 1, 64, ACT>(p, stream);
    case 64: return launch<64, 128, 1, 64, ACT>(p, stream);
    case 96: return alt ? launch<96, 64, 2, 32, ACT>(p, stream) : launch<96, 128, 1, 64, ACT>(p, stream);
    case 128: return alt ? launch<128, 64, 2, 32, ACT>(p, stream) : launch<128, 128, 1, 64, ACT>(p, stream);
    case 160: return launch<160, 64, 2, 32, ACT>(p, stream);
    case 192: return alt ? launch<192, 64, 2, 32, ACT>(p, stream) : launch<192, 64, 1, 32, ACT>(p, stream);
    case 224: return launch<224, 64, 2, 32, ACT>(p, stream);
    case 256: return alt ? launch<256, 64, 2, 32, ACT>(p, stream) : launch<256, 64, 1, 32, ACT>(p, stream);
    case 288: return launch<288, 64, 2, 32, ACT>(p, stream);
    case 320: return launch<320, 64, 2, 32, ACT>(p, stream);
    case 352: return launch<352, 64, 2, 32, ACT>(p, stream);
    case 384: return launch<384, 64, 2, 32, ACT>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace fmlp
}  // namespace trt_swin
