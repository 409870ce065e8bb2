// PyTorch CUDA kernel of trt_swin::patch_embed (schema in op.py): checks -> params -> launch. The shapes the kernel
// is not built for raise here; op.patch_embed_cuda_supported tells the caller beforehand.
#include "common/torch_checks.h"
#include "patch_embed/patch_embed.h"

namespace {

at::Tensor& patch_embed_cuda(const at::Tensor& images, const at::Tensor& weight, const at::Tensor& bias, int64_t patch,
                             const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta, double eps,
                             at::Tensor& out) {
  for (const at::Tensor* t : {&images, &weight, &bias, static_cast<const at::Tensor*>(&out)}) {
    TRT_SWIN_CHECK_CUDA(*t);
    TRT_SWIN_CHECK_CONTIGUOUS(*t);
    TORCH_CHECK(t->device() == images.device(), "patch_embed: every tensor must be on the images' device");
  }
  TORCH_CHECK(images.dim() == 4, "patch_embed: images must be [B, Cin, H, W], got ", images.sizes());
  TORCH_CHECK(images.scalar_type() == at::kHalf || images.scalar_type() == at::kFloat,
              "patch_embed: images must be float16 or float32, got ", images.scalar_type());
  TRT_SWIN_CHECK_DTYPE(weight, at::kHalf);
  TRT_SWIN_CHECK_DTYPE(bias, at::kHalf);
  TRT_SWIN_CHECK_DTYPE(out, at::kHalf);
  const int64_t B = images.size(0), cin = images.size(1), H = images.size(2), W = images.size(3);
  const int64_t C = weight.size(0);
  const bool fp32 = images.scalar_type() == at::kFloat;
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) >= cin * patch * patch && weight.size(1) % 8 == 0,
              "patch_embed: weight must be [C, K >= Cin * p * p] with K % 8 == 0 (16-byte rows), got ", weight.sizes());
  TORCH_CHECK(trt_swin::patch_embed_supported(static_cast<int>(cin), static_cast<int>(patch), static_cast<int>(C),
                                              static_cast<int>(H), static_cast<int>(W), fp32),
              "patch_embed: no CUDA kernel for Cin ", cin, ", patch ", patch, ", C ", C, ", image ", H, "x", W,
              " (it takes 3 channels, patch 4, C in {96, 128, 192}, H % 4 == 0, W % 8 == 0 (fp16) / W % 4 == 0 (fp32))");
  TRT_SWIN_CHECK_SHAPE(bias, C);
  TRT_SWIN_CHECK_SHAPE(out, B, H / patch, W / patch, C);
  TORCH_CHECK(gamma.has_value() == beta.has_value(), "patch_embed: pass both gamma and beta or neither");
  if (gamma) {
    for (const at::Tensor* p : {&*gamma, &*beta}) {
      TRT_SWIN_CHECK_CUDA(*p);
      TRT_SWIN_CHECK_CONTIGUOUS(*p);
      TRT_SWIN_CHECK_DTYPE(*p, at::kFloat);
      TRT_SWIN_CHECK_SHAPE(*p, C);
      TORCH_CHECK(p->device() == images.device(), "patch_embed: gamma and beta must be on the images' device");
    }
  }
  if (B == 0) return out;

  const c10::cuda::CUDAGuard guard(images.device());
  trt_swin::PatchEmbedParams p;
  p.images = images.data_ptr();
  p.images_fp32 = fp32;
  p.weight = reinterpret_cast<const __half*>(weight.data_ptr<at::Half>());
  p.ldw = static_cast<int>(weight.size(1));
  p.bias = reinterpret_cast<const __half*>(bias.data_ptr<at::Half>());
  p.gamma = gamma ? gamma->data_ptr<float>() : nullptr;
  p.beta = beta ? beta->data_ptr<float>() : nullptr;
  p.eps = static_cast<float>(eps);
  p.out = reinterpret_cast<__half*>(out.data_ptr<at::Half>());
  p.B = static_cast<int>(B);
  p.H = static_cast<int>(H);
  p.W = static_cast<int>(W);
  p.C = static_cast<int>(C);
  TRT_SWIN_CHECK_LAUNCH(trt_swin::patch_embed(p, at::cuda::getCurrentCUDAStream()), "patch_embed");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) { m.impl("patch_embed", &patch_embed_cuda); }
