// GEMM through cuBLASLt with fused epilogues, torch-free API (shared by the PyTorch op and the native engine).
//
//   d[m, n] = act(alpha * sum_k a[m, k] * b[n, k] + bias[n]) + c[m, n]
//
// Row-major a [M, K] (activations) and b [N, K] (nn.Linear weight layout, "TN"); d and c are row-major [M, N].
//   fp16 a/b -> fp16 d: fp32 accumulation; bias fp16 [N]; act none or GELU (cuBLASLt's GELU is the tanh
//                        approximation, not the erf GELU of torch.nn.GELU); c fp16 (beta = 1 residual), may alias d.
//   int8 a/b -> int32 d: exact int32 accumulators; no bias, act, c or alpha (dequantize with the epilogue op).
//   fp8 e4m3 a/b (Hopper, Ada) -> fp16 d, or fp8 e4m3 d: the product is scaled by *a_scale * *b_scale (per-tensor
//                        dequantization scales, device scalars); bias fp16, act, c fp16 as for fp16; an fp8 d is
//                        sat(value * *d_scale) with d_scale = 1 / the output's quantization scale.
// The algorithm is chosen once per (types, shape, epilogue, pointer alignment): outside CUDA graph capture by timing
// cuBLASLt's top heuristic candidates on the problem itself ($TRT_SWIN_GEMM_CANDIDATES of them, default 8;
// $TRT_SWIN_GEMM_AUTOTUNE=0: the first candidate;
// $TRT_SWIN_GEMM_LOG=1 prints each choice), and cached for the process.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cublasLt.h>
#include <cuda_runtime.h>

namespace trt_swin {

enum class GemmDType : int { kFp16 = 0, kInt8 = 1, kInt32 = 2, kFp8E4M3 = 3 };
enum class GemmAct : int { kNone = 0, kGeluTanh = 1 };

struct GemmParams {
  const void* a;           // [M, K] row-major
  const void* b;           // [N, K] row-major (weights)
  const void* bias;        // [N] fp16, or nullptr
  const void* c;           // [M, N] fp16 residual added with beta = 1, or nullptr; may equal d
  void* d;                 // [M, N] row-major
  GemmDType ab_type;       // kFp16, kInt8 or kFp8E4M3
  GemmDType d_type;        // kFp16 (fp16 or fp8 a/b), kInt32 (int8 a/b) or kFp8E4M3 (fp8 a/b)
  GemmAct act = GemmAct::kNone;
  float alpha = 1.f;       // fp16 and fp8
  const float* a_scale = nullptr;  // fp8: device scalar, dequantization scale of a
  const float* b_scale = nullptr;  // fp8: device scalar, dequantization scale of b
  const float* d_scale = nullptr;  // fp8 d: device scalar multiplying the result before the fp8 conversion
  int64_t M;
  int N, K;                // int8: K % 4 == 0 (IMMA); fp8: N, K % 16 == 0; fp16: any, multiples of 8 run on tensor cores
  void* workspace;         // device scratch for split-K algorithms
  size_t workspace_size;
};

// cudaErrorNotSupported when cuBLASLt has no algorithm for the problem, cudaErrorInvalidValue for bad parameters,
// cudaErrorUnknown for other cuBLAS failures; gemm_last_error() then describes the failure (this thread).
cudaError_t gemm(const GemmParams& p, cublasLtHandle_t handle, cudaStream_t stream);
const char* gemm_last_error();

}  // namespace trt_swin
