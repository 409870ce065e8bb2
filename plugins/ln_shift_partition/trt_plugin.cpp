// TensorRT plugin "SwinLnShiftPartition_TRT": see trt_plugin.h for the I/O contract.
#include "ln_shift_partition/trt_plugin.h"

#include "ln_shift_partition/ln_shift_partition.h"

namespace trt_swin {
namespace trt {

using nvinfer1::DataType;
using nvinfer1::DimensionOperation;

bool LnShiftPartitionFields::validate(std::string& err) const {
  if (window_size < 1) err = "window_size must be >= 1, got " + std::to_string(window_size);
  else if (shift < 0 || shift >= window_size) err = "shift must be in [0, window_size), got " + std::to_string(shift);
  else if (!(eps > 0.f)) err = "eps must be > 0";
  else if (out_int8 != 0 && out_int8 != 1) err = "out_int8 must be 0 or 1";
  else if (!(out_scale > 0.f)) err = "out_scale must be > 0";
  return err.empty();
}

int32_t LnShiftPartitionPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const*,
                                                   int32_t nbInputs) const noexcept {
  if (nbInputs != 3 || nbOutputs != 1) {
    logError(std::string(kName) + ": expects inputs (x, gamma, beta) and one output");
    return -1;
  }
  outputTypes[0] = mParams.out_int8 ? DataType::kINT8 : DataType::kHALF;
  return 0;
}

int32_t LnShiftPartitionPlugin::getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
                                                nvinfer1::DimsExprs const*, int32_t, nvinfer1::DimsExprs* outputs,
                                                int32_t nbOutputs, nvinfer1::IExprBuilder& eb) noexcept {
  if (nbInputs != 3 || nbOutputs != 1 || inputs[0].nbDims != 4) {
    logError(std::string(kName) + ": x must be 4-D [B, H, W, C]");
    return -1;
  }
  auto const* ws = eb.constant(mParams.window_size);
  auto const* nWh = eb.operation(DimensionOperation::kCEIL_DIV, *inputs[0].d[1], *ws);
  auto const* nWw = eb.operation(DimensionOperation::kCEIL_DIV, *inputs[0].d[2], *ws);
  auto const* perImage = eb.operation(DimensionOperation::kPROD, *eb.operation(DimensionOperation::kPROD, *nWh, *nWw),
                                      *eb.constant(int64_t{mParams.window_size} * mParams.window_size));
  outputs[0].nbDims = 2;
  outputs[0].d[0] = eb.operation(DimensionOperation::kPROD, *inputs[0].d[0], *perImage);
  outputs[0].d[1] = inputs[0].d[3];
  return 0;
}

bool LnShiftPartitionPlugin::supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
                                                       int32_t nbInputs, int32_t) noexcept {
  auto const& d = inOut[pos].desc;
  if (!isLinear(d)) return false;
  if (pos == 0) return d.type == DataType::kHALF;
  if (pos < nbInputs) return d.type == DataType::kFLOAT;
  return d.type == (mParams.out_int8 ? DataType::kINT8 : DataType::kHALF);
}

void LnShiftPartitionPlugin::checkShapes(nvinfer1::DynamicPluginTensorDesc const* in, int32_t, std::string& err) const {
  auto const& x = in[0].desc.dims;
  int64_t const C = x.d[3];
  if (C > 0 && (C % 8 != 0 || C > 4096)) err = "C must be a multiple of 8 and <= 4096, got " + std::to_string(C);
  for (int i = 1; i <= 2 && err.empty(); ++i)
    if (in[i].desc.dims.nbDims != 1 || (C > 0 && in[i].desc.dims.d[0] != C))
      err = std::string(i == 1 ? "gamma" : "beta") + " must be [C=" + std::to_string(C) + "]";
  if (err.empty() && x.d[1] > 0 && x.d[2] > 0 && mParams.shift >= 0 &&
      (mParams.shift >= x.d[1] || mParams.shift >= x.d[2]))
    err = "shift must be smaller than H and W";
}

int32_t LnShiftPartitionPlugin::enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                                        void const* const* inputs, void* const* outputs, void*,
                                        cudaStream_t stream) noexcept {
  auto const& d = inputDesc[0].dims;
  trt_swin::LnShiftPartitionParams p{};
  p.x = static_cast<__half const*>(inputs[0]);
  p.gamma = static_cast<float const*>(inputs[1]);
  p.beta = static_cast<float const*>(inputs[2]);
  p.eps = mParams.eps;
  p.out = outputs[0];
  p.B = static_cast<int>(d.d[0]);
  p.H = static_cast<int>(d.d[1]);
  p.W = static_cast<int>(d.d[2]);
  p.C = static_cast<int>(d.d[3]);
  p.ws = mParams.window_size;
  p.shift = mParams.shift;
  p.out_int8 = outputDesc[0].type == DataType::kINT8;
  p.out_scale = mParams.out_scale;
  if (p.B == 0) return 0;
  return statusOf(trt_swin::ln_shift_partition(p, stream), kName);
}

}  // namespace trt
}  // namespace trt_swin
