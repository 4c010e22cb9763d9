"""The second study's published numbers (``data/lightweight_cnns.yaml``) and ours beside them.

The study compared MobileNet and ShuffleNet trained from scratch on CIFAR-10
(accuracy, recall, F1) and ImageNet (top-1, top-5), and ablated each
architecture's signature element on CIFAR-10: MobileNet with standard instead
of depthwise-separable convolutions, ShuffleNet without the channel shuffle.

A row applies to an experiment of the same architecture, trained from scratch
(ShuffleNetV2 always; MobileNetV2 with ``weights: none``), whose ablation
option has the row's value, on the row's dataset, or on a stand-in that names
the row's dataset as ``study_dataset`` (Fashion-MNIST at 32x32x3 for CIFAR-10):
a stand-in's numbers are set beside the study's and labelled as such, never
passed off as the study's dataset.

Three kinds of record come out of :func:`compare`, one CSV:

* ``score``: the study's score and ours (float32 variant, test split), and
  the difference in percentage points.  The study's recall and F1 are read as
  macro means over the classes (:func:`mobopt.evaluate.class_scores`);
* ``ablation drop``: the full model's accuracy minus the ablation's, theirs
  and ours (our ablation against our full model of the same architecture,
  dataset and other options), with the paper comparison's verdict words
  (:func:`mobopt.report.paper.verdict`, 1 pp as "no change" and as tolerance);
* ``cost``: what the study never measured: size, p50 and p95 latency of every
  variant on every device.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mobopt.common.atomic import write_text
from mobopt.report import paper

DATA = Path(__file__).parent / "data" / "lightweight_cnns.yaml"
#: The ablation options' values when an experiment does not set them (the config schema's defaults; a test checks).
OPTION_DEFAULTS = {"depthwise_separable": True, "channel_shuffle": True}
#: A drop within this many percentage points counts as no drop, and ours within it of the study's as reproduced.
DROP_PP = paper.ACCURACY_FLAT_PP
#: Score key in the YAML -> (what the tables call it, the key of our evaluation JSON).
SCORES = {"accuracy": ("accuracy", "accuracy"), "recall": ("macro recall", "macro_recall"),
          "f1": ("macro F1", "macro_f1"), "top1": ("top-1", "accuracy"), "top5": ("top-5", "top5_accuracy")}
#: Dataset registry name -> how the notes name it.
DATASET_NAMES = {"cifar10": "CIFAR-10", "imagenet": "ImageNet", "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST",
                 "imagenet_subset": "Imagenette", "asl_alphabet": "ASL Alphabet"}
COLUMNS = ["kind", "experiment", "model", "study_row", "dataset", "study_dataset", "stand_in", "variant", "device",
           "metric", "unit", "theirs", "ours", "difference", "full_experiment", "theirs_full", "theirs_ablated",
           "ours_full", "ours_ablated", "verdict", "note"]


@cache
def published() -> dict[str, Any]:
    return yaml.safe_load(DATA.read_text())


def rows() -> list[dict[str, Any]]:
    return published()["rows"]


def row_by_id(row_id: str) -> dict[str, Any]:
    return next(r for r in rows() if r["id"] == row_id)


def from_scratch(model: dict[str, Any]) -> bool:
    """Whether the architecture is trained from random weights, as the study trained both."""
    if model.get("name") == "shufflenetv2":
        return True
    return model.get("name") == "mobilenetv2" and model.get("weights", "imagenet") in (None, "none")


def match(model: dict[str, Any], dataset: str, study_dataset: str | None = None) -> dict[str, Any] | None:
    """The study's row for an experiment's model options and dataset (``study_dataset`` when it stands in), or None."""
    if not from_scratch(model):
        return None
    target = study_dataset or dataset
    for r in rows():
        if r["model"] != model["name"] or r["dataset"] != target:
            continue
        if all(model.get(k, OPTION_DEFAULTS[k]) == v for k, v in r["options"].items()):
            return r
    return None


def matches_experiment(exp: dict[str, Any]) -> bool:
    """Whether an experiment's config block (schema defaults set or not) has a row in the study."""
    return match(exp["model"], exp["dataset"], exp.get("study_dataset")) is not None


def cost_ratio(kernel: int, c_in: int, c_out: int) -> float:
    """Multiply-accumulates of a standard KxK convolution over a depthwise-separable one, per output pixel."""
    return (c_in * c_out * kernel * kernel) / (c_in * kernel * kernel + c_in * c_out)


def stand_in_note(dataset: str, study_dataset: str, input_shape: str | None) -> str:
    """The note a table gives when our dataset stands in for the study's."""
    name = DATASET_NAMES.get(dataset, dataset)
    if dataset == "fashion_mnist" and input_shape and not input_shape.startswith("28x28"):
        ours = f"{name} padded to {input_shape}"
    else:
        ours = f"{name} at {input_shape}" if input_shape else name
    theirs = DATASET_NAMES.get(study_dataset, study_dataset)
    return f"ours: {ours}, a stand-in for {theirs}; {theirs} numbers come from users' runs"


