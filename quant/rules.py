"""Per-layer quantization rules: the schema, its validation, and its compilation to a ModelOpt ``quant_cfg``.

This docstring is the user reference for recipes (``quant/recipes/*.yaml``), rule files (``--rules FILE``) and
``--rule`` flags.

Quantizers
----------
ModelOpt puts up to three quantizers on every quantizable module of a timm Swin: ``nn.Linear`` and ``nn.Conv2d``
get ``input`` (the GEMM's activation input), ``weight`` and ``output`` (after the bias); ``nn.LayerNorm`` gets
``input`` and ``output``. They are named ``<module path>.<role>_quantizer``, e.g.
``layers.0.blocks.1.mlp.fc2.output_quantizer``. Everything starts **disabled**; rules turn quantizers on.

Rules
-----
A rule is a mapping with these fields:

=============  ======================================================================================================
``match``      glob (``fnmatch``: ``*`` also crosses dots) on timm module paths, e.g. ``layers.*.blocks.*.mlp.fc2``.
               It selects the quantizable modules whose path matches, or that lie under a matching path
               (``match: layers.2`` covers every GEMM of stage 3).
``type``       optional: ``Linear``, ``Conv2d`` or ``LayerNorm``; only modules of that class are selected.
``input``,     settings of that quantizer: ``enable`` (bool), ``bits`` (``8`` or ``e4m3``), ``axis`` (``weight`` only:
``weight``,    ``0`` = per output channel, ``null`` = per tensor; activations are always per tensor, as TensorRT
``output``     requires), ``calibrator`` (activations only, see below).
``enable``     shorthand: ``false`` turns the whole module floating point (input, weight and output off); ``true``
               turns its input and weight on (outputs are only ever turned on explicitly).
``bits``       shorthand: the bits of all three quantizers.
``calibrator`` shorthand: the calibrator of the input and output quantizers.
=============  ======================================================================================================

Calibrators: ``max``, ``percentile`` (uses ``--percentile``, default 99.99), ``percentile-99.9``,
``percentile-99.99``, ``percentile-99.999``, ``entropy``, ``mse``. Weights are always calibrated with ``max`` (per
channel when ``axis: 0``), as pytorch-quantization and ModelOpt do.

Precedence: the recipe's rules in order (an ``extends:`` parent's first), then the rules file, then the ``--rule``
flags in command-line order; **later rules win, field by field** (a later ``output: {enable: false}`` leaves the
bits set by an earlier rule alone).

Validation refuses a rule that sets nothing, a rule whose ``match`` selects no quantizable module (the error lists
the closest module paths), unknown keys, bits other than 8 / e4m3, and a per-channel axis on an activation.

``--rule`` flags
----------------
``--rule 'PATTERN: key=value[, key=value ...]'`` with the keys above in dotted form, e.g.
``--rule 'layers.*.downsample.reduction: output.enable=false'``, ``--rule 'head: enable=false'``,
``--rule '*.fc2: calibrator=mse, weight.axis=none'``, ``--rule 'layers.0.*: type=Linear, bits=e4m3'``.

Worked examples
---------------
Keep the classifier head and the first stage floating point, on top of a recipe::

    rules:
      - match: head
        enable: false
      - match: "layers.0.*"
        enable: false

Calibrate the MLP inputs with MSE and give FC2 a per-tensor weight scale::

    rules:
      - match: "layers.*.blocks.*.mlp.fc*"
        input: {calibrator: mse}
      - match: "layers.*.blocks.*.mlp.fc2"
        weight: {axis: null}

Compilation
-----------
Rules are resolved against the model into one complete setting per quantizer (`QuantPlan.quantizers`), then
written as a ModelOpt list-form ``quant_cfg``: deny-all first, then one entry with a complete ``cfg`` per enabled
quantizer. Exclusions are what the deny-all leaves off. Per-quantizer entries are needed because a ModelOpt
entry's ``cfg`` replaces all attributes, whereas rules here merge field by field.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from torch import nn

ROLES = ("input", "weight", "output")
CALIBRATOR_METHODS = ("max", "percentile", "entropy", "mse")
PERCENTILES = (99.9, 99.99, 99.999)
DEFAULT_PERCENTILE = 99.99
BITS = (8, "e4m3")
MODULE_TYPES: dict[str, type[nn.Module]] = {"Linear": nn.Linear, "Conv2d": nn.Conv2d, "LayerNorm": nn.LayerNorm}
_ROLES_OF = {nn.Linear: ROLES, nn.Conv2d: ROLES, nn.LayerNorm: ("input", "output")}
RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


class RuleError(ValueError):
    """A rule, rule file or recipe that cannot be used; the message names it and says how to fix it."""


_UNSET: Any = object()  # "this rule does not set the field" (None is a real value for axis)


@dataclass(frozen=True)
class Calibrator:
    """An activation calibrator: `method` in CALIBRATOR_METHODS; `percentile` only for method "percentile"."""

    method: str = "max"
    percentile: float | None = None

    @classmethod
    def parse(cls, text: "str | Calibrator", default_percentile: float = DEFAULT_PERCENTILE) -> "Calibrator":
        if isinstance(text, Calibrator):
            return text
        t = str(text).strip().lower()
        if t.startswith("percentile"):
            rest = t[len("percentile"):].lstrip("-:=")
            try:
                p = float(rest) if rest else float(default_percentile)
            except ValueError:
                p = -1.0
            if p not in PERCENTILES:
                raise RuleError(f"calibrator '{text}': percentile must be one of {', '.join(map(str, PERCENTILES))}")
            return cls("percentile", p)
        if t not in CALIBRATOR_METHODS:
            close = difflib.get_close_matches(t, CALIBRATOR_METHODS, n=2)
            raise RuleError(f"unknown calibrator '{text}': expected one of {', '.join(CALIBRATOR_METHODS)}"
                            + (f" (did you mean {close[0]}?)" if close else ""))
        return cls(t, None)

    @property
    def uses_histogram(self) -> bool:
        return self.method != "max"

    def __str__(self) -> str:
        return f"percentile-{self.percentile:g}" if self.method == "percentile" else self.method


def _parse_bits(v: Any, where: str) -> int | str:
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("fp8", "e4m3"):
            return "e4m3"
        if s.isdigit():
            v = int(s)
    if isinstance(v, bool) or v not in BITS:
        raise RuleError(f"{where}: bits={v!r} is not supported; use 8 (INT8) or e4m3 (FP8)")
    return v


def _parse_bool(v: Any, where: str) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "yes", "on"):
        return True
    if s in ("false", "0", "no", "off"):
        return False
    raise RuleError(f"{where}: enable={v!r} is not a boolean (true / false)")


def _parse_axis(v: Any, where: str) -> int | None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "null", "")):
        return None
    try:
        a = int(v)
    except (TypeError, ValueError):
        a = -1
    if a != 0:
        raise RuleError(f"{where}: axis={v!r}; use 0 (per output channel) or none (per tensor)")
    return 0


@dataclass(frozen=True)
class QuantizerSettings:
    """What one rule sets on one quantizer role; fields left `_UNSET` are not touched by the rule."""

    enable: Any = _UNSET
    bits: Any = _UNSET
    axis: Any = _UNSET
    calibrator: Any = _UNSET

    @classmethod
    def from_dict(cls, d: Any, role: str, where: str) -> "QuantizerSettings":
        if not isinstance(d, dict):
            raise RuleError(f"{where}: '{role}' must be a mapping such as {{enable: true, bits: 8}}, got {d!r}")
        unknown = set(d) - {"enable", "bits", "axis", "calibrator"}
        if unknown:
            raise RuleError(f"{where}: unknown key(s) {sorted(unknown)} in '{role}'; allowed: enable, bits, axis, calibrator")
        s = cls()
        if "enable" in d:
            s = replace(s, enable=_parse_bool(d["enable"], where))
        if "bits" in d:
            s = replace(s, bits=_parse_bits(d["bits"], where))
        if "axis" in d:
            axis = _parse_axis(d["axis"], where)
            if role != "weight" and axis is not None:
                raise RuleError(f"{where}: '{role}' is an activation; activations are per tensor (axis: null), "
                                "only weights may be per channel")
            s = replace(s, axis=axis)
        if "calibrator" in d:
            if role == "weight":
                raise RuleError(f"{where}: weights are always calibrated with max; set 'calibrator' on input/output")
            s = replace(s, calibrator=Calibrator.parse(d["calibrator"]))
        return s

    def merged(self, other: "QuantizerSettings") -> "QuantizerSettings":
        """`self` overridden field by field by what `other` sets."""
        return QuantizerSettings(**{k: (getattr(other, k) if getattr(other, k) is not _UNSET else getattr(self, k))
                                    for k in ("enable", "bits", "axis", "calibrator")})

    def is_empty(self) -> bool:
        return all(getattr(self, k) is _UNSET for k in ("enable", "bits", "axis", "calibrator"))

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for k in ("enable", "bits", "axis", "calibrator"):
            v = getattr(self, k)
            if v is not _UNSET:
                out[k] = str(v) if isinstance(v, Calibrator) else v
        return out


@dataclass(frozen=True)
class Rule:
    """One ordered rule: modules selected by `match` (and `type`) get the per-role settings."""

    match: str
    type: str | None = None
    input: QuantizerSettings = field(default_factory=QuantizerSettings)
    weight: QuantizerSettings = field(default_factory=QuantizerSettings)
    output: QuantizerSettings = field(default_factory=QuantizerSettings)
    source: str = ""  # where the rule came from, for error messages

    @classmethod
    def from_dict(cls, d: Any, source: str) -> "Rule":
        if not isinstance(d, dict) or "match" not in d:
            raise RuleError(f"{source}: a rule must be a mapping with a 'match' glob, got {d!r}")
        where = f"{source} (match '{d['match']}')"
        unknown = set(d) - {"match", "type", "enable", "bits", "calibrator", *ROLES}
        if unknown:
            raise RuleError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: match, type, enable, bits, "
                            "calibrator, input, weight, output")
        match = d["match"]
        if not isinstance(match, str) or not match.strip():
            raise RuleError(f"{source}: 'match' must be a non-empty glob string, got {match!r}")
        typ = d.get("type")
        if typ is not None and typ not in MODULE_TYPES:
            raise RuleError(f"{where}: type={typ!r}; expected one of {', '.join(MODULE_TYPES)}")
        roles = {r: QuantizerSettings.from_dict(d[r], r, where) if r in d else QuantizerSettings() for r in ROLES}
        # Shorthands apply first, so an explicit per-role value in the same rule wins.
        short = {r: QuantizerSettings() for r in ROLES}
        if "enable" in d:
            en = _parse_bool(d["enable"], where)
            for r in (ROLES if not en else ("input", "weight")):
                short[r] = replace(short[r], enable=en)
        if "bits" in d:
            b = _parse_bits(d["bits"], where)
            for r in ROLES:
                short[r] = replace(short[r], bits=b)
        if "calibrator" in d:
            c = Calibrator.parse(d["calibrator"])
            for r in ("input", "output"):
                short[r] = replace(short[r], calibrator=c)
        rule = cls(match.strip(), typ, *(short[r].merged(roles[r]) for r in ROLES), source=source)
        if all(getattr(rule, r).is_empty() for r in ROLES):
            raise RuleError(f"{where}: the rule sets nothing; give enable, bits, calibrator or input/weight/output settings")
        return rule

    @classmethod
    def parse_flag(cls, text: str) -> "Rule":
        """`'PATTERN: key=value, key=value'` (a --rule flag) -> Rule. Dotted keys address a role: output.enable=false."""
        src = f"--rule '{text}'"
        pattern, sep, body = text.rpartition(":")
        if not sep or not pattern.strip() or not body.strip():
            raise RuleError(f"{src}: expected 'PATTERN: key=value[, key=value]', e.g. '*.mlp.fc2: output.enable=false'")
        d: dict[str, Any] = {"match": pattern.strip()}
        for item in body.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key:
                raise RuleError(f"{src}: '{item.strip()}' is not key=value")
            if value.lower() in ("none", "null"):
                value = None
            if "." in key:
                role, _, sub = key.partition(".")
                if role not in ROLES:
                    raise RuleError(f"{src}: '{key}': the part before the dot must be one of {', '.join(ROLES)}")
                d.setdefault(role, {})[sub] = value
            elif key == "axis":  # the only per-channel axis is the weight's
                d.setdefault("weight", {})["axis"] = value
            else:
                d[key] = value
        return cls.from_dict(d, src)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"match": self.match}
        if self.type:
            out["type"] = self.type
        for r in ROLES:
            s = getattr(self, r).to_dict()
            if s:
                out[r] = s
        return out

    def selects(self, path: str, module: nn.Module) -> bool:
        if self.type is not None and not isinstance(module, MODULE_TYPES[self.type]):
            return False
        return fnmatch.fnmatchcase(path, self.match) or fnmatch.fnmatchcase(path, self.match + ".*")


def _read_yaml(path: Path, what: str) -> Any:
    import yaml

    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RuleError(f"{what} {path} is not valid YAML: {e}") from e


def rules_from_list(items: Any, source: str) -> list[Rule]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise RuleError(f"{source}: 'rules' must be a list of rules, got {type(items).__name__}")
    return [Rule.from_dict(d, f"{source} rule {i + 1}") for i, d in enumerate(items)]


def load_rules_file(path: str | Path) -> list[Rule]:
    """Rules from a YAML file: either a list of rules, or a mapping with a `rules:` list."""
    path = Path(path)
    doc = _read_yaml(path, "rule file")
    if isinstance(doc, dict):
        unknown = set(doc) - {"rules"}
        if unknown:
            raise RuleError(f"rule file {path}: unknown top-level key(s) {sorted(unknown)}; expected 'rules:'")
        doc = doc.get("rules")
    if not doc:
        raise RuleError(f"rule file {path} holds no rules")
    return rules_from_list(doc, f"rule file {path}")


@dataclass(frozen=True)
class Recipe:
    """A named, ordered rule list with a default activation calibrator (see quant/recipes/*.yaml)."""

    name: str
    description: str
    calibrator: Calibrator
    rules: tuple[Rule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "calibrator": str(self.calibrator),
                "rules": [r.to_dict() for r in self.rules]}


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> Recipe:
    """A built-in recipe by name (`int8`, `int8-fc2-pm-int32`, `fp8`) or a recipe YAML file; resolves `extends:`."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        path, name = p, p.stem
    else:
        name, path = str(name_or_path), RECIPE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            close = difflib.get_close_matches(name, available_recipes(), n=3, cutoff=0.3)
            raise RuleError(f"unknown recipe '{name}': built-in recipes are {', '.join(available_recipes())}"
                            + (f" (did you mean {close[0]}?)" if close else "") + "; or pass a recipe .yaml file")
    if name in _seen:
        raise RuleError(f"recipe '{name}' extends itself (chain: {' -> '.join(_seen + (name,))})")
    doc = _read_yaml(path, "recipe")
    if not isinstance(doc, dict):
        raise RuleError(f"recipe {path}: expected a mapping with 'rules:' (and optionally extends, calibrator)")
    unknown = set(doc) - {"extends", "calibrator", "rules", "description"}
    if unknown:
        raise RuleError(f"recipe {path}: unknown key(s) {sorted(unknown)}; allowed: extends, calibrator, rules, description")
    parent = load_recipe(doc["extends"], _seen + (name,)) if doc.get("extends") else None
    first_line = path.read_text().splitlines()[0].lstrip("# ").strip() if path.read_text() else name
    calibrator = (Calibrator.parse(doc["calibrator"]) if "calibrator" in doc
                  else parent.calibrator if parent else Calibrator("max"))
    rules = (parent.rules if parent else ()) + tuple(rules_from_list(doc.get("rules"), f"recipe {name}"))
    if not rules:
        raise RuleError(f"recipe {path} has no rules")
    return Recipe(name, doc.get("description", first_line), calibrator, rules)


@dataclass(frozen=True)
class QuantizerSpec:
    """The resolved setting of one quantizer, as inserted and calibrated."""

    name: str          # "<module path>.<role>_quantizer"
    module: str
    role: str
    module_type: str   # Linear / Conv2d / LayerNorm
    enabled: bool
    bits: int | str    # 8 or "e4m3"
    axis: int | None   # weight: 0 per output channel / None per tensor; activations: None
    calibrator: Calibrator

    def modelopt_cfg(self) -> dict[str, Any]:
        return {"num_bits": (4, 3) if self.bits == "e4m3" else self.bits, "axis": self.axis,
                "calibrator": "histogram" if self.calibrator.uses_histogram else "max"}

    def describe(self) -> str:
        if not self.enabled:
            return "-"
        fmt = "fp8" if self.bits == "e4m3" else f"int{self.bits}"
        gran = "per-channel" if self.axis is not None else "per-tensor"
        return f"{fmt} {gran} {self.calibrator}"

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "role": self.role, "type": self.module_type, "enabled": self.enabled,
                "bits": self.bits, "axis": self.axis, "calibrator": str(self.calibrator)}


def quantizable_modules(model: nn.Module) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
    """(path, module, roles) of every module ModelOpt quantizes, in model order (works on float or quantized)."""
    out = []
    for path, m in model.named_modules():
        for cls, roles in _ROLES_OF.items():
            if isinstance(m, cls):
                out.append((path, m, roles))
                break
    return out


@dataclass
class QuantPlan:
    """Rules resolved against one model: a complete setting for each of its quantizers."""

    recipe: str
    calibrator: Calibrator
    rules: list[Rule]
    quantizers: dict[str, QuantizerSpec]

    @property
    def enabled(self) -> dict[str, QuantizerSpec]:
        return {k: q for k, q in self.quantizers.items() if q.enabled}

    @property
    def quant_cfg(self) -> list[dict[str, Any]]:
        """ModelOpt list-form quant_cfg: deny-all, then one complete entry per enabled quantizer."""
        return [{"quantizer_name": "*", "enable": False}] + [
            {"quantizer_name": q.name, "cfg": q.modelopt_cfg(), "enable": True} for q in self.enabled.values()]

    def summary_rows(self) -> list[dict[str, str]]:
        """One row per quantizable module: what its input, weight and output quantizers do."""
        rows: dict[str, dict[str, str]] = {}
        for q in self.quantizers.values():
            row = rows.setdefault(q.module, {"module": q.module, "type": q.module_type, "input": "-", "weight": "-",
                                             "output": "-"})
            row[q.role] = q.describe()
        return list(rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "calibrator": str(self.calibrator), "rules": [r.to_dict() for r in self.rules],
                "quantizers": {k: q.to_dict() for k, q in self.quantizers.items()}}


def _close_paths(pattern: str, paths: list[str]) -> list[str]:
    plain = pattern.replace("*", "").replace("?", "")
    return difflib.get_close_matches(plain, paths, n=5, cutoff=0.3) or difflib.get_close_matches(pattern, paths, n=5, cutoff=0.0)


def compile_plan(model: nn.Module, recipe: Recipe | str, rules: Iterable[Rule] = (),
                 calibrator: Calibrator | str | None = None, percentile: float | None = None) -> QuantPlan:
    """Resolve `recipe` + `rules` (in that order, later wins) on `model` into a QuantPlan.

    Args:
        model: a float (or already quantized) timm Swin; only module paths and classes are read.
        recipe: a Recipe or a recipe name / YAML path.
        rules: user rules applied after the recipe's.
        calibrator: the default activation calibrator (overrides the recipe's); per-rule calibrators still win.
        percentile: the percentile of a bare `percentile` calibrator (default: the recipe's, else 99.99).
    Raises:
        RuleError: a rule selects no quantizable module (with close matches), or an invalid combination.
    """
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    default = recipe.calibrator
    if calibrator is not None:
        default = Calibrator.parse(calibrator, percentile or default.percentile or DEFAULT_PERCENTILE)
    elif percentile is not None and default.method == "percentile":
        default = Calibrator.parse(f"percentile-{percentile}")
    all_rules = list(recipe.rules) + list(rules)
    mods = quantizable_modules(model)
    paths = [p for p, _, _ in mods]
    state: dict[tuple[str, str], QuantizerSettings] = {}
    for rule in all_rules:
        hit = False
        for path, m, roles in mods:
            if not rule.selects(path, m):
                continue
            hit = True
            for role in roles:
                s = getattr(rule, role)
                if not s.is_empty():
                    state[(path, role)] = state.get((path, role), QuantizerSettings()).merged(s)
        if not hit:
            close = _close_paths(rule.match, paths)
            raise RuleError(f"{rule.source or 'rule'}: match '{rule.match}'"
                            + (f" with type {rule.type}" if rule.type else "")
                            + " selects no quantizable module (Linear, Conv2d, LayerNorm) of this model."
                            + (f" Close module paths: {', '.join(close)}" if close else ""))
    quantizers: dict[str, QuantizerSpec] = {}
    for path, m, roles in mods:
        for role in roles:
            s = state.get((path, role), QuantizerSettings())
            enabled = s.enable if s.enable is not _UNSET else False
            bits = s.bits if s.bits is not _UNSET else 8
            axis = s.axis if s.axis is not _UNSET else (0 if role == "weight" else None)
            calib = Calibrator("max") if role == "weight" else (s.calibrator if s.calibrator is not _UNSET else default)
            if calib.method == "percentile" and calib.percentile is None:
                calib = Calibrator("percentile", percentile or DEFAULT_PERCENTILE)
            if role == "weight" and axis is not None and isinstance(m, nn.LayerNorm):
                axis = None
            name = f"{path}.{role}_quantizer" if path else f"{role}_quantizer"
            quantizers[name] = QuantizerSpec(name, path, role, type(m).__name__, bool(enabled), bits, axis, calib)
    return QuantPlan(recipe.name, default, all_rules, quantizers)


def keep_fp_rules(modules: Iterable[str], source: str = "--keep-fp") -> list[Rule]:
    """Rules that keep whole modules floating point (used by the sensitivity report's --keep-fp N)."""
    return [Rule(m, None, *(QuantizerSettings(enable=False),) * 3, source=source) for m in modules]


def enabled_counts(plan: QuantPlan) -> dict[str, int]:
    """Counts of enabled quantizers by role (for the printed summary)."""
    counts = {r: 0 for r in ROLES}
    for q in plan.enabled.values():
        counts[q.role] += 1
    return counts


__all__ = ["Calibrator", "QuantizerSettings", "Rule", "Recipe", "QuantizerSpec", "QuantPlan", "RuleError",
           "compile_plan", "load_recipe", "load_rules_file", "available_recipes", "keep_fp_rules",
           "quantizable_modules", "enabled_counts", "CALIBRATOR_METHODS", "PERCENTILES", "ROLES"]
