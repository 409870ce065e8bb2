// Kernel instantiations for the erf GELU (torch.nn.GELU()); one file per activation so they compile in parallel.
#include "fused_mlp/fused_mlp_kernel.cuh"

namespace trt_swin {
namespace fmlp {
template cudaError_t dispatch<MlpAct::kGeluErf>(const FusedMlpParams& p, int variant, cudaStream_t stream);
}  // namespace fmlp
}  // namespace trt_swin