def _pct(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) * 100


def _without(options: dict[str, Any], keys) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in keys and k != "name"}


def _ablation_keys(model_name: str) -> set[str]:
    return {k for r in rows() if r["model"] == model_name for k in r["options"]}


def compare(experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Study vs ours.  Each experiment: ``{experiment, label, model (options, with name), dataset, study_dataset,
    input_shape, eval (the float32 variant's test evaluation, a dict, or None), cost: [{variant, device, size_bytes,
    p50_ms, p95_ms, accuracy, status}]}``; only experiments :func:`match` finds a row for are compared."""
    out: list[dict[str, Any]] = []
    matched = []
    for e in experiments:
        r = match(e["model"], e["dataset"], e.get("study_dataset"))
        if r is not None:
            matched.append((e, r))
    for e, r in matched:
        study_ds = e.get("study_dataset") or e["dataset"]
        base = {"experiment": e["experiment"], "model": e.get("label", e["experiment"]), "study_row": r["row"],
                "dataset": e["dataset"], "study_dataset": study_ds,
                "stand_in": stand_in_note(e["dataset"], study_ds, e.get("input_shape")) if study_ds != e["dataset"]
                else None}
        ev = e.get("eval") or {}
        supported = ev.get("supported", True) is not False
        for key, theirs in r["scores"].items():
            label, field = SCORES[key]
            ours = _pct(ev.get(field)) if supported else None
            out.append({**base, "kind": "score", "variant": "float32", "metric": label, "unit": "%", "theirs": theirs,
                        "ours": ours, "difference": None if ours is None else ours - theirs,
                        "note": None if supported else "not supported: " + str(ev.get("reason"))})
        if "full" in r:
            out.append({**base, **_drop(e, r, matched)})
        for c in e.get("cost", []):
            for metric, unit, value in (("size", "MB", None if c.get("size_bytes") is None else c["size_bytes"] / 1e6),
                                        ("p50 latency", "ms", c.get("p50_ms")), ("p95 latency", "ms", c.get("p95_ms"))):
                out.append({**base, "kind": "cost", "variant": c["variant"], "device": c.get("device"),
                            "metric": metric, "unit": unit, "ours": value,
                            "note": None if c.get("status", "ok") == "ok" else c.get("status")})
    return out


def _drop(e: dict[str, Any], r: dict[str, Any], matched: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The ablation's drop against its full model: theirs from the study, ours from our full model of the same
    architecture and dataset whose other options are the same (width, stem, ...)."""
    full_row = row_by_id(r["full"])
    theirs_full, theirs_ablated = full_row["scores"]["accuracy"], r["scores"]["accuracy"]
    keys = _ablation_keys(e["model"]["name"])
    full = next((f for f, fr in matched if fr["id"] == full_row["id"] and f["dataset"] == e["dataset"]
                 and _without(f["model"], keys) == _without(e["model"], keys)), None)
    ours_ablated = _pct((e.get("eval") or {}).get("accuracy"))
    ours_full = _pct((full.get("eval") or {}).get("accuracy")) if full else None
    theirs_drop = theirs_full - theirs_ablated
    ours_drop = ours_full - ours_ablated if ours_full is not None and ours_ablated is not None else None
    note = None if full else (f"no {full_row['row'].split(',')[0]} experiment with the same options on "
                              f"{DATASET_NAMES.get(e['dataset'], e['dataset'])} in this config to measure the drop against")
    return {"kind": "ablation drop", "variant": "float32", "metric": "accuracy drop", "unit": "pp", "theirs": theirs_drop,
            "ours": ours_drop, "difference": None if ours_drop is None else ours_drop - theirs_drop,
            "full_experiment": full["experiment"] if full else None, "theirs_full": theirs_full,
            "theirs_ablated": theirs_ablated, "ours_full": ours_full, "ours_ablated": ours_ablated,
            "verdict": paper.verdict(ours_drop, theirs_drop, flat=DROP_PP, tolerance=DROP_PP), "note": note}


def legend() -> str:
    recipe = published()["recipe"]["text"]
    return (f"Scores in % on the test split, ours of the float32 model; difference = ours - theirs in percentage "
            f"points. Macro recall and F1 are unweighted means over the classes; on a test split with as many images "
            f"of every class (CIFAR-10's and Fashion-MNIST's: 1,000 each) macro recall equals accuracy. Ablation drop: "
            f"the full model's accuracy minus the ablation's, in pp. reproduced: a drop of the same sign within "
            f"{DROP_PP:g} pp of the study's; reproduced (stronger) / (weaker): larger / smaller than the study's by "
            f"more than that; no change: ours is under {DROP_PP:g} pp; reversed: the ablation helped. The study "
            f"trained with {recipe}. Size and latency are ours only: the study did not measure them. "
            f"See src/mobopt/report/study.py.")


