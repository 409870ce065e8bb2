// Library entry points of the trt_swin TensorRT plugin library.
//
// Default build (dynamic registration): exports getCreators / setLoggerFinder, the interface of
// IPluginRegistry::loadLibrary, `trtexec --dynamicPlugins` and version-compatible plans. It needs no libnvinfer
// symbol, so one binary serves every TensorRT 10.x / 11.x runtime with the same IPluginV3 ABI.
//
// With -DTRT_SWIN_TRT_STATIC_REGISTRATION=1 the creators register themselves when the library is dlopen'ed
// (REGISTER_TENSORRT_PLUGIN), the interface of `trtexec --staticPlugins`, ctypes.CDLL and Polygraphy `--plugins`;
// that build calls getPluginRegistry() and must link libnvinfer. Never load both builds into one process:
// loadLibrary refuses creators that are already registered (trt_notes 2.4).
#include <cstdio>
#include <mutex>

#include "ln_shift_partition/trt_plugin.h"
#include "patch_merge/trt_plugin.h"
#include "plugin_common.h"
#include "window_attention/trt_plugin.h"
#include "window_reverse/trt_plugin.h"

using trt_swin::trt::LnShiftPartitionCreator;
using trt_swin::trt::PatchMergeCreator;
using trt_swin::trt::WindowAttentionCreator;
using trt_swin::trt::WindowReverseCreator;

namespace trt_swin {
namespace trt {

namespace {
std::mutex gLoggerMutex;
nvinfer1::ILoggerFinder* gLoggerFinder = nullptr;
}  // namespace

void setLoggerFinderImpl(nvinfer1::ILoggerFinder* finder) {
  std::lock_guard<std::mutex> lock(gLoggerMutex);
  gLoggerFinder = finder;
}

void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg) {
  nvinfer1::ILogger* logger = nullptr;
  {
    std::lock_guard<std::mutex> lock(gLoggerMutex);
    if (gLoggerFinder != nullptr) logger = gLoggerFinder->findLogger();
  }
  if (logger != nullptr) {
    logger->log(severity, msg.c_str());
  } else if (severity <= nvinfer1::ILogger::Severity::kWARNING) {
    std::fprintf(stderr, "[trt_swin] %s\n", msg.c_str());
  }
}

}  // namespace trt
}  // namespace trt_swin

#if defined(TRT_SWIN_TRT_STATIC_REGISTRATION) && TRT_SWIN_TRT_STATIC_REGISTRATION
REGISTER_TENSORRT_PLUGIN(WindowAttentionCreator);
REGISTER_TENSORRT_PLUGIN(LnShiftPartitionCreator);
REGISTER_TENSORRT_PLUGIN(WindowReverseCreator);
REGISTER_TENSORRT_PLUGIN(PatchMergeCreator);
#else
// Exported whatever the visibility flags (TENSORRTAPI is empty unless TENSORRT_BUILD_LIB is defined).
#define TRT_SWIN_EXPORT extern "C" __attribute__((visibility("default")))

// The plugin-library interface of IPluginRegistry::loadLibrary (trtexec --dynamicPlugins).
TRT_SWIN_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
  static WindowAttentionCreator windowAttention;
  static LnShiftPartitionCreator lnShiftPartition;
  static WindowReverseCreator windowReverse;
  static PatchMergeCreator patchMerge;
  static nvinfer1::IPluginCreatorInterface* const creators[] = {&windowAttention, &lnShiftPartition, &windowReverse,
                                                                &patchMerge};
  nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
  return creators;
}

TRT_SWIN_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder) { trt_swin::trt::setLoggerFinderImpl(finder); }
#endif
