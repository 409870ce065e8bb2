// LayerNorm + FC1 + GELU + FC2 + residual of a Swin block's MLP half, in place, torch-free API.
//
//   x[m, :] += fc2(act(fc1(LayerNorm(x[m, :]))))   for every token row m
//
// The [M, Hd] hidden never leaves the chip: a CTA keeps its tile of LayerNorm'd rows in shared memory, streams the
// weights through it in hidden-dimension chunks and accumulates FC2 in registers. Numerics: LayerNorm statistics in
// FP32, its output rounded to fp16 (the FC1 operand); FC1 accumulates in FP32, + b1, act, then the hidden is rounded
// to fp16 (as an FP16 engine that stores it would); FC2 accumulates in FP32 and + b2 + x is rounded to fp16 once.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

enum class MlpAct : int { kGeluErf = 0, kGeluTanh = 1 };

struct FusedMlpParams {
  __half* x;            // [M, C] fp16, read and updated in place (the residual stream)
  const float* gamma;   // [C] LayerNorm (norm2) weight
  const float* beta;    // [C] LayerNorm bias
  float eps;
  const __half* w1;     // [Hd, C] fc1 weight (nn.Linear layout)
  const float* b1;      // [Hd]
  const __half* w2;     // [C, Hd] fc2 weight
  const float* b2;      // [C]
  int64_t M;
  int C;                // multiple of 32 in [32, 384]
  int Hd;               // multiple of 64
  MlpAct act = MlpAct::kGeluErf;
  int variant = -1;     // mma.sync tile shape: -1 the default (or $TRT_SWIN_MLP_VARIANT, a sweep knob); 0 or 1 forces one
  // 0: the Hopper (wgmma) kernel where it runs (compute capability 9.0, built with sm_90a, Hd = 4C, C <= 96), else the
  // mma.sync kernel; 1: the mma.sync kernel; 2: the wgmma kernel or cudaErrorNotSupported. $TRT_SWIN_MLP_IMPL
  // (mma | wgmma) sets it when 0 (sweeps and tests).
  int impl = 0;
};

// True when (C, Hd) is supported (see FusedMlpParams).
bool fused_mlp_supported(int C, int Hd);

// cudaErrorInvalidValue for unsupported shapes or null pointers, cudaErrorMisalignedAddress unless every pointer is
// 16-byte aligned, cudaErrorNotSupported when the device has too little shared memory per block for the tile.
cudaError_t fused_mlp(const FusedMlpParams& p, cudaStream_t stream);

// The Hopper kernel (fused_mlp_sm90a.cu, compiled for sm_90a only: TRT_SWIN_HAS_SM90A), called by fused_mlp on a
// compute capability 9.0 device.
bool fused_mlp_sm90a_supported(int C, int Hd);
cudaError_t fused_mlp_sm90a(const FusedMlpParams& p, cudaStream_t stream);

}  // namespace trt_swin
