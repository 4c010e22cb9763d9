"""The paper's published numbers and the verdict rule that compares ours with them."""

import pandas as pd
import pytest

from mobopt.report import paper
from mobopt.report.plots import pareto_front


def test_published_table2_is_complete_and_unambiguous():
    rows = paper.published()["table2"]
    assert len(rows) == 6
    keys = [(r["model"], r["dataset"], r["variant"]) for r in rows]
    assert len(set(keys)) == 6
    for r in rows:
        assert r["p10_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p95_ms"], r["row"]
        assert r["ram_mb"][0] <= r["ram_mb"][1] and r["size"]["mb"] > 0
    vit, vit_q = paper.row("vit", "mnist", "float32"), paper.row("vit", "mnist", "int8")
    assert vit_q["size"]["mb"] / vit["size"]["mb"] - 1 == pytest.approx(-0.743, abs=1e-3)  # the paper's "-74 %"
    assert paper.row("vit", "mnist", "graph_opt_int8")["p95_ms"] == 9 and paper.row("vit", "cifar10", "int8") is None


@pytest.mark.parametrize("ours, theirs, significant, expected", [
    (-0.72, -0.74, True, "reproduced"),
    (-0.51, -0.74, True, "reproduced (weaker)"),   # the paper's direction, a smaller gain
    (-0.60, -0.44, True, "reproduced (stronger)"),  # the paper's direction, a larger gain
    (2.53, -0.58, True, "reversed"),
    (-0.38, 0.30, True, "reversed"),
    (0.20, -0.30, False, "no change"),         # not significant: within noise where the paper saw a change
    (0.02, -0.30, True, "no change"),          # under 3 %: no change
    (0.01, 0.02, True, "reproduced"),          # both unchanged
    (0.25, 0.01, True, "not reproduced"),      # a change where the paper saw none
    (None, -0.3, True, "not measured"),
    (-0.3, None, True, "no paper figure"),
])
def test_verdict(ours, theirs, significant, expected):
    assert paper.verdict(ours, theirs, significant=significant) == expected
    assert expected in paper.VERDICTS


def test_the_legend_names_every_verdict():
    text = paper.legend()
    for word in ("reproduced (stronger)", "(weaker)", "no change", "reversed", "not reproduced"):
        assert word in text


def test_an_experiment_can_be_set_beside_the_papers_rows_of_another_dataset():
    rows = [{**_row("float32", 3_500_000, 1.6, (1.58, 1.62), 0.90), "dataset": "fashion_mnist", "paper_dataset": "mnist"},
            {**_row("int8", 990_000, 3.9, (3.85, 3.95), 0.89), "dataset": "fashion_mnist", "paper_dataset": "mnist"}]
    out = {r["metric"]: r for r in paper.compare(rows)}
    assert out["size"]["paper_rows"] == "Quantized ViT + MNIST vs ViT + MNIST" and out["size"]["verdict"] == "reproduced"
    assert paper.compare([{**r, "paper_dataset": None} for r in rows])[0]["verdict"] == "no paper figure"


def _row(variant, size, p50, ci, accuracy):
    return {"experiment": "vit_mnist", "model": "ViT", "model_name": "vit", "dataset": "mnist", "device": "host_1t",
            "variant": variant, "status": "ok", "size_bytes": size, "p50_ms": p50, "p95_ms": p50 * 1.1,
            "p50_ci_low_ms": ci[0], "p50_ci_high_ms": ci[1], "p95_ci_low_ms": ci[0] * 1.1, "p95_ci_high_ms": ci[1] * 1.1,
            "load_ms": 10.0, "accuracy": accuracy}


def test_compare_against_float32_of_the_same_experiment():
    rows = [_row("float32", 3_500_000, 1.6, (1.58, 1.62), 0.985), _row("int8", 990_000, 3.9, (3.85, 3.95), 0.984)]
    out = {r["metric"]: r for r in paper.compare(rows)}
    assert set(out) == set(paper.METRICS)
    assert out["size"]["verdict"] == "reproduced" and out["size"]["ours_change"] == pytest.approx(0.99 / 3.5 - 1)
    assert out["p50"]["verdict"] == "reversed" and out["p50"]["significant"]
    assert out["p50"]["paper_change"] == pytest.approx(5 / 12 - 1)
    assert out["accuracy"]["unit"] == "pp" and out["accuracy"]["verdict"] == "reproduced"
    assert out["load"]["verdict"] == "reproduced"  # paper 932 -> 906 ms (-2.8 %) and ours: both under 3 %, unchanged
    # overlapping intervals: the same p50 change is not significant
    rows[1]["p50_ci_low_ms"] = 1.5
    assert {r["metric"]: r for r in paper.compare(rows)}["p50"]["verdict"] == "no change"


def test_pareto_front_keeps_only_undominated_variants():
    pts = pd.DataFrame({"variant": ["a", "b", "c", "d"], "p50_ms": [1.0, 2.0, 3.0, 1.5], "accuracy": [0.90, 0.95, 0.94, 0.89]})
    assert list(pareto_front(pts)["variant"]) == ["a", "b"]
