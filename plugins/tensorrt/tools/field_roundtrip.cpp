// Field round trip of the trt_swin TensorRT plugins without a TensorRT runtime (tests/engines/test_tensorrt_plugins.py).
//
// Built with the plugin sources and stub launchers (no kernels, no libnvinfer): the plugins are reached only through
// the exported getCreators(), as IPluginRegistry::loadLibrary reaches them. For each request line on stdin
//   <PluginName> <field>=<i|f>:<value> ...     (i: kINT32, f: kFLOAT32, as the ONNX parser passes INT / FLOAT)
// it creates the plugin for the build phase, serializes it (getFieldsToSerialize), re-creates it for the runtime
// phase from exactly those fields (plan deserialization), serializes that and a clone again, and prints one JSON
// line with the three serialized field sets, nbOutputs and the output types for fp16 / int8 inputs. Unless run
// with --no-list it first prints every creator's name, version, namespace and getFieldNames().
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "ln_shift_partition/ln_shift_partition.h"
#include "patch_merge/patch_merge.h"
#include "tensorrt/plugin_common.h"
#include "window_attention/window_attention.h"
#include "window_reverse/window_reverse.h"

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);

// The harness never enqueues: the launchers only have to link.
namespace trt_swin {
cudaError_t window_attention(WindowAttentionParams const&, cudaStream_t) { return cudaErrorNotSupported; }
cudaError_t ln_shift_partition(LnShiftPartitionParams const&, cudaStream_t) { return cudaErrorNotSupported; }
cudaError_t window_reverse(WindowReverseParams const&, cudaStream_t) { return cudaErrorNotSupported; }
cudaError_t patch_merge(PatchMergeParams const&, cudaStream_t) { return cudaErrorNotSupported; }
}  // namespace trt_swin

namespace {

using namespace nvinfer1;

std::string typeName(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::kINT32: return "i";
    case PluginFieldType::kFLOAT32: return "f";
    default: return "other:" + std::to_string(static_cast<int>(t));
  }
}

std::string fieldsJson(PluginFieldCollection const* fc, bool withData) {
  std::ostringstream os;
  os.precision(9);
  os << "[";
  for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
    PluginField const& f = fc->fields[i];
    os << (i ? "," : "") << "{\"name\":\"" << f.name << "\",\"type\":\"" << typeName(f.type)
       << "\",\"length\":" << f.length;
    if (withData && f.data) {
      if (f.type == PluginFieldType::kINT32) os << ",\"value\":" << *static_cast<int32_t const*>(f.data);
      if (f.type == PluginFieldType::kFLOAT32) os << ",\"value\":" << *static_cast<float const*>(f.data);
    }
    os << "}";
  }
  return os.str() + "]";
}

IPluginCreatorV3One* findCreator(std::string const& name) {
  int32_t n = 0;
  auto* const* creators = getCreators(n);
  for (int32_t i = 0; i < n; ++i) {
    auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
    if (name == c->getPluginName()) return c;
  }
  return nullptr;
}

std::string serialized(IPluginV3* p) {
  auto* rt = static_cast<IPluginV3OneRuntime*>(p->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  return fieldsJson(rt->getFieldsToSerialize(), true);
}

std::string outputTypes(IPluginV3* p, DataType in0, int32_t nbInputs) {
  auto* b = static_cast<IPluginV3OneBuild*>(p->getCapabilityInterface(PluginCapabilityType::kBUILD));
  std::vector<DataType> ins(nbInputs, DataType::kFLOAT), outs(b->getNbOutputs());
  ins[0] = in0;
  if (b->getOutputDataTypes(outs.data(), static_cast<int32_t>(outs.size()), ins.data(), nbInputs) != 0) return "null";
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < outs.size(); ++i) os << (i ? "," : "") << static_cast<int>(outs[i]);
  return os.str() + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "--no-list") {
    int32_t n = 0;
    auto* const* creators = getCreators(n);
    for (int32_t i = 0; i < n; ++i) {
      auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
      std::cout << "{\"creator\":\"" << c->getPluginName() << "\",\"version\":\"" << c->getPluginVersion()
                << "\",\"namespace\":\"" << c->getPluginNamespace()
                << "\",\"fields\":" << fieldsJson(c->getFieldNames(), false) << "}\n";
    }
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream is(line);
    std::string name, tok;
    int32_t nbInputs = 0;
    is >> name >> nbInputs;
    std::vector<std::string> names;
    std::vector<int32_t> ints;
    std::vector<float> floats;
    std::vector<char> kinds;
    while (is >> tok) {
      auto eq = tok.find('='), colon = tok.find(':');
      names.push_back(tok.substr(0, eq));
      kinds.push_back(tok[eq + 1]);
      std::string v = tok.substr(colon + 1);
      ints.push_back(kinds.back() == 'i' ? std::atoi(v.c_str()) : 0);
      floats.push_back(kinds.back() == 'f' ? std::strtof(v.c_str(), nullptr) : 0.f);
    }
    std::vector<PluginField> fields;
    for (size_t i = 0; i < names.size(); ++i) {
      if (kinds[i] == 'i') fields.emplace_back(names[i].c_str(), &ints[i], PluginFieldType::kINT32, 1);
      else fields.emplace_back(names[i].c_str(), &floats[i], PluginFieldType::kFLOAT32, 1);
    }
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    IPluginCreatorV3One* creator = findCreator(name);
    if (creator == nullptr) {
      std::cout << "{\"plugin\":\"" << name << "\",\"error\":\"no creator\"}" << std::endl;
      continue;
    }
    IPluginV3* built = creator->createPlugin("node", &fc, TensorRTPhase::kBUILD);
    if (built == nullptr) {
      std::cout << "{\"plugin\":\"" << name << "\",\"error\":\"createPlugin refused the fields\"}" << std::endl;
      continue;
    }
    std::string const s1 = serialized(built);
    auto* rt = static_cast<IPluginV3OneRuntime*>(built->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    IPluginV3* restored = creator->createPlugin("node", rt->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
    IPluginV3* cloned = restored ? restored->clone() : nullptr;
    auto* core = static_cast<IPluginV3OneCore*>(built->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto* build = static_cast<IPluginV3OneBuild*>(built->getCapabilityInterface(PluginCapabilityType::kBUILD));
    std::cout << "{\"plugin\":\"" << core->getPluginName() << "\",\"version\":\"" << core->getPluginVersion()
              << "\",\"nb_outputs\":" << build->getNbOutputs() << ",\"built\":" << s1
              << ",\"restored\":" << (restored ? serialized(restored) : "null")
              << ",\"cloned\":" << (cloned ? serialized(cloned) : "null")
              << ",\"out_types_fp16_in\":" << outputTypes(built, DataType::kHALF, nbInputs)
              << ",\"out_types_int8_in\":" << outputTypes(built, DataType::kINT8, nbInputs) << "}" << std::endl;
    delete cloned;
    delete restored;
    delete built;
  }
  return 0;
}
