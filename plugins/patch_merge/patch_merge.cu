// Patch merging: 2x2 gather + zero padding of odd sizes + LayerNorm over 4C, one pass (semantics in patch_merge.h).
//
// One lane group per output row [b, i, j] of 4C channels. Channel segment s (C channels each) comes from
// x[2i + (s & 1), 2j + (s >> 1)]: timm's reshape(B, H/2, 2, W/2, 2, C).permute(0, 1, 3, 4, 2, 5) puts the column
// offset outside the row offset. C % 8 == 0, so no 8-channel vector straddles two segments.
#include "patch_merge/patch_merge.h"

#include "common/cuda_check.h"
#include "common/memops_rowwise.cuh"

namespace trt_swin {
namespace {

using namespace memops;

// OUT_FP8: fp8 output (out_int8 is then ignored); fp16 / int8 share the other instantiation (memops_rowwise.cuh).
template <int G, int VPT, bool OUT_FP8>
__global__ void __launch_bounds__(kBlockThreads, min_blocks_per_sm<VPT>())
patch_merge_kernel(const __half* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta,
                   float eps, void* __restrict__ out, int H, int W, int C, int Ho, int Wo, int64_t rows,
                   bool out_int8, float out_scale) {
  const int lane_in_group = threadIdx.x % G;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kBlockThreads / G) + threadIdx.x / G;
  const bool in_range = row < rows;
  const int C4 = 4 * C;
  const int nvec = C4 / kVec;
  const int seg_vec = C / kVec;

  const int j = static_cast<int>(row % Wo);
  const int64_t bi = row / Wo;
  const int i = static_cast<int>(bi % Ho);
  const int64_t b = bi / Ho;

  uint4 raw[VPT];
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    raw[k] = make_uint4(0u, 0u, 0u, 0u);
    if (in_range && v < nvec) {
      const int s = v / seg_vec;
      const int h = 2 * i + (s & 1);
      const int w = 2 * j + (s >> 1);
      // Odd H or W: the missing row / column is timm's zero padding, and it takes part in the LayerNorm.
      if (h < H && w < W) {
        const int c = (v - s * seg_vec) * kVec;
        raw[k] = __ldg(reinterpret_cast<const uint4*>(x + ((b * H + h) * W + w) * C + c));
      }
    }
  }

  float mean, rstd;
  row_mean_rstd<G, VPT>(raw, lane_in_group, nvec, C4, eps, mean, rstd);
  if (!in_range) return;
  void* out_row = row_out_ptr<OUT_FP8>(out, row, C4, out_int8);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int v = k * G + lane_in_group;
    if (v < nvec) store_normed<OUT_FP8>(raw[k], mean, rstd, gamma, beta, v * kVec, out_row, out_int8, out_scale);
  }
}

struct Launch {
  const PatchMergeParams& p;
  int Ho, Wo;
  int64_t rows;
  cudaStream_t stream;

  template <int G, int VPT, bool OUT_FP8>
  cudaError_t launch() const {
    patch_merge_kernel<G, VPT, OUT_FP8><<<row_grid<G>(rows), kBlockThreads, 0, stream>>>(
        p.x, p.gamma, p.beta, p.eps, p.out, p.H, p.W, p.C, Ho, Wo, rows, p.out_int8, p.out_scale);
    TRT_SWIN_LAUNCH_CHECK();
    return cudaSuccess;
  }

  template <int G, int VPT>
  cudaError_t operator()() const {
    return p.out_fp8 ? launch<G, VPT, true>() : launch<G, VPT, false>();
  }
};

}  // namespace

cudaError_t patch_merge(const PatchMergeParams& p, cudaStream_t stream) {
  if (p.B <= 0 || p.H <= 0 || p.W <= 0 || p.C <= 0 || p.C % memops::kVec != 0) return cudaErrorInvalidValue;
  if (p.out_int8 && p.out_fp8) return cudaErrorInvalidValue;
  if (reinterpret_cast<uintptr_t>(p.x) % 16 || reinterpret_cast<uintptr_t>(p.out) % 16 ||
      reinterpret_cast<uintptr_t>(p.gamma) % 16 || reinterpret_cast<uintptr_t>(p.beta) % 16)
    return cudaErrorMisalignedAddress;
  const int Ho = (p.H + 1) / 2;
  const int Wo = (p.W + 1) / 2;
  const int64_t rows = static_cast<int64_t>(p.B) * Ho * Wo;
  return memops::dispatch_row_split(4 * p.C / memops::kVec, rows, Launch{p, Ho, Wo, rows, stream});
}

}  // namespace trt_swin
