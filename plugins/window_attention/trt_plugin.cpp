// TensorRT plugin "SwinWindowAttention_TRT": see trt_plugin.h for the I/O contract.
#include "window_attention/trt_plugin.h"

#include "window_attention/window_attention.h"

namespace trt_swin {
namespace trt {

using nvinfer1::DataType;

bool WindowAttentionFields::validate(std::string& err) const {
  if (num_heads < 1) err = "num_heads must be >= 1, got " + std::to_string(num_heads);
  else if (!(scale > 0.f)) err = "scale must be > 0, got " + std::to_string(scale);
  else if ((qkv_int8 != 0 && qkv_int8 != 1) || (out_int8 != 0 && out_int8 != 1)) err = "qkv_int8 / out_int8 must be 0 or 1";
  else if (!(q_scale > 0.f && k_scale > 0.f && v_scale > 0.f && out_scale > 0.f)) err = "q/k/v/out scales must be > 0";
  return err.empty();
}

int32_t WindowAttentionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const*,
                                                  int32_t nbInputs) const noexcept {
  if (nbOutputs != 1 || nbInputs < 2 || nbInputs > 3) {
    logError(std::string(kName) + ": expects inputs (qkv, bias[, mask]) and one output, got " +
             std::to_string(nbInputs) + " inputs");
    return -1;
  }
  outputTypes[0] = mParams.out_int8 ? DataType::kINT8 : DataType::kHALF;
  return 0;
}

int32_t WindowAttentionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                               nvinfer1::DimsExprs const*, int32_t, nvinfer1::DimsExprs* outputs,
                                               int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept {
  if (nbInputs < 2 || nbInputs > 3 || nbOutputs != 1 || inputs[0].nbDims != 2) {
    logError(std::string(kName) + ": qkv must be 2-D [num_windows * N, 3C] with inputs (qkv, bias[, mask])");
    return -1;
  }
  outputs[0].nbDims = 2;
  outputs[0].d[0] = inputs[0].d[0];
  outputs[0].d[1] = exprBuilder.operation(nvinfer1::DimensionOperation::kFLOOR_DIV, *inputs[0].d[1],
                                          *exprBuilder.constant(3));
  return 0;
}

bool WindowAttentionPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                      int32_t nbInputs, int32_t) noexcept {
  auto const& d = inOut[pos].desc;
  if (!isLinear(d)) return false;
  if (pos == 0) return d.type == (mParams.qkv_int8 ? DataType::kINT8 : DataType::kHALF);
  if (pos < nbInputs) return d.type == DataType::kFLOAT;  // bias, mask
  return d.type == (mParams.out_int8 ? DataType::kINT8 : DataType::kHALF);
}

void WindowAttentionPlugin::checkShapes(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                        std::string& err) const {
  auto const& qkv = in[0].desc.dims;
  auto const& bias = in[1].desc.dims;
  if (bias.nbDims != 3 || bias.d[1] != bias.d[2] || bias.d[0] != mParams.num_heads) {
    err = "bias must be [num_heads=" + std::to_string(mParams.num_heads) + ", N, N]";
    return;
  }
  int64_t const N = bias.d[2];
  if (N < 1 || N > 144) {
    err = "N (tokens per window) must be in 1..144, got " + std::to_string(N);
    return;
  }
  if (qkv.d[1] > 0) {
    int64_t const C = qkv.d[1] / 3;
    int64_t const hd = C / mParams.num_heads;
    if (qkv.d[1] % (3 * mParams.num_heads) != 0 || (hd != 16 && hd != 32 && hd != 64))
      err = "qkv.shape[1]=" + std::to_string(qkv.d[1]) + " must be 3 * num_heads * head_dim with head_dim 16, 32 or 64";
  }
  if (err.empty() && qkv.d[0] > 0 && qkv.d[0] % N != 0)
    err = "qkv rows (" + std::to_string(qkv.d[0]) + ") must be a multiple of N=" + std::to_string(N);
  if (err.empty() && nbInputs == 3) {
    auto const& mask = in[2].desc.dims;
    if (mask.nbDims != 3 || mask.d[1] != N || mask.d[2] != N || mask.d[0] < 1)
      err = "mask must be [nW, N, N] with N=" + std::to_string(N);
  }
}

int32_t WindowAttentionPlugin::onShapeChange(nvinfer1::PluginTensorDesc const*, int32_t nbInputs,
                                             nvinfer1::PluginTensorDesc const*, int32_t) noexcept {
  mNbInputs = nbInputs;
  return 0;
}

int32_t WindowAttentionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                       nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                                       void* const* outputs, void*, cudaStream_t stream) noexcept {
  int32_t const N = static_cast<int32_t>(inputDesc[1].dims.d[2]);
  int32_t const C = static_cast<int32_t>(inputDesc[0].dims.d[1] / 3);
  trt_swin::WindowAttentionParams p{};
  p.qkv = inputs[0];
  p.bias = static_cast<float const*>(inputs[1]);
  p.mask = mNbInputs == 3 ? static_cast<float const*>(inputs[2]) : nullptr;
  p.out = outputs[0];
  p.num_windows = static_cast<int32_t>(inputDesc[0].dims.d[0] / N);
  p.nW = mNbInputs == 3 ? static_cast<int32_t>(inputDesc[2].dims.d[0]) : 1;
  p.N = N;
  p.num_heads = mParams.num_heads;
  p.head_dim = C / mParams.num_heads;
  p.scale = mParams.scale;
  p.qkv_int8 = inputDesc[0].type == DataType::kINT8;
  p.q_scale = mParams.q_scale;
  p.k_scale = mParams.k_scale;
  p.v_scale = mParams.v_scale;
  p.out_int8 = outputDesc[0].type == DataType::kINT8;
  p.out_scale = mParams.out_scale;
  if (p.num_windows == 0) return 0;  // an empty batch
  return statusOf(trt_swin::window_attention(p, stream), kName);
}

}  // namespace trt
}  // namespace trt_swin
