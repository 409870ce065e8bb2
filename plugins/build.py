"""`python -m trt_swin.plugins.build`: configure and build the CUDA libraries with CMake.

Builds `libtrt_swin_torch.so` (and the TensorRT plugin library with --tensorrt) from a source checkout and installs it
into plugins/lib/, where `trt_swin.plugins` finds it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _default_cxx() -> str | None:
    # The system g++ links libstdc++ dynamically, as torch does. Devtoolset-style toolchains (e.g. /opt/gcc on our GPU
    # image, which CXX may point to) link libstdc++_nonshared.a into the library: a second C++ runtime in the process,
    # and a C++ exception thrown by an op's input check then crashes Python instead of raising.
    return "/usr/bin/g++" if os.path.exists("/usr/bin/g++") else shutil.which("g++")


def _drop_stale_cache(build_dir: Path, cxx: str | None) -> None:
    """Forget a CMake cache made for another source tree or with another C++ compiler. CMake refuses the first, and
    keeps the old compiler and its implicit link directories for the second (seen: a reused build/ kept /opt/gcc's
    libstdc++ on the link line after --cxx changed)."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        return
    want = {"CMAKE_HOME_DIRECTORY": str(REPO)}
    if cxx:
        want["CMAKE_CXX_COMPILER"] = cxx
    for line in cache.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        name = key.split(":")[0]
        if name in want and Path(value).resolve() != Path(want[name]).resolve():
            print(f"note: {build_dir} was configured with {name}={value}, not {want[name]}: reconfiguring", flush=True)
            cache.unlink()
            shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
            return


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trt_swin.plugins.build", description=__doc__.splitlines()[0])
    p.add_argument("--archs", default=os.environ.get("TRT_SWIN_CUDA_ARCHS", "75;80;86;89;90"),
                   help="CUDA architectures for the portable kernels, e.g. '90' or '80;90' (default: %(default)s)")
    p.add_argument("--no-sm90a", action="store_true", help="skip the Hopper-only (sm_90a) kernels")
    p.add_argument("--no-torch", action="store_true", help="compile the kernels only (CI compile check)")
    p.add_argument("--tensorrt", metavar="TensorRT_ROOT", help="also build the TensorRT plugin library against this install")
    p.add_argument("--tensorrt-static", action="store_true",
                   help="register the TensorRT plugins statically at load (--staticPlugins, Polygraphy --plugins, ctypes)")
    p.add_argument("--ops", default=os.environ.get("TRT_SWIN_OPS", ""),
                   help="semicolon list of plugins/<op> folders to build (default: all)")
    p.add_argument("--cxx", default=os.environ.get("TRT_SWIN_CXX") or _default_cxx(),
                   help="host C++ compiler, also nvcc's host compiler (default: %(default)s)")
    p.add_argument("--build-dir", default=str(REPO / "build"))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = p.parse_args(argv)

    if not (REPO / "CMakeLists.txt").exists():
        print(f"error: {REPO} is not a trt_swin source checkout (no CMakeLists.txt); build from the repository", file=sys.stderr)
        return 2
    cfg = [
        "cmake", "-S", str(REPO), "-B", args.build_dir, "-G", "Ninja",
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DTRT_SWIN_CUDA_ARCHS={args.archs}",
        f"-DTRT_SWIN_SM90A={'OFF' if args.no_sm90a else 'ON'}",
        f"-DTRT_SWIN_TORCH={'OFF' if args.no_torch else 'ON'}",
        f"-DTRT_SWIN_OPS={args.ops}",
    ]
    if args.tensorrt:
        cfg += ["-DTRT_SWIN_TENSORRT=ON", f"-DTensorRT_ROOT={args.tensorrt}",
                f"-DTRT_SWIN_TENSORRT_STATIC={'ON' if args.tensorrt_static else 'OFF'}"]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        print("error: nvcc not found on PATH: the CUDA libraries cannot be built here", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("CUDA_HOME", str(Path(os.path.realpath(nvcc)).parent.parent))  # torch's include_paths() reads it
    cfg.append(f"-DCMAKE_CUDA_COMPILER={os.path.realpath(nvcc)}")
    if args.cxx:
        cfg += [f"-DCMAKE_CXX_COMPILER={args.cxx}", f"-DCMAKE_CUDA_HOST_COMPILER={args.cxx}"]
        # CMake probes nvcc's implicit link directories with $CUDAHOSTCXX; left pointing at another toolchain, that
        # toolchain's lib/ (and its libstdc++) ends up on the op library's link line.
        env["CXX"] = env["CUDAHOSTCXX"] = args.cxx
        cc = Path(args.cxx).with_name(Path(args.cxx).name.replace("g++", "gcc"))
        if cc.exists():
            env["CC"] = str(cc)
    _drop_stale_cache(Path(args.build_dir), args.cxx and os.path.realpath(args.cxx))
    for cmd in (cfg, ["cmake", "--build", args.build_dir, "-j", str(args.jobs)]):
        print("+", " ".join(cmd), flush=True)
        if subprocess.call(cmd, env=env) != 0:
            return 1
    if not args.no_torch or args.tensorrt:
        cmd = ["cmake", "--install", args.build_dir]
        print("+", " ".join(cmd), flush=True)
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
