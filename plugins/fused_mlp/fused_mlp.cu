// trt_swin::fused_mlp: validates the parameters and dispatches (activation, C, tile variant) to the kernel
// instantiations in fused_mlp_gelu_{erf,tanh}.cu (kernel: fused_mlp_kernel.cuh).
#include <cstdint>
#include <cstdlib>

#include "common/cuda_check.h"
#include "common/kernel_choice.h"
#include "fused_mlp/fused_mlp.h"

namespace trt_swin {
namespace fmlp {
template <MlpAct ACT>
cudaError_t dispatch(const FusedMlpParams& p, int variant, cudaStream_t stream);
}  // namespace fmlp

bool fused_mlp_supported(int C, int Hd) { return C >= 32 && C <= 384 && C % 32 == 0 && Hd >= 64 && Hd % 64 == 0; }

cudaError_t fused_mlp(const FusedMlpParams& p, cudaStream_t stream) {
  if (!fused_mlp_supported(p.C, p.Hd) || p.M < 0) return cudaErrorInvalidValue;
  if (!p.x || !p.gamma || !p.beta || !p.w1 || !p.b1 || !p.w2 || !p.b2) return cudaErrorInvalidValue;
  if (p.act != MlpAct::kGeluErf && p.act != MlpAct::kGeluTanh) return cudaErrorInvalidValue;
  for (const void* ptr : {static_cast<const void*>(p.x), static_cast<const void*>(p.gamma),
                          static_cast<const void*>(p.beta), static_cast<const void*>(p.w1),
                          static_cast<const void*>(p.b1), static_cast<const void*>(p.w2),
                          static_cast<const void*>(p.b2)}) {
    if (reinterpret_cast<uintptr_t>(ptr) % 16) return cudaErrorMisalignedAddress;  // 16-byte cp.async, float2 loads
  }
  if (p.M == 0) return cudaSuccess;
  const int impl = requested_kernel(p.impl, "TRT_SWIN_MLP_IMPL");
  if (impl < 0) return cudaErrorInvalidValue;
  if (impl != 1) {
#if defined(TRT_SWIN_HAS_SM90A)
    bool sm90 = false;
    TRT_SWIN_CUDA_TRY(current_device_is_sm90(&sm90));
    if (sm90 && fused_mlp_sm90a_supported(p.C, p.Hd)) return fused_mlp_sm90a(p, stream);
#endif
    if (impl == 2) return cudaErrorNotSupported;
  }
  int variant = p.variant;
  if (variant < 0) {
    // Development knob for benchmark sweeps only, read on every call so one process can compare the variants.
    const char* v = std::getenv("TRT_SWIN_MLP_VARIANT");
    variant = v && *v ? std::atoi(v) : 0;
  }
  return p.act == MlpAct::kGeluErf ? fmlp::dispatch<MlpAct::kGeluErf>(p, variant, stream)
                                   : fmlp::dispatch<MlpAct::kGeluTanh>(p, variant, stream);
}

}  // namespace trt_swin
