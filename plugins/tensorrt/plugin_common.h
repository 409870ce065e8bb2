// Shared machinery of the trt_swin TensorRT plugins (IPluginV3, TensorRT 10.x and 11.x).
//
// Every plugin keeps its attributes in a plain `Params` struct that lists its fields once, in
// `template <class F> void visitFields(F&& f)`, as f("name", member) with int32_t or float members. From that one
// list this header derives the creator's getFieldNames(), the plugin's getFieldsToSerialize() and the parsing in
// createPlugin(), so the serialized set can never drift from the parsed set. Fields use the types the ONNX parser
// produces (ONNX INT -> kINT32, FLOAT -> kFLOAT32; trt_notes 4.1), so one parser serves the ONNX build phase and
// plan deserialization; kINT64 / kFLOAT64 / narrower ints are accepted too, for networks built by hand.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace trt_swin {
namespace trt {

constexpr char const* kPluginVersion = "1";
// Namespace "": REGISTER_TENSORRT_PLUGIN registers there, and ONNX nodes then need no plugin_namespace value.
constexpr char const* kPluginNamespace = "";

// Messages go to the logger TensorRT hands over through setLoggerFinder (dynamic loading), else to stderr.
void setLoggerFinderImpl(nvinfer1::ILoggerFinder* finder);
void logMessage(nvinfer1::ILogger::Severity severity, std::string const& msg);
inline void logError(std::string const& msg) { logMessage(nvinfer1::ILogger::Severity::kERROR, msg); }
inline void logWarning(std::string const& msg) { logMessage(nvinfer1::ILogger::Severity::kWARNING, msg); }

// --- fields ----------------------------------------------------------------------------------------------------

inline nvinfer1::PluginFieldType fieldTypeOf(int32_t const&) { return nvinfer1::PluginFieldType::kINT32; }
inline nvinfer1::PluginFieldType fieldTypeOf(float const&) { return nvinfer1::PluginFieldType::kFLOAT32; }

// The creator's getFieldNames(): names and types, data = nullptr.
template <class Params>
std::vector<nvinfer1::PluginField> fieldNames() {
  std::vector<nvinfer1::PluginField> out;
  Params p;
  p.visitFields([&](char const* name, auto& member) {
    out.emplace_back(name, nullptr, fieldTypeOf(member), 1);
  });
  return out;
}

// getFieldsToSerialize(): fields pointing at the members of `p`, which must outlive the returned collection.
template <class Params>
void serializeFields(Params& p, std::vector<nvinfer1::PluginField>& fields, nvinfer1::PluginFieldCollection& fc) {
  fields.clear();
  p.visitFields([&](char const* name, auto& member) {
    fields.emplace_back(name, &member, fieldTypeOf(member), 1);
  });
  fc.nbFields = static_cast<int32_t>(fields.size());
  fc.fields = fields.data();
}

namespace detail {

inline bool readScalar(nvinfer1::PluginField const& f, int32_t& out) {
  using T = nvinfer1::PluginFieldType;
  switch (f.type) {
    case T::kINT32: out = *static_cast<int32_t const*>(f.data); return true;
    case T::kINT64: out = static_cast<int32_t>(*static_cast<int64_t const*>(f.data)); return true;
    case T::kINT16: out = *static_cast<int16_t const*>(f.data); return true;
    case T::kINT8: out = *static_cast<int8_t const*>(f.data); return true;
    default: return false;
  }
}

inline bool readScalar(nvinfer1::PluginField const& f, float& out) {
  using T = nvinfer1::PluginFieldType;
  switch (f.type) {
    case T::kFLOAT32: out = *static_cast<float const*>(f.data); return true;
    case T::kFLOAT64: out = static_cast<float>(*static_cast<double const*>(f.data)); return true;
    default: return false;
  }
}

inline char const* kindName(int32_t const&) { return "int (kINT32)"; }
inline char const* kindName(float const&) { return "float (kFLOAT32)"; }

}  // namespace detail

// createPlugin(): reads every field of `p` found in `fc` (absent ones keep their defaults; the ONNX parser has
// already warned about them). Returns false with `err` set on a field of the wrong type or length.
template <class Params>
bool parseFields(nvinfer1::PluginFieldCollection const* fc, Params& p, std::string& err) {
  if (fc == nullptr) return true;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    nvinfer1::PluginField const& f = fc->fields[i];
    if (f.name == nullptr) continue;
    bool known = false;
    p.visitFields([&](char const* name, auto& member) {
      if (known || !err.empty() || std::strcmp(name, f.name) != 0) return;
      known = true;
      if (f.data == nullptr || f.length < 1) {
        err = std::string("field '") + name + "' has no data";
      } else if (f.length != 1) {
        err = std::string("field '") + name + "' must be a scalar, got length " + std::to_string(f.length);
      } else if (!detail::readScalar(f, member)) {
        err = std::string("field '") + name + "' must be " + detail::kindName(member) + ", got PluginFieldType " +
              std::to_string(static_cast<int32_t>(f.type));
      }
    });
    if (!err.empty()) return false;
    if (!known) logWarning(std::string("trt_swin plugin: ignoring unknown field '") + f.name + "'");
  }
  return true;
}

