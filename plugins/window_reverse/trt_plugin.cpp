// TensorRT plugin "SwinWindowReverse_TRT": see trt_plugin.h for the I/O contract.
#include "window_reverse/trt_plugin.h"

#include "window_reverse/window_reverse.h"

namespace trt_swin {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::DimensionOperation;

bool WindowReverseFields::validate(std::string& err) const {
  auto const flag = [](int32_t v) { return v == 0 || v == 1; };
  if (window_size < 1) err = "window_size must be >= 1, got " + std::to_string(window_size);
  else if (shift < 0 || shift >= window_size) err = "shift must be in [0, window_size), got " + std::to_string(shift);
  else if (!flag(y_int8) || !flag(has_bias) || !flag(has_ln) || !flag(ln_out_int8))
    err = "y_int8, has_bias, has_ln and ln_out_int8 must be 0 or 1";
  else if (ln_out_int8 && !has_ln) err = "ln_out_int8 needs has_ln";
  else if (!(y_scale > 0.f && ln_out_scale > 0.f && eps > 0.f)) err = "y_scale, ln_out_scale and eps must be > 0";
  return err.empty();
}

int32_t WindowReversePlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const*,
                                                int32_t nbInputs) const noexcept {
  if (nbInputs != mParams.nbInputs() || nbOutputs != getNbOutputs()) {
    logError(std::string(kName) + ": expects " + std::to_string(mParams.nbInputs()) +
             " inputs (y, residual" + (mParams.has_bias ? ", bias" : "") + (mParams.has_ln ? ", gamma, beta" : "") +
             "), got " + std::to_string(nbInputs));
    return -1;
  }
  outputTypes[0] = DataType::kHALF;
  if (mParams.has_ln) outputTypes[1] = mParams.ln_out_int8 ? DataType::kINT8 : DataType::kHALF;
  return 0;
}

int32_t WindowReversePlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                             nvinfer1::DimsExprs const*, int32_t, nvinfer1::DimsExprs* outputs,
                                             int32_t nbOutputs, nvinfer1::IExprBuilder&) noexcept {
  if (nbInputs != mParams.nbInputs() || nbOutputs != getNbOutputs() || inputs[1].nbDims != 4 ||
      inputs[0].nbDims != 2) {
    logError(std::string(kName) + ": y must be [rows, C] and residual [B, H, W, C]");
    return -1;
  }
  for (int32_t i = 0; i < nbOutputs; ++i) outputs[i] = inputs[1];
  return 0;
}

bool WindowReversePlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                    int32_t nbInputs, int32_t) noexcept {
  auto const& d = inOut[pos].desc;
  if (!isLinear(d)) return false;
  if (pos == 0) return d.type == (mParams.y_int8 ? DataType::kINT8 : DataType::kHALF);
  if (pos == 1) return d.type == DataType::kHALF;
  if (pos < nbInputs) return d.type == DataType::kFLOAT;  // bias, gamma, beta
  if (pos == nbInputs) return d.type == DataType::kHALF;
  return d.type == (mParams.ln_out_int8 ? DataType::kINT8 : DataType::kHALF);
}

void WindowReversePlugin::checkShapes(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                      std::string& err) const {
  auto const& r = in[1].desc.dims;
  auto const& y = in[0].desc.dims;
  int64_t const C = r.d[3];
  if (C > 0 && (C % 8 != 0 || C > 4096)) err = "C must be a multiple of 8 and <= 4096, got " + std::to_string(C);
  if (err.empty() && C > 0 && y.d[1] > 0 && y.d[1] != C) err = "y and residual must have the same C";
  if (err.empty() && r.d[1] > 0 && r.d[2] > 0) {
    int64_t const ws = mParams.window_size;
    int64_t const perImage = ((r.d[1] + ws - 1) / ws) * ((r.d[2] + ws - 1) / ws) * ws * ws;
    if (r.d[0] > 0 && y.d[0] > 0 && y.d[0] != r.d[0] * perImage)
      err = "y must have B * nWh * nWw * ws * ws = " + std::to_string(r.d[0] * perImage) + " rows, got " +
            std::to_string(y.d[0]);
  }
  for (int32_t i = 2; i < nbInputs && err.empty(); ++i)
    if (in[i].desc.dims.nbDims != 1 || (C > 0 && in[i].desc.dims.d[0] != C))
      err = "bias / gamma / beta must be [C=" + std::to_string(C) + "]";
}

int32_t WindowReversePlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc,
                                     nvinfer1::PluginTensorDesc const* outputDesc, void const* const* inputs,
                                     void* const* outputs, void*, cudaStream_t stream) noexcept {
  auto const& d = inputDesc[1].dims;
  int32_t next = 2;
  trt_swin::WindowReverseParams p{};
  p.y = inputs[0];
  p.y_int8 = inputDesc[0].type == DataType::kINT8;
  p.y_scale = mParams.y_scale;
  p.bias = mParams.has_bias ? static_cast<float const*>(inputs[next++]) : nullptr;
  p.residual = static_cast<__half const*>(inputs[1]);
  p.out = static_cast<__half*>(outputs[0]);
  p.ln_gamma = mParams.has_ln ? static_cast<float const*>(inputs[next]) : nullptr;
  p.ln_beta = mParams.has_ln ? static_cast<float const*>(inputs[next + 1]) : nullptr;
  p.eps = mParams.eps;
  p.ln_out = mParams.has_ln ? outputs[1] : nullptr;
  p.ln_out_int8 = mParams.has_ln && outputDesc[1].type == DataType::kINT8;
  p.ln_out_scale = mParams.ln_out_scale;
  p.B = static_cast<int>(d.d[0]);
  p.H = static_cast<int>(d.d[1]);
  p.W = static_cast<int>(d.d[2]);
  p.C = static_cast<int>(d.d[3]);
  p.ws = mParams.window_size;
  p.shift = mParams.shift;
  if (p.B == 0) return 0;
  return statusOf(trt_swin::window_reverse(p, stream), kName);
}

}  // namespace trt
}  // namespace trt_swin
