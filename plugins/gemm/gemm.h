// GEMM through cuBLASLt with fused epilogues, torch-free API (shared by the PyTorch op and the native engine).
//
//   d[m, n] = act(alpha * sum_k a[m, k] * b[n, k] + bias[n]) + c[m, n]
//
// Row-major a [M, K] (activations) and b [N, K] (nn.Linear weight layout, "TN"); d and c are row-major [M, N].
//   fp16 a/b -> fp16 d: fp32 accumulation; bias fp16 [N]; act none or GELU (cuBLASLt's GELU is the tanh
//                        approximation, not the erf GELU of torch.nn.GELU); c fp16 (beta = 1 residual), may alias d.
//   int8 a/b -> int32 d: exact int32 accumulators; no bias, act, c or alpha (dequantize with the epilogue op).
// The algorithm is chosen once per (types, shape, epilogue, pointer alignment) by cuBLASLt's heuristic and cached.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cublasLt.h>
#include <cuda_runtime.h>

namespace trt_swin {

enum class GemmDType : int { kFp16 = 0, kInt8 = 1, kInt32 = 2 };
enum class GemmAct : int { kNone = 0, kGeluTanh = 1 };

struct GemmParams {
  const void* a;           // [M, K] row-major
  const void* b;           // [N, K] row-major (weights)
  const void* bias;        // [N] fp16, or nullptr
  const void* c;           // [M, N] fp16 residual added with beta = 1, or nullptr; may equal d
  void* d;                 // [M, N] row-major
  GemmDType ab_type;       // kFp16 or kInt8
  GemmDType d_type;        // kFp16 (with fp16 a/b) or kInt32 (with int8 a/b)
  GemmAct act = GemmAct::kNone;
  float alpha = 1.f;       // fp16 only
  int64_t M;
  int N, K;                // int8: K % 4 == 0 (IMMA); fp16: any, multiples of 8 run on tensor cores
  void* workspace;         // device scratch for split-K algorithms
  size_t workspace_size;
};

// cudaErrorNotSupported when cuBLASLt has no algorithm for the problem, cudaErrorInvalidValue for bad parameters,
// cudaErrorUnknown for other cuBLAS failures; gemm_last_error() then describes the failure (this thread).
cudaError_t gemm(const GemmParams& p, cublasLtHandle_t handle, cudaStream_t stream);
const char* gemm_last_error();

}  // namespace trt_swin
