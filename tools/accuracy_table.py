"""The recipe x calibrator accuracy grid of issue #3: its cells, a timed `trt_swin quantize`, and the summary table.

    python tools/accuracy_table.py cells                   one cell a line: "recipe calibrator percentile|-", run order
    python tools/accuracy_table.py quantize ARGS...        `trt_swin quantize ARGS...`, with the calibration time added
                                                           to the --json report (calibration.seconds)
    python tools/accuracy_table.py table --dir OUT [--name accuracy_swint]
                                                           reads OUT/q_*.json, OUT/qat_*.json, OUT/jobs/*.status,
                                                           OUT/logs/*.log; writes OUT/<name>.md and OUT/<name>.json

A cell's tag is `<recipe>-<calibrator>[-<percentile>]`; its PTQ report is `q_<tag>.json`, the QAT report
`qat_<tag>.json`. tools/device_accuracy_swint.sh runs the cells; a cell without a report is listed with the reason
its log gives (failed, timed out, refused, not run), so a partial run still yields a complete table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RECIPES = ("int8", "int8-fc2-pm-int32", "fp8")
CALIBRATORS = (("max", None), ("percentile", 99.9), ("percentile", 99.99), ("percentile", 99.999), ("entropy", None),
               ("mse", None))
# Measured last session (H200): run after the new cells, so a run cut short by its time limit loses known numbers first.
KNOWN = {("int8", "percentile", 99.99), ("int8", "max", None), ("int8-fc2-pm-int32", "percentile", 99.99),
         ("fp8", "max", None)}
# The entropy calibrator is defined on INT8 levels; the CLI refuses it for FP8 after calibrating, so it goes last.
REFUSED = {("fp8", "entropy", None)}


def tag(recipe: str, calibrator: str, percentile: float | None) -> str:
    return f"{recipe}-{calibrator}" + (f"-{percentile:g}" if percentile is not None else "")


def cells() -> list[tuple[str, str, float | None]]:
    """All recipe x calibrator cells in run order: new ones (histogram calibrators first), known, refused."""
    grid = [(r, c, p) for r in RECIPES for c, p in CALIBRATORS]
    slow_first = {"entropy": 0, "mse": 1, "percentile": 2, "max": 3}
    return sorted(grid, key=lambda x: (x in REFUSED, x in KNOWN, slow_first[x[1]]))


def timed_quantize(argv: list[str]) -> int:
    """`trt_swin quantize argv`, with the wall time of PTQ calibration (statistics pass + amax search) in the report.

    The CLI does not time calibration; wrapping `quantize_ptq` here adds `seconds` to the record it returns, which the
    CLI stores as report["calibration"]. The amax values come back to the CPU at its end, so on CUDA the time is complete.
    """
    from trt_swin.cli import main
    from trt_swin.quant import ptq

    inner = ptq.quantize_ptq

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        record = inner(*args, **kwargs)
        record["seconds"] = round(time.perf_counter() - t0, 2)
        return record

    ptq.quantize_ptq = timed  # the CLI imports it from the module at call time
    return main(["quantize", *argv])


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _status(out: Path, name: str) -> dict:
    """rc, wall seconds and the reason of a job without a report, from jobs/<name>.status and logs/<name>.log."""
    st = out / "jobs" / f"{name}.status"
    if not st.exists():
        return {"status": "not run", "rc": None, "wall_s": None}
    rc_s, wall_s = (st.read_text().split() + ["", ""])[:2]
    rc = int(rc_s) if rc_s.lstrip("-").isdigit() else None
    wall = float(wall_s) if wall_s else None
    if rc == 0:
        return {"status": "ok", "rc": 0, "wall_s": wall}
    if rc in (124, 137):
        return {"status": "timed out", "rc": rc, "wall_s": wall}
    log = out / "logs" / f"{name}.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    err = next((ln for ln in reversed(lines) if ln.startswith("error:")), None)
    err = err or next((ln for ln in reversed(lines) if "Error" in ln), None) or (lines[-1] if lines else "no log")
    kind = "refused" if "only" in err and "calibrator" in err else "failed"
    return {"status": f"{kind}: {err.removeprefix('error: ').strip()[:160]}", "rc": rc, "wall_s": wall}


def _row(out: Path, recipe: str, calibrator: str, percentile: float | None, mode: str) -> dict:
    name = f"{'q' if mode == 'ptq' else 'qat'}_{tag(recipe, calibrator, percentile)}"
    row = {"recipe": recipe, "calibrator": calibrator + (f"-{percentile:g}" if percentile is not None else ""),
           "mode": mode, **_status(out, name)}
    rep = _load(out / f"{name}.json")
    if rep is None or "accuracy" not in rep:
        if row["status"] == "ok":
            row["status"] = "failed: no report"
        return row
    acc = rep["accuracy"]
    row.update(status="ok", n=acc["n"], top1_fp32=acc["top1_ref"], top1=acc["top1"], drop_pp=acc["top1"] - acc["top1_ref"],
               agreement=acc["agreement"], cosine=acc["cosine"], rel_l2=acc.get("rel_l2"),
               calib_s=rep.get("calibration", {}).get("seconds"), calib_images=rep.get("calib_images"),
               device=rep.get("device"))
    if mode == "qat" and "qat" in rep:
        q = rep["qat"]
        row.update(qat_steps=q.get("steps"), qat_loss=(q.get("epochs") or [{}])[-1].get("loss"),
                   qat_config=q.get("config"))
    return row


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def summarize(out: Path, name: str) -> tuple[str, dict]:
    rows = [_row(out, r, c, p, "ptq") for r, c, p in sorted(cells(), key=lambda x: (RECIPES.index(x[0]),
                                                                                      CALIBRATORS.index(x[1:])))]
    rows.append(_row(out, "int8", "percentile", 99.99, "qat"))
    ok = [r for r in rows if r["status"] == "ok"]
    fp32 = sorted({round(r["top1_fp32"], 4) for r in ok})
    train = _load(out / "train_swint.json") or {}
    engines = _load(out / "engines_swint.json")
    env = _load(out / "env.json") or {}
    lines = [f"# {name}", ""]
    if env:
        lines.append(f"GPU {env.get('gpu') or 'none (CPU run)'}; torch {env.get('torch')}, timm {env.get('timm')}, "
                     f"nvidia-modelopt {env.get('modelopt')}.")
    if ok:
        first = ok[0]
        lines.append(f"Device {first.get('device')}; {first.get('n')} test images, {first.get('calib_images')} "
                     "calibration images from the training split per cell.")
    if train:
        lines.append(f"Model: trained in this run, {train.get('epochs_run')} epochs, {train.get('train_time_s')} s on "
                     f"{train.get('train_device')}, test top-1 {train.get('test_top1')} %.")
    if fp32:
        lines.append(f"FP32 top-1 as each job measured it: {', '.join(f'{v:.2f}' for v in fp32)} % "
                     f"({'consistent' if len(fp32) == 1 else 'INCONSISTENT across jobs'}).")
    lines.append(f"{len(ok)} of {len(rows)} jobs finished.")
    lines += ["Calibration seconds: statistics pass + amax search, measured while other jobs shared the GPU and CPU.", "",
              "| recipe | calibrator | mode | top-1 % | drop (pp) | agreement % | logit cosine | calib s | job s | status |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['calibrator']} | {r['mode']} | {_fmt(r.get('top1'), '.2f')} | "
                     f"{_fmt(r.get('drop_pp'), '+.2f')} | {_fmt(r.get('agreement'), '.2f')} | "
                     f"{_fmt(r.get('cosine'), '.5f')} | {_fmt(r.get('calib_s'), '.1f')} | {_fmt(r.get('wall_s'), '.0f')} | "
                     f"{r['status']} |")
    qat = rows[-1]
    if qat["status"] == "ok" and qat.get("qat_config"):
        cfg = qat["qat_config"]
        lines += ["", f"QAT: {qat.get('qat_steps')} steps, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}, "
                  f"KD T={cfg.get('kd_temperature')} weight {cfg.get('kd_weight')}, bf16 autocast {cfg.get('amp')}, "
                  f"final loss {_fmt(qat.get('qat_loss'), '.4f')}."]
    if engines:
        ref = engines.get("reference", {})
        lines += ["", "Native engines (`trt_swin eval --engine`), against the FP32 PyTorch model "
                  f"(top-1 {_fmt(ref.get('top1'), '.2f')} %, {ref.get('n')} images):", "",
                  "| engine | top-1 % | drop (pp) | agreement % | logit cosine | images/s |", "|---|---|---|---|---|---|"]
        for path, e in engines.get("engines", {}).items():
            lines.append(f"| {Path(path).name} | {_fmt(e.get('top1'), '.2f')} | {_fmt(e.get('delta_top1_pp'), '+.2f')} | "
                         f"{_fmt(e.get('agreement'), '.2f')} | {_fmt(e.get('cosine'), '.5f')} | "
                         f"{_fmt(e.get('images_per_s'), '.0f')} |")
    md = "\n".join(lines) + "\n"
    return md, {"rows": rows, "fp32_top1": fp32, "train": train or None, "engines": engines}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["quantize"]:  # everything after it goes to the CLI unparsed
        return timed_quantize(argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("cells", help="print the cells in run order")
    sub.add_parser("quantize", help="timed trt_swin quantize (arguments passed through)")
    t = sub.add_parser("table", help="write the summary table")
    t.add_argument("--dir", required=True, type=Path, help="folder with the jobs' reports ($OUT)")
    t.add_argument("--name", default="accuracy_swint", help="output name: DIR/NAME.md and DIR/NAME.json")
    args = p.parse_args(argv)
    if args.cmd == "cells":
        for r, c, pct in cells():
            print(r, c, "-" if pct is None else f"{pct:g}")
        return 0
    if not args.dir.is_dir():
        p.error(f"--dir {args.dir} is not a folder")
    md, data = summarize(args.dir, args.name)
    (args.dir / f"{args.name}.md").write_text(md)
    (args.dir / f"{args.name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
