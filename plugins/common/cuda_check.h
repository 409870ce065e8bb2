// Error handling shared by the torch-free kernel API: every launcher returns cudaError_t.
#pragma once
#include <cuda_runtime.h>

// Returns the error from the enclosing function (which must return cudaError_t) when a CUDA call fails.
#define TRT_SWIN_CUDA_TRY(expr)                    \
  do {                                             \
    cudaError_t trt_swin_err_ = (expr);            \
    if (trt_swin_err_ != cudaSuccess) return trt_swin_err_; \
  } while (0)

// After a <<<>>> launch: configuration errors surface here, not at the next sync.
#define TRT_SWIN_LAUNCH_CHECK() TRT_SWIN_CUDA_TRY(cudaGetLastError())
