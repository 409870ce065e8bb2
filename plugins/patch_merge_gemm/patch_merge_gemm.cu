// trt_swin::patch_merge_gemm: validates the parameters and dispatches to the Hopper kernel (patch_merge_gemm_sm90a.cu),
// the op's only form: elsewhere callers run patch_merge + a GEMM.
#include <cstdint>

#include "common/cuda_check.h"
#include "common/kernel_choice.h"
#include "patch_merge_gemm/patch_merge_gemm.h"

namespace trt_swin {

#if defined(TRT_SWIN_HAS_SM90A)
cudaError_t patch_merge_gemm_sm90a(const PatchMergeGemmParams& p, cudaStream_t stream);
#endif

bool patch_merge_gemm_supported(int C, int N, int H, int W) {
  return (C == 32 || C == 64 || C == 96) && N == 2 * C && H > 0 && W > 0 && H % 2 == 0 && W % 2 == 0;
}

cudaError_t patch_merge_gemm(const PatchMergeGemmParams& p, cudaStream_t stream) {
  if (!patch_merge_gemm_supported(p.C, p.N, p.H, p.W) || p.B < 0) return cudaErrorInvalidValue;
  for (const void* ptr : {static_cast<const void*>(p.x), static_cast<const void*>(p.w), static_cast<const void*>(p.u),
                          static_cast<const void*>(p.v), static_cast<const void*>(p.out)}) {
    if (!ptr) return cudaErrorInvalidValue;
    if (reinterpret_cast<uintptr_t>(ptr) % 16) return cudaErrorMisalignedAddress;  // 16-byte cp.async, float2 loads
  }
#if defined(TRT_SWIN_HAS_SM90A)
  bool sm90 = false;
  TRT_SWIN_CUDA_TRY(current_device_is_sm90(&sm90));
  if (sm90) return p.B == 0 ? cudaSuccess : patch_merge_gemm_sm90a(p, stream);
#endif
  (void)stream;
  return cudaErrorNotSupported;
}

}  // namespace trt_swin
