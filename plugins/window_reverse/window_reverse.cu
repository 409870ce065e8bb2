// Window reverse + reverse shift + crop + (dequantize) + bias + residual (+ LayerNorm) in one pass
// (semantics in window_reverse.h).
//
// One lane group per OUTPUT row [b, h, w], so the residual read and both stores are contiguous and padded window
// rows are never read. The sum is rounded to fp16 before the LayerNorm, as in the fp16 model where norm2 reads the
// stored residual stream.
#include "window_reverse/window_reverse.h"

#include "common/cuda_check.h"
#include "common/memops_rowwise.cuh"

namespace trt_swin {
namespace {

using namespace memops;

// residual and out are not __restrict__: out may alias residual. Each row is read whole before it is written, by
// the same group, so the in-place update is race-free.
// LN_FP8: fp8 LayerNorm output (ln_out_int8 is then ignored); fp16 / int8 share the other instantiation
// (memops_rowwise.cuh), which also serves launches without a LayerNorm output.
template <int G, int VPT, bool LN_FP8>
__global__ void __launch_bounds__(kBlockThreads, min_blocks_per_sm<VPT>())
window_reverse_kernel(const void* __restrict__ y, bool y_int8, float y_scale, const float* __restrict__ bias,
                      const __half* residual, __half* out, const float* __restrict__ ln_gamma,
                      const float* __restrict__ ln_beta, float eps, void* __restrict__ ln_out, bool ln_out_int8,
                      float ln_out_scale, int H, int W, int C, int ws, int shift, int nWh, int nWw, int64_t rows) {
  const int lane_in_group = threadIdx.x % G;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kBlockThreads / G) + threadIdx.x / G;
  const bool in_range = row < rows;
  const int nvec = C / kVec;

  const int w = static_cast<int>(row % W);
  const int64_t bh = row / W;
  const int h = static_cast<int>(bh % H);
  const int64_t b = bh / H;
  // roll(+shift) undone: out[h, w] comes from the shifted map at ((h - shift) mod H, (w - shift) mod W).
  const int hs = (h + H - shift % H) % H;
  const int wsx = (w + W - shift % W) % W;
  const int64_t token = ((b * nWh + hs / ws) * nWw + wsx / ws) * (ws * ws) + (hs % ws) * ws + wsx % ws;

  // All loads of the row first: with out possibly aliasing residual, the compiler may not move a residual load
  // above an earlier store, so interleaving them would leave one vector in flight per lane.
  uint4 raw[VPT], yraw[VPT];  // an int8 y vector sits in yraw[k].x, .y
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    raw[k] = yraw[k] = make_uint4(0u, 0u, 0u, 0u);
    if (in_range && v < nvec) {
      const int c = v * kVec;
      if (y_int8) {
        const uint2 q = __ldg(reinterpret_cast<const uint2*>(static_cast<const int8_t*>(y) + token * C + c));
        yraw[k].x = q.x;
        yraw[k].y = q.y;
      } else {
        yraw[k] = __ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(y) + token * C + c));
      }
      raw[k] = *reinterpret_cast<const uint4*>(residual + row * C + c);
    }
  }
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    if (in_range && v < nvec) {
      const int c = v * kVec;
      float yv[kVec], r[kVec];
      if (y_int8) int8x8_to_float(make_uint2(yraw[k].x, yraw[k].y), y_scale, yv);
      else half8_to_float(yraw[k], yv);
      half8_to_float(raw[k], r);
      if (bias != nullptr) {
        float bv[kVec];
        load_float8(bias + c, bv);
#pragma unroll
        for (int i = 0; i < kVec; ++i) yv[i] += bv[i];
      }
#pragma unroll
      for (int i = 0; i < kVec; ++i) r[i] += yv[i];
      raw[k] = float_to_half8(r);
      *reinterpret_cast<uint4*>(out + row * C + c) = raw[k];
    }
  }
  if (ln_gamma == nullptr) return;  // uniform over the grid: no group is left waiting in a shuffle

  float mean, rstd;
  row_mean_rstd<G, VPT>(raw, lane_in_group, nvec, C, eps, mean, rstd);
  if (!in_range) return;
  void* ln_row = row_out_ptr<LN_FP8>(ln_out, row, C, ln_out_int8);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    if (v < nvec) {
      store_normed<LN_FP8>(raw[k], mean, rstd, ln_gamma, ln_beta, v * kVec, ln_row, ln_out_int8, ln_out_scale);
    }
  }
}

struct Launch {
  const WindowReverseParams& p;
  int nWh, nWw;
  int64_t rows;
  cudaStream_t stream;

  template <int G, int VPT, bool LN_FP8>
  cudaError_t launch() const {
    window_reverse_kernel<G, VPT, LN_FP8><<<row_grid<G>(rows), kBlockThreads, 0, stream>>>(
        p.y, p.y_int8, p.y_scale, p.bias, p.residual, p.out, p.ln_gamma, p.ln_beta, p.eps, p.ln_out, p.ln_out_int8,
        p.ln_out_scale, p.H, p.W, p.C, p.ws, p.shift, nWh, nWw, rows);
    TRT_SWIN_LAUNCH_CHECK();
    return cudaSuccess;
  }

  template <int G, int VPT>
  cudaError_t operator()() const {
    return p.ln_gamma != nullptr && p.ln_out_fp8 ? launch<G, VPT, true>() : launch<G, VPT, false>();
  }
};

bool misaligned(const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes != 0; }

}  // namespace

cudaError_t window_reverse(const WindowReverseParams& p, cudaStream_t stream) {
  if (p.B <= 0 || p.H <= 0 || p.W <= 0 || p.ws <= 0 || p.shift < 0 || p.C <= 0 || p.C % memops::kVec != 0)
    return cudaErrorInvalidValue;
  if (p.ln_gamma != nullptr && (p.ln_beta == nullptr || p.ln_out == nullptr)) return cudaErrorInvalidValue;
  if (p.ln_out_int8 && p.ln_out_fp8) return cudaErrorInvalidValue;
  // Vector access: 16 bytes for fp16 rows and fp32 parameters, 8 bytes for int8 / fp8 rows.
  if (misaligned(p.y, p.y_int8 ? 8 : 16) || misaligned(p.residual, 16) || misaligned(p.out, 16) ||
      misaligned(p.bias, 16) || misaligned(p.ln_gamma, 16) || misaligned(p.ln_beta, 16) ||
      misaligned(p.ln_out, p.ln_out_int8 || p.ln_out_fp8 ? 8 : 16))
    return cudaErrorMisalignedAddress;
  const int nWh = (p.H + p.ws - 1) / p.ws;
  const int nWw = (p.W + p.ws - 1) / p.ws;
  const int64_t rows = static_cast<int64_t>(p.B) * p.H * p.W;
  return memops::dispatch_row_split(p.C / memops::kVec, rows, Launch{p, nWh, nWw, rows, stream});
}

}  // namespace trt_swin
