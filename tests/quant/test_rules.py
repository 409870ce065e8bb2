"""Rules and recipes: each recipe enables exactly the quantizers it claims (checked on the summary table, row by
row), rules merge field by field in order, and bad rules fail with messages that say what to fix."""
from __future__ import annotations

import fnmatch
import io
from contextlib import redirect_stdout

import pytest

from trt_swin.calibration import insert_quantizers, iter_quantizers
from trt_swin.quant.rules import Rule, RuleError, compile_plan, load_recipe, load_rules_file

# Where each recipe says the GEMM outputs are quantized (FasterTransformer int8_mode 1 vs 2).
INT8_OUT = ("layers.*.blocks.*.attn.qkv", "layers.*.blocks.*.attn.proj", "layers.*.blocks.*.mlp.fc2",
            "layers.*.downsample.reduction")
PM_INT32_OUT = ("layers.*.blocks.*.attn.qkv", "layers.*.blocks.*.attn.proj")


def expected_row(recipe: str, module: str, mtype: str) -> dict[str, str]:
    """The summary row a recipe promises for one module (written from the recipe's documentation, not its YAML)."""
    off = {"input": "-", "weight": "-", "output": "-"}
    if mtype != "Linear":  # patch_embed conv and every LayerNorm stay floating point in all recipes
        return off
    if recipe == "fp8":
        return {"input": "fp8 per-tensor max", "weight": "fp8 per-tensor max", "output": "-"}
    act = "int8 per-tensor percentile-99.99"
    outs = INT8_OUT if recipe == "int8" else PM_INT32_OUT
    return {"input": act, "weight": "int8 per-channel max",
            "output": act if any(fnmatch.fnmatchcase(module, p) for p in outs) else "-"}


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32", "fp8"])
def test_recipe_enables_exactly_what_it_claims(mini, recipe):
    model = mini[0]
    plan = compile_plan(model, recipe)
    rows = plan.summary_rows()
    gemms = {r["module"] for r in rows if r["type"] == "Linear"}
    # Every Swin GEMM kind is present in the model, so the comparison below covers all of them.
    for kind in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "downsample.reduction", "head.fc"):
        assert any(m.endswith(kind) for m in gemms), kind
    for row in rows:
        assert {k: row[k] for k in ("input", "weight", "output")} == expected_row(recipe, row["module"], row["type"]), row


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32", "fp8"])
def test_inserted_quantizers_match_the_plan(mini, recipe):
    import copy

    model = copy.deepcopy(mini[0])
    plan = compile_plan(model, recipe)
    with redirect_stdout(io.StringIO()):
        insert_quantizers(model, plan)
    enabled = {n: q for n, q in iter_quantizers(model) if not q._disabled}
    assert set(enabled) == set(plan.enabled)
    for name, q in enabled.items():
        spec = plan.quantizers[name]
        assert tuple(q.num_bits) == (4, 3) if spec.bits == "e4m3" else q.num_bits == 8
        assert q.axis == spec.axis


def test_fc2_pm_int32_differs_from_int8_only_on_fc2_and_reduction_outputs(mini):
    a = compile_plan(mini[0], "int8").quantizers
    b = compile_plan(mini[0], "int8-fc2-pm-int32").quantizers
    changed = sorted(k for k in a if a[k].enabled != b[k].enabled)
    assert changed and all(k.endswith(("mlp.fc2.output_quantizer", "downsample.reduction.output_quantizer"))
                           for k in changed)
    assert all(a[k].enabled and not b[k].enabled for k in changed)
    # The LayerNorm that consumes the reduction output has no input quantizer (no Q right after the GEMM).
    assert not any(q.enabled for k, q in b.items() if k.endswith("norm1.input_quantizer"))


def test_later_rules_win_field_by_field(mini):
    rules = [Rule.parse_flag("*.mlp.fc2: calibrator=mse"), Rule.parse_flag("layers.0.*.fc2: output.enable=false"),
             Rule.parse_flag("head: enable=false"), Rule.parse_flag("layers.1.blocks.0.attn.qkv: weight.axis=none")]
    q = compile_plan(mini[0], "int8", rules).quantizers
    assert str(q["layers.0.blocks.0.mlp.fc2.input_quantizer"].calibrator) == "mse"
    assert not q["layers.0.blocks.0.mlp.fc2.output_quantizer"].enabled
    assert q["layers.1.blocks.0.mlp.fc2.output_quantizer"].enabled  # only stage 0 was turned off
    assert str(q["layers.1.blocks.0.mlp.fc2.output_quantizer"].calibrator) == "mse"  # calibrator kept from rule 1
    assert not any(q[f"head.fc.{r}_quantizer"].enabled for r in ("input", "weight", "output"))
    assert q["layers.1.blocks.0.attn.qkv.weight_quantizer"].axis is None
    assert q["layers.1.blocks.0.attn.qkv.weight_quantizer"].enabled  # axis alone does not toggle
    assert q["layers.0.blocks.0.attn.qkv.weight_quantizer"].axis == 0


