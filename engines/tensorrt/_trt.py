"""Importing TensorRT and loading the plugin library: one place for the version rules and the install message."""
from __future__ import annotations

import os
from pathlib import Path

MIN_VERSION = (10, 8)   # IPluginV3 through the ONNX parser, strongly typed networks, IPluginRegistry.load_library
INSTALL_HINT = ("TensorRT is not installed. On a machine with an NVIDIA GPU and driver: "
                "pip install 'trt_swin[tensorrt]' (TensorRT >= 10.8 or 11.x, with cuda-python), then build the plugin "
                "library with `python -m trt_swin.plugins.build --tensorrt <TensorRT root>`.")
PLUGIN_LIB_NAME = "libtrt_swin_trt_plugins.so"
_PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
_loaded_libraries: dict[str, object] = {}


def require_tensorrt():
    """The `tensorrt` module; RuntimeError naming the install command when it is missing or too old."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise RuntimeError(INSTALL_HINT) from e
    if version_tuple(trt) < MIN_VERSION:
        raise RuntimeError(f"TensorRT {trt.__version__} is too old: trt_swin needs >= "
                           f"{'.'.join(map(str, MIN_VERSION))}. {INSTALL_HINT}")
    return trt


def version_tuple(trt) -> tuple[int, int]:
    major, minor = trt.__version__.split(".")[:2]
    return int(major), int(minor)


def strongly_typed_only(trt) -> bool:
    """TensorRT 11 removed weak typing (BuilderFlag.FP16 / INT8 and the calibrator); every network is strongly typed."""
    return version_tuple(trt)[0] >= 11


def default_plugin_library() -> Path | None:
    """$TRT_SWIN_TRT_PLUGINS, else plugins/lib/libtrt_swin_trt_plugins.so (where the build installs it)."""
    env = os.environ.get("TRT_SWIN_TRT_PLUGINS")
    if env:
        return Path(env)
    p = _PLUGINS_DIR / "lib" / PLUGIN_LIB_NAME
    return p if p.exists() else None


def load_plugin_library(trt, path: str | Path | None):
    """Register the trt_swin plugin creators with TensorRT's registry (once per process).

    Uses IPluginRegistry.load_library, i.e. the library's getCreators() (the default, dynamic-registration build).
    A statically registering build (TRT_SWIN_TRT_STATIC_REGISTRATION) is loaded with ctypes instead.
    """
    path = Path(path) if path else default_plugin_library()
    if path is None or not path.exists():
        raise RuntimeError(f"the trt_swin TensorRT plugin library was not found ({path or PLUGIN_LIB_NAME}): build it "
                           "with `python -m trt_swin.plugins.build --tensorrt <TensorRT root>`, or pass its path "
                           "(--plugin-lib / TRT_SWIN_TRT_PLUGINS), or build without plugins")
    key = str(path.resolve())
    if key not in _loaded_libraries:
        handle = trt.get_plugin_registry().load_library(key)
        if handle is None:
            raise RuntimeError(f"TensorRT could not load the plugin library {path} (see the TensorRT log above; a "
                               "library loaded twice, or a static-registration build, is refused by load_library)")
        _loaded_libraries[key] = handle
    return _loaded_libraries[key]


def make_logger(trt, verbose: bool = False):
    return trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