// --- plugin base -----------------------------------------------------------------------------------------------

inline int32_t statusOf(cudaError_t e, char const* plugin) {
  if (e == cudaSuccess) return 0;
  logError(std::string(plugin) + ": kernel launch failed: " + cudaGetErrorString(e));
  return -1;
}

inline bool isLinear(nvinfer1::PluginTensorDesc const& d) { return d.format == nvinfer1::TensorFormat::kLINEAR; }

// The parts every trt_swin plugin shares. Derived provides kName, getNbOutputs, getOutputDataTypes,
// getOutputShapes, supportsFormatCombination, enqueue, and optionally checkShapes(in, nbIn) for configurePlugin.
template <class Derived, class ParamsT>
class PluginBase : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  using Params = ParamsT;
  explicit PluginBase(Params const& p) : mParams(p) {}
  PluginBase(PluginBase const& other) : mParams(other.mParams) {}  // the serialization view is rebuilt on demand
  PluginBase& operator=(PluginBase const&) = delete;
  ~PluginBase() override = default;

  Params const& params() const { return mParams; }

  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
    switch (type) {
      case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
      case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
      case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    }
    return nullptr;
  }

  nvinfer1::IPluginV3* clone() noexcept override {
    try {
      return new Derived(static_cast<Derived const&>(*this));
    } catch (std::exception const& e) {
      logError(std::string(Derived::kName) + ": clone failed: " + e.what());
      return nullptr;
    }
  }

  char const* getPluginName() const noexcept override { return Derived::kName; }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }

  // The build-time checks that need concrete sizes (dims may be -1 for the dynamic batch).
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const*, int32_t) noexcept override {
    try {
      std::string err;
      static_cast<Derived*>(this)->checkShapes(in, nbInputs, err);
      if (err.empty()) return 0;
      logError(std::string(Derived::kName) + ": " + err);
    } catch (std::exception const& e) {
      logError(std::string(Derived::kName) + ": configurePlugin failed: " + e.what());
    }
    return -1;
  }
  void checkShapes(nvinfer1::DynamicPluginTensorDesc const*, int32_t, std::string&) const {}

  // The kernels keep no per-shape state: nothing to cache here.
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const*, int32_t, nvinfer1::PluginTensorDesc const*,
                        int32_t) noexcept override {
    return 0;
  }

  // No per-context resources (no cuBLAS handle): a clone is a complete plugin.
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext*) noexcept override { return clone(); }

  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override {
    serializeFields(mParams, mSerialized, mSerializedFC);
    return &mSerializedFC;
  }

 protected:
  Params mParams;

 private:
  std::vector<nvinfer1::PluginField> mSerialized;
  nvinfer1::PluginFieldCollection mSerializedFC{};
};

// One creator per plugin, generic over the plugin class (Plugin::Params must have `bool validate(std::string&)`).
template <class Plugin>
class PluginCreator : public nvinfer1::IPluginCreatorV3One {
 public:
  PluginCreator() : mNames(fieldNames<typename Plugin::Params>()) {
    mNamesFC.nbFields = static_cast<int32_t>(mNames.size());
    mNamesFC.fields = mNames.data();
  }
  char const* getPluginName() const noexcept override { return Plugin::kName; }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return kPluginNamespace; }
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &mNamesFC; }

  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase) noexcept override {
    try {
      typename Plugin::Params p;
      std::string err;
      if (!parseFields(fc, p, err) || !p.validate(err)) {
        logError(std::string(Plugin::kName) + " (node '" + (name ? name : "?") + "'): " + err);
        return nullptr;
      }
      return new Plugin(p);
    } catch (std::exception const& e) {
      logError(std::string(Plugin::kName) + ": createPlugin failed: " + e.what());
      return nullptr;
    }
  }

 private:
  std::vector<nvinfer1::PluginField> mNames;
  nvinfer1::PluginFieldCollection mNamesFC{};
};

}  // namespace trt
}  // namespace trt_swin