def test_global_calibrator_and_percentile(mini):
    plan = compile_plan(mini[0], "int8", calibrator="percentile", percentile=99.9)
    acts = [q for q in plan.enabled.values() if q.role != "weight"]
    assert acts and all(str(q.calibrator) == "percentile-99.9" for q in acts)
    assert all(str(q.calibrator) == "max" for q in plan.enabled.values() if q.role == "weight")


def test_rules_file(mini, tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - match: head\n    enable: false\n  - match: 'layers.2.*'\n    type: Linear\n"
                 "    input: {calibrator: entropy}\n")
    rules = load_rules_file(f)
    q = compile_plan(mini[0], "int8", rules).quantizers
    assert not q["head.fc.input_quantizer"].enabled
    assert str(q["layers.2.blocks.0.attn.qkv.input_quantizer"].calibrator) == "entropy"
    assert str(q["layers.1.blocks.0.attn.qkv.input_quantizer"].calibrator) == "percentile-99.99"


def test_quant_cfg_is_deny_all_then_enables(mini):
    plan = compile_plan(mini[0], "int8-fc2-pm-int32")
    cfg = plan.quant_cfg
    assert cfg[0] == {"quantizer_name": "*", "enable": False}
    assert [e["quantizer_name"] for e in cfg[1:]] == list(plan.enabled)
    assert all(e["enable"] and e["cfg"]["num_bits"] == 8 for e in cfg[1:])


@pytest.mark.parametrize("flag, message", [
    ("layers.*.blocks.*.mlp.fc3: enable=false", "selects no quantizable module"),
    ("head: bits=4", "bits=4 is not supported"),
    ("head: calibrator=kl", "unknown calibrator 'kl'"),
    ("head: calibrator=percentile-99.5", "percentile must be one of"),
    ("head: input.axis=0", "activations are per tensor"),
    ("head: weight.calibrator=mse", "weights are always calibrated with max"),
    ("head: enable=maybe", "is not a boolean"),
    ("head: colour=red", "unknown key"),
    ("head enable", "expected 'PATTERN: key=value"),
    ("head: type=Conv2d, enable=false", "selects no quantizable module"),
], ids=["no-match", "bits", "calibrator", "percentile", "act-axis", "weight-calib", "bool", "key", "syntax", "type"])
def test_bad_rule_flags(mini, flag, message):
    with pytest.raises(RuleError, match=message):
        compile_plan(mini[0], "int8", [Rule.parse_flag(flag)])


def test_no_match_lists_close_module_paths(mini):
    with pytest.raises(RuleError) as e:
        compile_plan(mini[0], "int8", [Rule.parse_flag("layers.0.blocks.0.mlp.fc3: enable=false")])
    assert "layers.0.blocks.0.mlp.fc" in str(e.value) and "Close module paths" in str(e.value)


def test_rule_that_sets_nothing():
    with pytest.raises(RuleError, match="sets nothing"):
        Rule.from_dict({"match": "head"}, "test")


@pytest.mark.parametrize("text, message", [
    ("rules: [match: head\n", "not valid YAML"),
    ("rules: {match: head}\n", "must be a list"),
    ("other: 1\n", "unknown top-level key"),
    ("rules: []\n", "holds no rules"),
], ids=["yaml", "not-list", "key", "empty"])
def test_bad_rule_files(tmp_path, text, message):
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(RuleError, match=message):
        load_rules_file(f)


def test_unknown_recipe_suggests():
    with pytest.raises(RuleError, match="did you mean int8"):
        load_recipe("int9")


def test_recipe_extends_chain():
    child = load_recipe("int8-fc2-pm-int32")
    assert child.rules[: len(load_recipe("int8").rules)] == load_recipe("int8").rules
    assert str(child.calibrator) == "percentile-99.99"
