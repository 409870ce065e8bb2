// TensorRT IPluginV3 "SwinWindowReverse_TRT" (version 1): window reverse + reverse shift + crop + residual add
// (+ the block's norm2), wrapping trt_swin::window_reverse (window_reverse.h).
//
// Inputs:  0 y        [B * ceil(H/ws) * ceil(W/ws) * ws * ws, C] window-order proj output: kHALF, or kINT8 when
//                     y_int8 (real = y * y_scale)
//          1 residual [B, H, W, C] kHALF block input
//          next       bias [C] kFLOAT, when has_bias (the proj bias, if the GEMM did not add it)
//          next two   gamma [C], beta [C] kFLOAT, when has_ln (norm2)
// Outputs: 0 out      [B, H, W, C] kHALF new residual stream
//          1 ln_out   [B, H, W, C] when has_ln: kHALF, or kINT8 when ln_out_int8 (the fc1 input quantizer)
#pragma once

#include "tensorrt/plugin_common.h"

namespace trt_swin {
namespace trt {

struct WindowReverseFields {
  int32_t window_size = 0;
  int32_t shift = 0;
  int32_t y_int8 = 0;
  float y_scale = 1.f;
  int32_t has_bias = 0;
  int32_t has_ln = 1;
  float eps = 1e-5f;
  int32_t ln_out_int8 = 0;
  float ln_out_scale = 1.f;

  template <class F>
  void visitFields(F&& f) {
    f("window_size", window_size);
    f("shift", shift);
    f("y_int8", y_int8);
    f("y_scale", y_scale);
    f("has_bias", has_bias);
    f("has_ln", has_ln);
    f("eps", eps);
    f("ln_out_int8", ln_out_int8);
    f("ln_out_scale", ln_out_scale);
  }
  bool validate(std::string& err) const;
  int32_t nbInputs() const { return 2 + has_bias + 2 * has_ln; }
};

class WindowReversePlugin : public PluginBase<WindowReversePlugin, WindowReverseFields> {
 public:
  static constexpr char const* kName = "SwinWindowReverse_TRT";
  using PluginBase::PluginBase;

  int32_t getNbOutputs() const noexcept override { return mParams.has_ln ? 2 : 1; }
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

using WindowReverseCreator = PluginCreator<WindowReversePlugin>;

}  // namespace trt
}  // namespace trt_swin
