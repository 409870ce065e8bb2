"""`trt_swin <command>`: one module per subcommand in this package.

A command module defines `NAME`, `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`. A command whose
module is missing or fails to import stays listed and says why when run (Polygraphy's MissingTool idea), so `--help`
shows the whole plan. User errors print one line (`error: ...`); `-v` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback

# (command, module, issue that delivers it)
COMMANDS = (
    ("train", "train", None),
    ("eval", "eval", None),
    ("quantize", "quantize", "#3, quantization toolkit"),
    ("build-engine", "build_engine", "#5 native engine / #6 TensorRT backend"),
    ("bench", "bench", "#5 native engine"),
)


def _load(module: str):
    try:
        return importlib.import_module(f"{__name__}.{module}"), None
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{module}":
            return None, "not available yet"
        return None, f"unavailable: {e}"
    except Exception as e:  # a broken optional dependency must not take the whole CLI down
        return None, f"unavailable: {type(e).__name__}: {e}"


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="trt_swin", description="Fast Swin Transformer inference on NVIDIA GPUs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, module, issue in COMMANDS:
        mod, why = _load(module)
        if mod is None:
            p = sub.add_parser(name, help=f"[{why}{' (' + issue + ')' if issue else ''}]")
            p.add_argument("rest", nargs=argparse.REMAINDER)
            modules[name] = (None, f"`trt_swin {name}` is {why}{' (' + issue + ')' if issue else ''}")
        else:
            p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
            mod.add_arguments(p)
            modules[name] = (mod, None)
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    mod, why = modules[args.command]
    if mod is None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    try:
        return int(mod.run(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as e:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2


def entry(command: str) -> None:
    """`python -m trt_swin.<command>` == `trt_swin <command>`."""
    sys.exit(main([command, *sys.argv[1:]]))
