// Device helpers shared by the row-wise memory-bound kernels (ln_shift_partition, window_reverse, patch_merge,
// epilogue). Not a public API: kernel code only.
//
// Work split: a token row of C channels is handled by a group of G lanes (G a power of two, 2..32, aligned inside
// a warp), each lane holding VPT vectors of 8 channels. Vector v of a row goes to lane v % G, slot v / G, so at each
// slot the G lanes of a group touch G consecutive 16-byte chunks (coalesced), and small C still keeps all 32 lanes
// of a warp busy (C = 96: 4 lanes x 3 vectors, 8 rows per warp).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common/fp8.cuh"

namespace trt_swin {
namespace memops {

constexpr int kVec = 8;            // channels per vector: 8 halves = 16 bytes, 8 int8 / fp8 = 8 bytes
constexpr int kBlockThreads = 256;

// Blocks per SM to ask of the register allocator (__launch_bounds__ min blocks). ptxas hoists a row's gamma / beta
// loads (16 registers per vector) above the statistics to hide their latency, so long rows need a larger register
// budget: VPT <= 6 fits 64 / 80 registers without spills, VPT = 8 needs 128; VPT >= 12 (4C = 3072, Swin-L's last
// patch merge) spills about 100 bytes into L1 at 128, which we take over one resident block per SM; VPT = 16
// (4096 channels, no Swin model) gets all 255.
template <int VPT>
constexpr int min_blocks_per_sm() {
  return VPT <= 4 ? 4 : VPT <= 6 ? 3 : VPT <= 12 ? 2 : 1;
}

// Sum over the G lanes of an aligned lane group (xor offsets below G never leave the group).
template <int G>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int off = G / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ void half8_to_float(const uint4& raw, float (&f)[kVec]) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 t = __half22float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

__device__ __forceinline__ uint4 float_to_half8(const float (&f)[kVec]) {
  uint4 raw;
  __half2* h = reinterpret_cast<__half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
  return raw;
}

__device__ __forceinline__ void int8x8_to_float(const uint2& raw, float scale, float (&f)[kVec]) {
  const int8_t* q = reinterpret_cast<const int8_t*>(&raw);
#pragma unroll
  for (int i = 0; i < kVec; ++i) f[i] = static_cast<float>(q[i]) * scale;
}

// Saturating round-to-nearest-even INT8 quantization: clamp(__float2int_rn(v / scale), -128, 127).
// __fdiv_rn keeps the IEEE division under --use_fast_math, so the result matches torch.round(v / scale) exactly.
__device__ __forceinline__ int8_t quantize_int8(float v, float scale) {
  int q = __float2int_rn(__fdiv_rn(v, scale));
  return static_cast<int8_t>(max(-128, min(127, q)));
}

__device__ __forceinline__ uint2 float_to_int8x8(const float (&f)[kVec], float scale) {
  uint2 raw;
  int8_t* q = reinterpret_cast<int8_t*>(&raw);
#pragma unroll
  for (int i = 0; i < kVec; ++i) q[i] = quantize_int8(f[i], scale);
  return raw;
}

// Per-channel parameters ([C] fp32, read by every row: L1 / L2 hits).
__device__ __forceinline__ void load_float8(const float* p, float (&f)[kVec]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w;
  f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}

// LayerNorm of one row held as raw fp16 vectors by a group: two-pass statistics in FP32 over the values in
// registers (mean first, then the centered sum of squares), which stays accurate for rows with a large mean.
// Vectors with index >= nvec are padding and must hold zeros; `n` is the true channel count.
template <int G, int VPT>
__device__ __forceinline__ void row_mean_rstd(const uint4 (&raw)[VPT], int lane_in_group, int nvec, int n, float eps,
                                              float& mean, float& rstd) {
  float s = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    float f[kVec];
    half8_to_float(raw[k], f);
#pragma unroll
    for (int i = 0; i < kVec; ++i) s += f[i];
  }
  mean = group_sum<G>(s) / static_cast<float>(n);
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    if (k * G + lane_in_group < nvec) {
      float f[kVec];
      half8_to_float(raw[k], f);
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        const float d = f[i] - mean;
        ss += d * d;
      }
    }
  }
  const float var = group_sum<G>(ss) / static_cast<float>(n);
  rstd = rsqrtf(var + eps);
}

// Output kinds of the row-wise kernels' (LayerNorm) output: fp16, int8 or fp8 e4m3, the quantized ones with a
// per-tensor scale: sat(v / out_scale), round to nearest even. FP8 is a template parameter (OUT_FP8: instantiations
// of its own, no branch in their store loop); fp16 vs int8 stays the runtime `out_int8` it was before FP8 existed,
// so the OUT_FP8 = false kernels compile to the same code as then (same registers, same speed).

// Start of row `row` of a [rows, C] output: 1-byte elements for int8 / fp8, 2 for fp16.
template <bool OUT_FP8>
__device__ __forceinline__ void* row_out_ptr(void* out, int64_t row, int C, bool out_int8) {
  return OUT_FP8 || out_int8 ? static_cast<void*>(static_cast<int8_t*>(out) + row * C)
                             : static_cast<void*>(static_cast<__half*>(out) + row * C);
}

