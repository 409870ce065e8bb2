// The elementwise work a GEMM library cannot fuse, in one pass, torch-free API:
//   out[m, n] = act(in[m, n] * in_scale * col_scale[n] + bias[n]) + residual[m, n]
// then optionally quantized. Covers bias + GELU (+ quantize), dequantize + bias + residual (INT32 / INT8 GEMM output),
// plain quantize and dequantize.
#pragma once
#include <cstdint>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace trt_swin {

enum class EpilogueDType : int { kFp16 = 0, kInt8 = 1, kInt32 = 2 };
enum class EpilogueAct : int { kNone = 0, kGelu = 1 /* erf GELU, as torch.nn.GELU() */ };

struct EpilogueParams {
  const void* in;            // [M, N]
  EpilogueDType in_type;     // fp16, int8, or int32 (GEMM accumulators)
  float in_scale = 1.f;      // per-tensor dequantization scale of int8 / int32 input
  const float* col_scale;    // [N] per-output-channel scale (per-channel INT8 weights), or nullptr
  const float* bias;         // [N] or nullptr
  EpilogueAct act = EpilogueAct::kNone;
  const __half* residual;    // [M, N] fp16 or nullptr, added after the activation
  void* out;                 // [M, N]
  EpilogueDType out_type;    // fp16, or int8: sat(round(value / out_scale))
  float out_scale = 1.f;
  int64_t M;
  int N;
};

cudaError_t epilogue(const EpilogueParams& p, cudaStream_t stream);

}  // namespace trt_swin
