// Host-side choice between an op's portable (mma.sync) kernel and its Hopper (sm_90a, wgmma) kernel, and the Hopper
// kernels' launch preamble.
#pragma once
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

#include "common/cuda_check.h"

namespace trt_swin {

// The kernel a call asks for: `impl` when set (1 mma.sync, 2 wgmma), else $env ("mma" | "wgmma"; a development knob
// for sweeps and tests, read on every call), else 0 (auto); -1 for an unknown value of $env.
inline int requested_kernel(int impl, const char* env) {
  if (impl != 0) return impl;
  const char* v = std::getenv(env);
  return !v || !*v ? 0 : std::strcmp(v, "mma") == 0 ? 1 : std::strcmp(v, "wgmma") == 0 ? 2 : -1;
}

// Whether the current device runs sm_90a code (compute capability 9.0 exactly).
inline cudaError_t current_device_is_sm90(bool* yes) {
  int device = 0, major = 0, minor = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  *yes = major == 9 && minor == 0;
  return cudaSuccess;
}

// Opts `kernel` in to smem_bytes of dynamic shared memory (cudaErrorNotSupported beyond the device's limit) and
// returns the current device's SM count in *sms: what a persistent kernel with large shared memory needs to launch.
template <class Kernel>
inline cudaError_t opt_in_shared_memory(Kernel kernel, int smem_bytes, int* sms) {
  int device = 0, optin = 0;
  TRT_SWIN_CUDA_TRY(cudaGetDevice(&device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  TRT_SWIN_CUDA_TRY(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, device));
  if (smem_bytes > optin) return cudaErrorNotSupported;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes);
}

}  // namespace trt_swin