def _fmt(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if unit in ("%", "pp"):
        return f"{value:.1f}"
    return f"{value:.3g}" if unit == "MB" else f"{value:.4g}"


def _diff(value) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.1f} pp"


def _ours_on(r: dict[str, Any]) -> str:
    """Our dataset, marked when it stands in for the study's (the note under the table says what it is)."""
    name = DATASET_NAMES.get(r["dataset"], r["dataset"])
    return f"{name} (stand-in)" if isinstance(r.get("stand_in"), str) else name


def to_markdown(df: pd.DataFrame) -> str:
    recs = df.to_dict("records")
    parts = [f"Second study: {published()['citation']}.\n"]
    scores = [r for r in recs if r["kind"] == "score"]
    if scores:
        parts.append("### Scores (float32, test split)\n\n" + pd.DataFrame({
            "model": [r["model"] for r in scores], "study row": [r["study_row"] for r in scores],
            "ours on": [_ours_on(r) for r in scores], "metric": [r["metric"] for r in scores],
            "theirs %": [_fmt(r["theirs"], "%") for r in scores],
            "ours %": [_fmt(r["ours"], "%") for r in scores], "difference": [_diff(r["difference"]) for r in scores],
        }).to_markdown(index=False, disable_numparse=True) + "\n")
    drops = [r for r in recs if r["kind"] == "ablation drop"]
    if drops:
        parts.append("### Ablations: accuracy drop against the full model\n\n" + pd.DataFrame({
            "model": [r["model"] for r in drops], "study row": [r["study_row"] for r in drops],
            "ours on": [_ours_on(r) for r in drops],
            "full model (ours)": [r["full_experiment"] if isinstance(r["full_experiment"], str) else "--" for r in drops],
            "theirs": [f"{_fmt(r['theirs_full'], '%')} -> {_fmt(r['theirs_ablated'], '%')}: {_fmt(r['theirs'], 'pp')} pp"
                       for r in drops],
            "ours": [f"{_fmt(r['ours_full'], '%')} -> {_fmt(r['ours_ablated'], '%')}: {_fmt(r['ours'], 'pp')} pp"
                     for r in drops],
            "verdict": [r["verdict"] for r in drops],
        }).to_markdown(index=False, disable_numparse=True) + "\n")
    cost = [r for r in recs if r["kind"] == "cost"]
    if cost:
        wide = pd.DataFrame(cost).pivot_table(index=["model", "variant", "device"], columns="metric", values="ours",
                                              aggfunc="first", sort=False, dropna=False).reset_index()
        shown = pd.DataFrame({"model": wide["model"], "variant": wide["variant"], "device": wide["device"],
                              **{f"{m} ({u})": [_fmt(v, u) for v in wide.get(m, [None] * len(wide))]
                                 for m, u in (("size", "MB"), ("p50 latency", "ms"), ("p95 latency", "ms"))}})
        parts.append("### What the study did not measure: size and latency (ours)\n\n"
                     + shown.to_markdown(index=False, disable_numparse=True) + "\n")
    if not recs:
        parts.append("No experiment of this config matches a row of the study.\n")
    notes = sorted({r["stand_in"] for r in recs if isinstance(r.get("stand_in"), str)})
    notes += sorted({f"{r['model']}: {r['note']}" for r in recs if isinstance(r.get("note"), str)})
    parts.append("\n\n".join([*notes, legend()]) + "\n")
    return "\n".join(parts)


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def experiments_from_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Read the result files the entries name (one entry per experiment and variant, as the plan's
    ``study_entries``: eval, tflite_info and a benchmark JSON per device) into :func:`compare`'s input."""
    out: dict[str, dict[str, Any]] = {}
    for en in entries:
        e = out.setdefault(en["experiment"], {
            "experiment": en["experiment"], "label": en.get("label", en["experiment"]), "model": en["model"],
            "dataset": en["dataset"], "study_dataset": en.get("study_dataset"), "input_shape": en.get("input_shape"),
            "eval": None, "cost": []})
        ev = _load(en["eval"])
        info = _load(en["tflite_info"])
        if en["variant"] == "float32":
            e["eval"] = ev
        for device, bench_path in en.get("bench", {}).items():
            if info.get("supported") is False:
                e["cost"].append({"variant": en["variant"], "device": device, "status": "not supported"})
                continue
            bench = _load(bench_path)
            e["cost"].append({"variant": en["variant"], "device": device, "size_bytes": info.get("size_bytes"),
                              "p50_ms": bench.get("p50_ms"), "p95_ms": bench.get("p95_ms"),
                              "status": bench.get("status", "ok")})
    return list(out.values())


def table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(compare(experiments_from_entries(entries)), columns=COLUMNS)


def write(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = table(entries)
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, to_markdown(df))
    return df
