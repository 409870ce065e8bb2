// GEMM epilogue: dequantize * per-column scale + bias -> GELU -> + residual -> fp16 or int8 (semantics in epilogue.h).
//
// Elementwise over [M, N] in vectors of 8 consecutive elements of a row (N % 8 == 0, true of every Swin GEMM), two
// vectors per thread per step; a scalar kernel covers other N. Grid-stride loop, so any M fits one launch.
#include "epilogue/epilogue.h"

#include <algorithm>

#include "common/cuda_check.h"
#include "common/memops_rowwise.cuh"

namespace trt_swin {
namespace {

using namespace memops;

template <EpilogueDType In>
__device__ __forceinline__ void load_in8(const void* in, int64_t e, float (&f)[kVec]) {
  if constexpr (In == EpilogueDType::kFp16) {
    half8_to_float(__ldg(reinterpret_cast<const uint4*>(static_cast<const __half*>(in) + e)), f);
  } else if constexpr (In == EpilogueDType::kInt8) {
    int8x8_to_float(__ldg(reinterpret_cast<const uint2*>(static_cast<const int8_t*>(in) + e)), 1.f, f);
  } else {
    const int4* p = reinterpret_cast<const int4*>(static_cast<const int32_t*>(in) + e);
    const int4 a = __ldg(p), b = __ldg(p + 1);
    // int32 -> fp32 rounds only above 2^24 (relative error <= 2^-24), far below the fp16 / int8 output's resolution.
    f[0] = static_cast<float>(a.x); f[1] = static_cast<float>(a.y); f[2] = static_cast<float>(a.z); f[3] = static_cast<float>(a.w);
    f[4] = static_cast<float>(b.x); f[5] = static_cast<float>(b.y); f[6] = static_cast<float>(b.z); f[7] = static_cast<float>(b.w);
  }
}

template <EpilogueDType In>
__device__ __forceinline__ float load_in1(const void* in, int64_t e) {
  if constexpr (In == EpilogueDType::kFp16) return __half2float(static_cast<const __half*>(in)[e]);
  else if constexpr (In == EpilogueDType::kInt8) return static_cast<float>(static_cast<const int8_t*>(in)[e]);
  else return static_cast<float>(static_cast<const int32_t*>(in)[e]);
}

__device__ __forceinline__ float gelu_erf(float v) { return 0.5f * v * (1.f + erff(v * 0.70710678118654752f)); }

struct EpilogueArgs {
  const void* in;
  float in_scale;
  const float* col_scale;
  const float* bias;
  bool gelu;
  const __half* residual;
  void* out;
  bool out_int8;
  float out_scale;
  int N;
};

// One 8-element vector: everything after the loads.
template <EpilogueDType In>
__device__ __forceinline__ void finish_vec8(const EpilogueArgs& a, int64_t e, int n, float (&f)[kVec], const uint4& res) {
#pragma unroll
  for (int i = 0; i < kVec; ++i) f[i] *= a.in_scale;
  if (a.col_scale != nullptr) {
    float s[kVec];
    load_float8(a.col_scale + n, s);
#pragma unroll
    for (int i = 0; i < kVec; ++i) f[i] *= s[i];
  }
  if (a.bias != nullptr) {
    float bv[kVec];
    load_float8(a.bias + n, bv);
#pragma unroll
    for (int i = 0; i < kVec; ++i) f[i] += bv[i];
  }
  if (a.gelu) {
#pragma unroll
    for (int i = 0; i < kVec; ++i) f[i] = gelu_erf(f[i]);
  }
  if (a.residual != nullptr) {
    float r[kVec];
    half8_to_float(res, r);
#pragma unroll
    for (int i = 0; i < kVec; ++i) f[i] += r[i];
  }
  if (a.out_int8) *reinterpret_cast<uint2*>(static_cast<int8_t*>(a.out) + e) = float_to_int8x8(f, a.out_scale);
  else *reinterpret_cast<uint4*>(static_cast<__half*>(a.out) + e) = float_to_half8(f);
}

// kUnroll vectors per thread per step, all loaded before any is processed: a single 16-byte fp16 load in flight
// per thread is not enough to saturate HBM. Index is int32 when the tensor allows (cheaper div / mod).
constexpr int kUnroll = 2;

template <EpilogueDType In, typename Index>
__global__ void __launch_bounds__(kBlockThreads)
epilogue_vec8_kernel(EpilogueArgs a, Index nvec_total) {
  const Index nvec_row = a.N / kVec;
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x * kUnroll;
  for (Index base = static_cast<Index>(blockIdx.x) * blockDim.x * kUnroll + threadIdx.x; base < nvec_total;
       base += stride) {
    float f[kUnroll][kVec];
    uint4 res[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const Index vi = base + u * static_cast<Index>(blockDim.x);
      res[u] = make_uint4(0u, 0u, 0u, 0u);
      if (vi < nvec_total) {
        load_in8<In>(a.in, static_cast<int64_t>(vi) * kVec, f[u]);
        if (a.residual != nullptr) res[u] = __ldg(reinterpret_cast<const uint4*>(a.residual + static_cast<int64_t>(vi) * kVec));
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const Index vi = base + u * static_cast<Index>(blockDim.x);
      if (vi < nvec_total) {
        const int n = static_cast<int>(vi % nvec_row) * kVec;
        finish_vec8<In>(a, static_cast<int64_t>(vi) * kVec, n, f[u], res[u]);
      }
    }
  }
}

template <EpilogueDType In>
__global__ void __launch_bounds__(kBlockThreads)
epilogue_scalar_kernel(const void* __restrict__ in, float in_scale, const float* __restrict__ col_scale,
                       const float* __restrict__ bias, bool gelu, const __half* __restrict__ residual,
                       void* __restrict__ out, bool out_int8, float out_scale, int64_t total, int N) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(e % N);
    float f = load_in1<In>(in, e) * in_scale;
    if (col_scale != nullptr) f *= col_scale[n];
    if (bias != nullptr) f += bias[n];
    if (gelu) f = gelu_erf(f);
    if (residual != nullptr) f += __half2float(residual[e]);
    if (out_int8) static_cast<int8_t*>(out)[e] = quantize_int8(f, out_scale);
    else static_cast<__half*>(out)[e] = __float2half_rn(f);
  }
}

template <EpilogueDType In>
cudaError_t launch(const EpilogueParams& p, cudaStream_t stream) {
  const bool gelu = p.act == EpilogueAct::kGelu;
  const bool out_int8 = p.out_type == EpilogueDType::kInt8;
  const int64_t total = p.M * p.N;
  const bool vec_ok = p.N % kVec == 0 && reinterpret_cast<uintptr_t>(p.in) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.out) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.residual) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.col_scale) % 16 == 0 &&
                      reinterpret_cast<uintptr_t>(p.bias) % 16 == 0;
  const int64_t work = vec_ok ? total / kVec : total;
  const int64_t per_block = vec_ok ? int64_t{kBlockThreads} * kUnroll : kBlockThreads;
  // Enough blocks for many waves on the largest GPU; the grid-stride loop covers the rest.
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>((work + per_block - 1) / per_block, 1 << 20));
  if (vec_ok) {
    const EpilogueArgs a{p.in, p.in_scale, p.col_scale, p.bias, gelu, p.residual, p.out, out_int8, p.out_scale, p.N};
    if (work + per_block * grid < INT32_MAX) {
      epilogue_vec8_kernel<In, int32_t><<<grid, kBlockThreads, 0, stream>>>(a, static_cast<int32_t>(work));
    } else {
      epilogue_vec8_kernel<In, int64_t><<<grid, kBlockThreads, 0, stream>>>(a, work);
    }
  } else {
    epilogue_scalar_kernel<In><<<grid, kBlockThreads, 0, stream>>>(p.in, p.in_scale, p.col_scale, p.bias, gelu,
                                                                   p.residual, p.out, out_int8, p.out_scale, work, p.N);
  }
  TRT_SWIN_LAUNCH_CHECK();
  return cudaSuccess;
}

}  // namespace

cudaError_t epilogue(const EpilogueParams& p, cudaStream_t stream) {
  if (p.M < 0 || p.N <= 0) return cudaErrorInvalidValue;
  if (p.out_type != EpilogueDType::kFp16 && p.out_type != EpilogueDType::kInt8) return cudaErrorInvalidValue;
  if (p.M == 0) return cudaSuccess;
  switch (p.in_type) {
    case EpilogueDType::kFp16: return launch<EpilogueDType::kFp16>(p, stream);
    case EpilogueDType::kInt8: return launch<EpilogueDType::kInt8>(p, stream);
    case EpilogueDType::kInt32: return launch<EpilogueDType::kInt32>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace trt_swin
