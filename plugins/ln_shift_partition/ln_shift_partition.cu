// LayerNorm + cyclic shift + zero padding + window partition in one pass (semantics in ln_shift_partition.h).
//
// One lane group per OUTPUT row (window order), so padded rows are written (as zeros) by the same pass and every
// store is a contiguous row. Each group gathers its source row [b, (hp + shift) % H, (wp + shift) % W] whole.
#include "ln_shift_partition/ln_shift_partition.h"

#include "common/cuda_check.h"
#include "common/memops_rowwise.cuh"

namespace trt_swin {
namespace {

using namespace memops;

// OUT_FP8: fp8 output (out_int8 is then ignored); fp16 / int8 share the other instantiation (memops_rowwise.cuh).
template <int G, int VPT, bool OUT_FP8>
__global__ void __launch_bounds__(kBlockThreads, min_blocks_per_sm<VPT>())
ln_shift_partition_kernel(const __half* __restrict__ x, const float* __restrict__ gamma,
                          const float* __restrict__ beta, float eps, void* __restrict__ out, int H, int W, int C,
                          int ws, int shift, int nWh, int nWw, int64_t rows, bool out_int8, float out_scale) {
  const int lane_in_group = threadIdx.x % G;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kBlockThreads / G) + threadIdx.x / G;
  const int nvec = C / kVec;

  // Output row -> (b, window, position in window) -> padded shifted coordinates (hp, wp).
  const int N = ws * ws;
  const int64_t win = row / N;
  const int t = static_cast<int>(row - win * N);
  const int ww = static_cast<int>(win % nWw);
  const int64_t bwh = win / nWw;
  const int wh = static_cast<int>(bwh % nWh);
  const int64_t b = bwh / nWh;
  const int hp = wh * ws + t / ws;
  const int wp = ww * ws + t % ws;
  // The grid's last block may hold rows past the end: they take part in the shuffles but touch no memory.
  const bool in_range = row < rows;
  const bool is_pad = hp >= H || wp >= W;

  uint4 raw[VPT];
  if (in_range && !is_pad) {
    // roll(-shift) then pad: padded position (hp, wp) < (H, W) reads source ((hp + shift) % H, (wp + shift) % W).
    const int h = (hp + shift) % H;
    const int w = (wp + shift) % W;
    const uint4* src = reinterpret_cast<const uint4*>(x + ((b * H + h) * W + w) * C);
#pragma unroll
    for (int k = 0; k < VPT; ++k) {
      const int v = k * G + lane_in_group;
      raw[k] = v < nvec ? __ldg(src + v) : make_uint4(0u, 0u, 0u, 0u);
    }
  } else {
#pragma unroll
    for (int k = 0; k < VPT; ++k) raw[k] = make_uint4(0u, 0u, 0u, 0u);
  }

  float mean, rstd;
  row_mean_rstd<G, VPT>(raw, lane_in_group, nvec, C, eps, mean, rstd);
  if (!in_range) return;

  void* out_row = row_out_ptr<OUT_FP8>(out, row, C, out_int8);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    if (v < nvec) {
      // Padding comes after the norm in timm, so padded rows are exact zeros, not LN(0) = beta.
      if (is_pad) store_zeros<OUT_FP8>(v * kVec, out_row, out_int8);
      else store_normed<OUT_FP8>(raw[k], mean, rstd, gamma, beta, v * kVec, out_row, out_int8, out_scale);
    }
  }
}

struct Launch {
  const LnShiftPartitionParams& p;
  int nWh, nWw;
  int64_t rows;
  cudaStream_t stream;

  template <int G, int VPT, bool OUT_FP8>
  cudaError_t launch() const {
    ln_shift_partition_kernel<G, VPT, OUT_FP8><<<row_grid<G>(rows), kBlockThreads, 0, stream>>>(
        p.x, p.gamma, p.beta, p.eps, p.out, p.H, p.W, p.C, p.ws, p.shift, nWh, nWw, rows, p.out_int8, p.out_scale);
    TRT_SWIN_LAUNCH_CHECK();
    return cudaSuccess;
  }

  template <int G, int VPT>
  cudaError_t operator()() const {
    return p.out_fp8 ? launch<G, VPT, true>() : launch<G, VPT, false>();
  }
};

}  // namespace

cudaError_t ln_shift_partition(const LnShiftPartitionParams& p, cudaStream_t stream) {
  // 16-byte vectors need C % 8 == 0 (every Swin width is a multiple of 32) and 16-byte aligned rows.
  if (p.B <= 0 || p.H <= 0 || p.W <= 0 || p.ws <= 0 || p.C <= 0 || p.C % kVec != 0) return cudaErrorInvalidValue;
  if (p.shift < 0 || (p.out_int8 && p.out_fp8)) return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(p.x) % 16 || reinterpret_cast<uintptr_t>(p.out) % 16 ||
      reinterpret_cast<uintptr_t>(p.gamma) % 16 || reinterpret_cast<uintptr_t>(p.beta) % 16)
    return cudaErrorMisalignedAddress;
  const int nWh = (p.H + p.ws - 1) / p.ws;
  const int nWw = (p.W + p.ws - 1) / p.ws;
  const int64_t rows = static_cast<int64_t>(p.B) * nWh * nWw * p.ws * p.ws;
  if (rows == 0) return cudaSuccess;
  return memops::dispatch_row_split(p.C / memops::kVec, rows, Launch{p, nWh, nWw, rows, stream});
}

}  // namespace trt_swin
