"""`trt_swin quantize`: PTQ or QAT of a Swin with ModelOpt, by recipe and per-layer rules.

Writes into --output-dir: `<model>-<recipe>.pth` + `.json` (quantized checkpoint, `trt_swin eval --model` loads it),
`scales.json` (every quantizer: enabled, bits, axis, amax), `summary.md` (what is quantized and how), optionally
`<model>-<recipe>.onnx` (Q/DQ, checked on onnxruntime) and the QAT epoch checkpoints. Prints the summary table and
FP32 vs quantized accuracy (top-1, agreement with FP32, logit cosine) on the test split.
"""
from __future__ import annotations

import argparse
import copy
import io
import os
from contextlib import redirect_stdout
from pathlib import Path

from .args import (add_data_args, add_device_args, add_model_args, add_report_args, load_model_from_args, print_table,
                   resolve_device, write_json)

NAME = "quantize"
HELP = "quantize a model (PTQ or QAT) with a recipe and per-layer rules; write checkpoint, scales.json, Q/DQ ONNX"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..quant.rules import CALIBRATOR_METHODS, PERCENTILES, available_recipes

    add_model_args(p)
    add_data_args(p)
    add_device_args(p)
    add_report_args(p)
    p.add_argument("--mode", choices=("ptq", "qat"), default="ptq", help="ptq: calibrate only; qat: calibrate, then fine-tune")
    g = p.add_argument_group("recipe and rules")
    g.add_argument("--recipe", default="int8", help=f"built-in ({', '.join(available_recipes())}) or a recipe .yaml")
    g.add_argument("--rules", metavar="FILE", help="YAML rule file applied after the recipe (see trt_swin.quant.rules)")
    g.add_argument("--rule", action="append", default=[], metavar="'PATTERN: key=value'",
                   help="one rule, applied after the recipe and --rules; repeatable, e.g. '*.mlp.fc2: output.enable=false'")
    g = p.add_argument_group("calibration")
    g.add_argument("--calibrator", choices=CALIBRATOR_METHODS, help="activation calibrator (default: the recipe's)")
    g.add_argument("--percentile", type=float, choices=PERCENTILES, help="percentile of the percentile calibrator")
    g.add_argument("--calib-images", type=int, default=512, help="calibration images, drawn from the training split")
    g.add_argument("--calib-batch-size", type=int, default=64)
    g.add_argument("--calib-cache", metavar="FILE", help="calibration cache: reused if it matches, written if absent")
    g.add_argument("--seed", type=int, default=0, help="seed of the calibration / QAT image draw")
    g = p.add_argument_group("sensitivity")
    g.add_argument("--sensitivity", choices=("single", "leave-out"),
                   help="rank per-layer sensitivity (one layer quantized at a time, or one left out)")
    g.add_argument("--keep-fp", type=int, default=0, metavar="N", help="keep the N most sensitive modules in floating point")
    g = p.add_argument_group("QAT (--mode qat)")
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument("--lr", type=float, default=1e-5)
    g.add_argument("--train-batch-size", type=int, default=64)
    g.add_argument("--kd-temperature", type=float, default=2.0, help="distillation temperature")
    g.add_argument("--kd-weight", type=float, default=0.7, help="weight of the KD loss (1 - weight goes to the task loss)")
    g.add_argument("--amp", action="store_true", help="bf16 autocast during QAT")
    g.add_argument("--max-steps", type=int, help="stop QAT after this many steps")
    g.add_argument("--train-images", type=int, help="QAT on a fixed random subset of the training split")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", help="default: runs/quantize/<model>-<recipe>[-qat]")
    g.add_argument("--onnx", action="store_true", help="export the Q/DQ ONNX and check it on onnxruntime")
    g.add_argument("--opset", type=int, help="ONNX opset (default 17 for INT8, 21 for FP8)")
    g.add_argument("--no-eval", action="store_true", help="skip the test-split accuracy check")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _out_dir(args, info) -> Path:
    if args.output_dir:
        return Path(args.output_dir)
    recipe = Path(args.recipe).stem
    return Path("runs/quantize") / f"{info.name}-{recipe}{'-qat' if args.mode == 'qat' else ''}"


