// TensorRT IPluginV3 "SwinLnShiftPartition_TRT" (version 1): LayerNorm (norm1) + cyclic shift + zero padding +
// window partition of a Swin block input, wrapping trt_swin::ln_shift_partition (ln_shift_partition.h).
//
// Inputs:  0 x     [B, H, W, C] kHALF
//          1 gamma [C]          kFLOAT (constant)
//          2 beta  [C]          kFLOAT (constant)
// Output:  0 out   [B * ceil(H/ws) * ceil(W/ws) * ws * ws, C] window-major tokens: kHALF, or kINT8 when out_int8
//          (sat(round(LN / out_scale)), the QKV GEMM's input quantizer; padded tokens are 0).
#pragma once

#include "tensorrt/plugin_common.h"

namespace trt_swin {
namespace trt {

struct LnShiftPartitionFields {
  int32_t window_size = 0;
  int32_t shift = 0;
  float eps = 1e-5f;
  int32_t out_int8 = 0;
  float out_scale = 1.f;

  template <class F>
  void visitFields(F&& f) {
    f("window_size", window_size);
    f("shift", shift);
    f("eps", eps);
    f("out_int8", out_int8);
    f("out_scale", out_scale);
  }
  bool validate(std::string& err) const;
};

class LnShiftPartitionPlugin : public PluginBase<LnShiftPartitionPlugin, LnShiftPartitionFields> {
 public:
  static constexpr char const* kName = "SwinLnShiftPartition_TRT";
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

using LnShiftPartitionCreator = PluginCreator<LnShiftPartitionPlugin>;

}  // namespace trt
}  // namespace trt_swin