// Normalizes vector k of a row (channel offset c) and stores it at `out_row`: 8 bytes of fp8 (OUT_FP8) or int8
// (out_int8), else 16 bytes of fp16.
template <bool OUT_FP8>
__device__ __forceinline__ void store_normed(const uint4& raw, float mean, float rstd, const float* gamma,
                                             const float* beta, int c, void* out_row, bool out_int8,
                                             float out_scale) {
  float f[kVec], g[kVec], b[kVec];
  half8_to_float(raw, f);
  load_float8(gamma + c, g);
  load_float8(beta + c, b);
#pragma unroll
  for (int i = 0; i < kVec; ++i) f[i] = (f[i] - mean) * rstd * g[i] + b[i];
  if constexpr (OUT_FP8) {
    *reinterpret_cast<uint2*>(static_cast<uint8_t*>(out_row) + c) = float_to_fp8x8(f, out_scale);
  } else if (out_int8) {
    *reinterpret_cast<uint2*>(static_cast<int8_t*>(out_row) + c) = float_to_int8x8(f, out_scale);
  } else {
    *reinterpret_cast<uint4*>(static_cast<__half*>(out_row) + c) = float_to_half8(f);
  }
}

// Zeros are 0 bits in all three kinds.
template <bool OUT_FP8>
__device__ __forceinline__ void store_zeros(int c, void* out_row, bool out_int8) {
  if (OUT_FP8 || out_int8) {
    *reinterpret_cast<uint2*>(static_cast<int8_t*>(out_row) + c) = make_uint2(0u, 0u);
  } else {
    *reinterpret_cast<uint4*>(static_cast<__half*>(out_row) + c) = make_uint4(0u, 0u, 0u, 0u);
  }
}

// Vectors per lane to aim for: 3, or 6 when that turns a grid of between one and two waves into one wave.
// Measured on H200 (bench_memops, batch 128): target 3 is up to 20% faster on multi-wave grids (window_reverse
// Swin-T stage 1: 79 vs 100 us), target 6 up to 15% faster on Swin-T stage 4 (6272 rows of C = 768: 7.5 vs
// 8.7 us), where target 3 leaves a 1.2-wave tail. Wave capacity is estimated from the launch-bound guarantee
// (min_blocks_per_sm x 8 warps per SM). $TRT_SWIN_ROW_TARGET_VPT (3..6) forces a target (development knob).
inline bool pick_row_split(int nvec, int target, int& G, int& VPT);

inline int row_target_vpt(int nvec, int64_t rows) {
  const char* env = std::getenv("TRT_SWIN_ROW_TARGET_VPT");
  const int forced = env ? std::atoi(env) : 0;
  if (forced >= 3 && forced <= 6) return forced;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms <= 0)
    return 3;
  auto capacity = [&](int target) -> int64_t {  // rows resident at once
    int G = 0, VPT = 0;
    if (!pick_row_split(nvec, target, G, VPT)) return 0;
    const int warps = 8 * (VPT <= 4 ? 4 : VPT <= 6 ? 3 : VPT <= 12 ? 2 : 1);  // min_blocks_per_sm<VPT>() blocks
    return int64_t{sms} * warps * (32 / G);
  };
  const int64_t cap3 = capacity(3), cap6 = capacity(6);
  return rows > cap3 && rows <= 2 * cap3 && rows <= cap6 ? 6 : 3;
}

// (G, VPT) for a row of nvec vectors: the smallest group with at most `target` vectors per lane (VPT 5 rounds up to
// 6), else a full warp with 8, 12 or 16. Returns false when the row is longer than 512 vectors (4096 channels).
inline bool pick_row_split(int nvec, int target, int& G, int& VPT) {
  for (int g = 2; g <= 32; g *= 2) {
    if (nvec <= target * g) {
      G = g;
      VPT = (nvec + g - 1) / g;
      if (VPT == 5) VPT = 6;
      return true;
    }
  }
  G = 32;
  const int need = (nvec + 31) / 32;
  if (need <= 6) VPT = 6;
  else if (need <= 8) VPT = 8;
  else if (need <= 12) VPT = 12;
  else if (need <= 16) VPT = 16;
  else return false;
  return true;
}

// Calls fn.template operator()<G, VPT>() with the compile-time split chosen by pick_row_split.
template <typename Fn>
cudaError_t dispatch_row_split(int nvec, int64_t rows, Fn&& fn) {
  int G = 0, VPT = 0;
  if (!pick_row_split(nvec, row_target_vpt(nvec, rows), G, VPT)) return cudaErrorInvalidValue;
#define TRT_SWIN_ROW_CASE(g, v) \
  if (G == g && VPT == v) return fn.template operator()<g, v>();
#define TRT_SWIN_ROW_CASES(g) \
  TRT_SWIN_ROW_CASE(g, 1) TRT_SWIN_ROW_CASE(g, 2) TRT_SWIN_ROW_CASE(g, 3) TRT_SWIN_ROW_CASE(g, 4) TRT_SWIN_ROW_CASE(g, 6)
  TRT_SWIN_ROW_CASES(2) TRT_SWIN_ROW_CASES(4) TRT_SWIN_ROW_CASES(8) TRT_SWIN_ROW_CASES(16) TRT_SWIN_ROW_CASES(32)
  TRT_SWIN_ROW_CASE(32, 8) TRT_SWIN_ROW_CASE(32, 12) TRT_SWIN_ROW_CASE(32, 16)
#undef TRT_SWIN_ROW_CASES
#undef TRT_SWIN_ROW_CASE
  return cudaErrorInvalidValue;
}

// Grid for `rows` rows with groups of G lanes, kBlockThreads per block.
template <int G>
inline unsigned row_grid(int64_t rows) {
  constexpr int rows_per_block = kBlockThreads / G;
  return static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
}

}  // namespace memops
}  // namespace trt_swin