def run(args) -> int:
    import torch

    from .. import data as data_mod
    from ..calibration.sampling import calibration_subset
    from ..quant import checkpoint as ckpt
    from ..quant.ptq import quantize_ptq
    from ..quant.rules import Rule, compile_plan, keep_fp_rules, load_recipe, load_rules_file
    from ..quant.sensitivity import keep_fp, layer_sensitivity, most_sensitive
    from ..evaluation import compare_logits, evaluate

    device = resolve_device(args.device)
    rank = int(os.environ.get("RANK", "0"))
    progress = not args.quiet and rank == 0
    recipe = load_recipe(args.recipe)
    rules = (load_rules_file(args.rules) if args.rules else []) + [Rule.parse_flag(r) for r in args.rule]
    if args.keep_fp and not args.sensitivity:
        args.sensitivity = "single"
    model, info = load_model_from_args(args)
    teacher = copy.deepcopy(model).eval()
    plan = compile_plan(model, recipe, rules, calibrator=args.calibrator, percentile=args.percentile)

    train_ds = data_mod.build_dataset(args.data, "train", info, skip_corrupt=args.skip_corrupt)
    calib_set = calibration_subset(train_ds, args.calib_images, seed=args.seed, split="train")
    calib_loader = data_mod.build_loader(calib_set, args.calib_batch_size, workers=args.workers)
    with redirect_stdout(io.StringIO()):  # ModelOpt prints "Inserted N quantizers"; the summary below says more
        record = quantize_ptq(model.to(device), plan, calib_loader, device, cache=args.calib_cache, progress=progress)
    if record["cache"]:
        print(f"calibration cache {args.calib_cache}: {record['cache']} (key {record['cache_key'][:12]})")
    report: dict = {"model": info.name, "recipe": recipe.name, "mode": args.mode, "device": device,
                    "calibrator": str(plan.calibrator), "calib_images": len(calib_set), "calibration": record}

    if args.sensitivity:
        rows = layer_sensitivity(model, calib_loader, device, method=args.sensitivity, progress=progress)
        report["sensitivity"] = {"method": args.sensitivity, "layers": rows}
        print(f"\nper-layer sensitivity ({args.sensitivity}, KL vs FP32 on {len(calib_set)} training images; "
              "most sensitive first):")
        print_table([{"rank": r["rank"], "module": r["module"], "KL": f"{r['kl']:.3e}", "top-1 agreement %": r["agreement"]}
                     for r in rows[: max(10, args.keep_fp)]])
        if args.keep_fp:
            keep = most_sensitive(rows, args.keep_fp)
            keep_fp(model, keep)
            plan = compile_plan(teacher, recipe, rules + keep_fp_rules(keep), calibrator=args.calibrator,
                                percentile=args.percentile)
            report["keep_fp"] = keep
            print(f"kept in floating point: {', '.join(keep)}")

    out_dir = _out_dir(args, info)
    name = f"{info.name}-{recipe.name}"

    def save(m, path):
        return ckpt.save_quantized(m, info, plan, path, extra={"mode": args.mode, "calib_images": len(calib_set)})

    if args.mode == "qat":
        from ..quant.qat import QATConfig, checkpoint_writer, train_qat

        cfg = QATConfig(epochs=args.epochs, lr=args.lr, batch_size=args.train_batch_size,
                        kd_temperature=args.kd_temperature, kd_weight=args.kd_weight, amp=args.amp,
                        max_steps=args.max_steps, train_images=args.train_images, seed=args.seed, workers=args.workers)
        report["qat"] = train_qat(model, teacher, train_ds, cfg, device,
                                  checkpoint_fn=checkpoint_writer(out_dir, save), progress=progress)
        device = str(next(model.parameters()).device)  # a torchrun rank trains on its own GPU
    if rank != 0:
        return 0

    print(f"\n{recipe.name} ({recipe.description}); activation calibrator {plan.calibrator}")
    print_table(plan.summary_rows(), ["module", "type", "input", "weight", "output"])
    counts = {r: sum(q.enabled and q.role == r for q in plan.quantizers.values()) for r in ("input", "weight", "output")}
    print(f"enabled quantizers: {counts['input']} input, {counts['weight']} weight, {counts['output']} output "
          f"of {len(plan.quantizers)}")

    path = save(model, out_dir / f"{name}.pth")
    scales = ckpt.write_scales(model, out_dir / "scales.json", plan, extra={"model": info.name})
    summary = out_dir / "summary.md"
    buf = io.StringIO()
    with redirect_stdout(buf):
        print_table(plan.summary_rows(), ["module", "type", "input", "weight", "output"])
    summary.write_text(f"# {name}\n\n{buf.getvalue()}")
    report.update({"checkpoint": str(path), "scales": str(scales), "plan": plan.to_dict()})

    if not args.no_eval:
        test_ds = data_mod.build_dataset(args.data, "test", info, skip_corrupt=args.skip_corrupt)
        loader = data_mod.build_loader(test_ds, args.batch_size, workers=args.workers, limit=args.limit)
        ref = evaluate(teacher.to(device), loader, device, progress=progress, return_logits=True)
        res = evaluate(model, loader, device, progress=progress, return_logits=True)
        cmp = compare_logits(ref["logits"], res["logits"], ref["labels"])
        report["accuracy"] = {"n": ref["n"], **cmp}
        print(f"\naccuracy on the test split ({ref['n']} images):")
        print_table([{"model": f"{info.name} FP32", "top-1 %": cmp["top1_ref"], "drop (pp)": 0.0,
                      "agreement %": 100.0, "logit cosine": "1.0000"},
                     {"model": f"{info.name} {recipe.name} {args.mode}", "top-1 %": cmp["top1"],
                      "drop (pp)": cmp["top1_ref"] - cmp["top1"], "agreement %": cmp["agreement"],
                      "logit cosine": f"{cmp['cosine']:.4f}"}])

    if args.onnx:
        from ..quant.onnx_export import export_onnx, quantized_gemm_outputs, scope_to_module, verify_onnx

        sample_ds = data_mod.build_dataset(args.data, "test", info)
        images = torch.stack([sample_ds[i][0] for i in range(min(64, len(sample_ds)))])
        onnx_path = export_onnx(model, out_dir / f"{name}.onnx", images[:2].to(device), opset=args.opset)
        check = verify_onnx(onnx_path, model.cpu(), images)
        gemm_q = {scope_to_module(k): v for k, v in quantized_gemm_outputs(onnx_path).items()}
        report["onnx"] = {"path": str(onnx_path), **check,
                          "int8_output_gemms": sorted(k for k, v in gemm_q.items() if v)}
        print(f"\nONNX {onnx_path}: onnxruntime vs fake-quant PyTorch on {check['n']} test images: "
              f"cosine {check['cosine']:.5f}, top-1 agreement {check['agreement']:.1f}%, "
              f"max |diff| {check['max_abs_diff']:.3g} (|logits| <= {check['ref_max_abs']:.3g})")
        if not check["ok"]:
            raise RuntimeError(f"the ONNX export does not match the fake-quantized model: {check}")

    print(f"\nwrote {path} (+ .json), {scales}, {summary}" + (f", {report['onnx']['path']}" if args.onnx else ""))
    write_json(report, args.json)
    return 0
