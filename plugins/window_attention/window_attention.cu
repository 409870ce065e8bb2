// trt_swin::window_attention: validates the parameters and dispatches (padded key count, head_dim, input dtype) to
// the kernel instantiations in window_attention_hd*_{fp16,int8}.cu (kernel: window_attention_kernel.cuh).
#include <cstdint>

#include "common/cuda_check.h"
#include "window_attention/window_attention.h"

namespace trt_swin {
namespace wattn {
// Defined (explicitly instantiated) in the generated window_attention_hd*.cu files.
// NFIX: 0 for any N in (NK - 16, NK], else exactly that N.
template <int NK, int HD, bool IN_INT8, int NFIX>
cudaError_t launch(const WindowAttentionParams& p, cudaStream_t stream);

template <int HD, bool IN_INT8>
cudaError_t dispatch_keys(const WindowAttentionParams& p, cudaStream_t stream) {
  switch (p.N) {  // the real models' windows: 4x4, 7x7, 12x12
    case 16: return launch<16, HD, IN_INT8, 16>(p, stream);
    case 49: return launch<64, HD, IN_INT8, 49>(p, stream);
    case 144: return launch<144, HD, IN_INT8, 144>(p, stream);
    default: break;
  }
  switch ((p.N + 15) / 16 * 16) {
    case 16: return launch<16, HD, IN_INT8, 0>(p, stream);
    case 32: return launch<32, HD, IN_INT8, 0>(p, stream);
    case 48: return launch<48, HD, IN_INT8, 0>(p, stream);
    case 64: return launch<64, HD, IN_INT8, 0>(p, stream);
    case 80: return launch<80, HD, IN_INT8, 0>(p, stream);
    case 96: return launch<96, HD, IN_INT8, 0>(p, stream);
    case 112: return launch<112, HD, IN_INT8, 0>(p, stream);
    case 128: return launch<128, HD, IN_INT8, 0>(p, stream);
    case 144: return launch<144, HD, IN_INT8, 0>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

template <bool IN_INT8>
cudaError_t dispatch_head_dim(const WindowAttentionParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 16: return dispatch_keys<16, IN_INT8>(p, stream);
    case 32: return dispatch_keys<32, IN_INT8>(p, stream);
    case 64: return dispatch_keys<64, IN_INT8>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}
}  // namespace wattn

cudaError_t window_attention(const WindowAttentionParams& p, cudaStream_t stream) {
  if (p.N < 1 || p.N > 144 || p.num_heads < 1 || p.num_windows < 0 || p.nW < 1) return cudaErrorInvalidValue;
  if (!p.qkv || !p.bias || !p.out) return cudaErrorInvalidValue;
  if ((p.out_int8 || p.out_fp8) && !(p.out_scale > 0.f)) return cudaErrorInvalidValue;
  if (p.out_int8 && p.out_fp8) return cudaErrorInvalidValue;
  // 16-byte vector loads and stores of whole head rows
  if (reinterpret_cast<uintptr_t>(p.qkv) % 16 || reinterpret_cast<uintptr_t>(p.out) % 16) return cudaErrorMisalignedAddress;
  if (p.num_windows == 0) return cudaSuccess;
  return p.qkv_int8 ? wattn::dispatch_head_dim<true>(p, stream) : wattn::dispatch_head_dim<false>(p, stream);
}

}  // namespace trt_swin
