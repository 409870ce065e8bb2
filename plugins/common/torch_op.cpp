// Build facts of the op library that Python asks for (no tensors: schema and kernel both defined here).
#include <torch/library.h>

// Whether the Hopper-only kernels (*_sm90a.cu: fused_attention_'s and fused_mlp_'s wgmma forms and patch_merge_gemm,
// which those ops run on compute capability 9.0) were compiled in (TRT_SWIN_SM90A, on by default).
TORCH_LIBRARY_FRAGMENT(trt_swin, m) {
  m.def("hopper_kernels_built() -> bool", []() -> bool {
#if defined(TRT_SWIN_HAS_SM90A)
    return true;
#else
    return false;
#endif
  });
}
