// Kernel instantiations for the tanh GELU (nn.GELU(approximate="tanh")); one file per activation so they compile in parallel.
#include "fused_mlp/fused_mlp_kernel.cuh"

namespace trt_swin {
namespace fmlp {
template cudaError_t dispatch<MlpAct::kGeluTanh>(const FusedMlpParams& p, int variant, cudaStream_t stream);
}  // namespace fmlp
}  // namespace trt_swin
