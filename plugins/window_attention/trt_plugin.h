// TensorRT IPluginV3 "SwinWindowAttention_TRT" (version 1): Swin V1 windowed multi-head attention on the QKV GEMM
// output, wrapping trt_swin::window_attention (window_attention.h).
//
// Inputs:  0 qkv  [num_windows * N, 3C]  kHALF, or kINT8 when qkv_int8 (real = q * q_scale, k * k_scale, v * v_scale)
//          1 bias [nH, N, N]             kFLOAT relative-position bias (a constant of the network)
//          2 mask [nW, N, N]             kFLOAT shift mask (0 / -100), only for shifted blocks; window w uses mask[w % nW]
// Output:  0 out  [num_windows * N, C]   kHALF, or kINT8 when out_int8 (sat(round(value / out_scale)))
// num_windows = B * nW follows the dynamic batch. INT8 I/O is meant for Q -> plugin -> DQ: the scales are fields,
// not PluginTensorDesc::scale (trt_notes 2.3).
#pragma once

#include "tensorrt/plugin_common.h"

namespace trt_swin {
namespace trt {

struct WindowAttentionFields {
  int32_t num_heads = 0;
  float scale = 0.f;      // multiplies q k^T (timm: head_dim^-0.5)
  int32_t qkv_int8 = 0;   // 1: input 0 is kINT8
  float q_scale = 1.f, k_scale = 1.f, v_scale = 1.f;
  int32_t out_int8 = 0;   // 1: output 0 is kINT8
  float out_scale = 1.f;

  template <class F>
  void visitFields(F&& f) {
    f("num_heads", num_heads);
    f("scale", scale);
    f("qkv_int8", qkv_int8);
    f("q_scale", q_scale);
    f("k_scale", k_scale);
    f("v_scale", v_scale);
    f("out_int8", out_int8);
    f("out_scale", out_scale);
  }
  bool validate(std::string& err) const;
};

class WindowAttentionPlugin : public PluginBase<WindowAttentionPlugin, WindowAttentionFields> {
 public:
  static constexpr char const* kName = "SwinWindowAttention_TRT";
  using PluginBase::PluginBase;

  int32_t getNbOutputs() const noexcept override { return 1; }
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs, nvinfer1::DataType const* inputTypes,
                             int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  void checkShapes(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs, std::string& err) const;

 private:
  int32_t mNbInputs = 2;  // 3 with a shift mask; enqueue is not told, onShapeChange is
};

using WindowAttentionCreator = PluginCreator<WindowAttentionPlugin>;

}  // namespace trt
}  // namespace trt_swin
