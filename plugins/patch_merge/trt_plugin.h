// TensorRT IPluginV3 "SwinPatchMerge_TRT" (version 1): Swin V1 patch merging up to the reduction GEMM (zero padding
// of odd sizes, 2x2 gather in timm's channel order, LayerNorm(4C)), wrapping trt_swin::patch_merge (patch_merge.h).
//
// Inputs:  0 x     [B, H, W, C] kHALF
//          1 gamma [4C]         kFLOAT (constant)
//          2 beta  [4C]         kFLOAT (constant)
// Output:  0 out   [B, ceil(H/2), ceil(W/2), 4C] kHALF, or kINT8 when out_int8 (the reduction GEMM's input quantizer)
#pragma once

#include "tensorrt/plugin_common.h"

namespace trt_swin {
namespace trt {

struct PatchMergeFields {
  float eps = 1e-5f;
  int32_t out_int8 = 0;
  float out_scale = 1.f;

  template <class F>
  void visitFields(F&& f) {
    f("eps", eps);
    f("out_int8", out_int8);
    f("out_scale", out_scale);
  }
  bool validate(std::string& err) const;
};

class PatchMergePlugin : public PluginBase<PatchMergePlugin, PatchMergeFields> {
 public:
  static constexpr char const* kName = "SwinPatchMerge_TRT";
  using PluginBase::PluginBase;

  int32_t getNbOutputs() const noexcept override { return 1; }
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  void checkShapes(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs, std::string& err) const;
};

using PatchMergeCreator = PluginCreator<PatchMergePlugin>;

}  // namespace trt
}  // namespace trt_swin
