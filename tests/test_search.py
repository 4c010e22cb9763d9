"""The accuracy-gated search on synthetic measurements: the fastest candidate within the budget is chosen, a goal
nobody meets names the closest and still lists everyone, and the front is the non-dominated set."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mobopt.report import search

REF = {"ref_accuracy": 0.90, "ref_latency_ms": 1.0, "ref_size_bytes": 1000}


def _frame(rows):
    return pd.DataFrame([{"family": "vit", **REF, **r} for r in rows])


CANDIDATES = [
    {"experiment": "vit", "variant": "float32", "accuracy": 0.900, "latency_ms": 1.00, "size_bytes": 1000},
    {"experiment": "vit", "variant": "dynamic_int8", "accuracy": 0.898, "latency_ms": 0.48, "size_bytes": 300},
    {"experiment": "vit", "variant": "int8", "accuracy": 0.899, "latency_ms": 1.90, "size_bytes": 300},
    {"experiment": "vit_slim", "variant": "float32", "accuracy": 0.897, "latency_ms": 0.55, "size_bytes": 500},
    {"experiment": "vit_slim", "variant": "dynamic_int8", "accuracy": 0.890, "latency_ms": 0.30, "size_bytes": 150},
]


def test_the_fastest_within_the_budget_is_chosen():
    table = search.choose(_frame(CANDIDATES), {"accuracy_budget_pp": 0.3})
    chosen = table[table["choice"] == "chosen"]
    assert chosen[["experiment", "variant"]].values.tolist() == [["vit", "dynamic_int8"]]  # slim dynamic: 1.0 pp down
    assert table.loc[table["variant"] == "dynamic_int8", "drop_pp"].round(6).tolist() == [0.2, 1.0]
    wider = search.choose(_frame(CANDIDATES), {"accuracy_budget_pp": 1.0})
    assert wider.loc[wider["choice"] == "chosen", ["experiment", "variant"]].values.tolist() == [["vit_slim", "dynamic_int8"]]


def test_equal_speed_goes_to_the_more_accurate():
    rows = [CANDIDATES[0], {**CANDIDATES[1], "accuracy": 0.899}, {**CANDIDATES[1], "variant": "other", "accuracy": 0.8995}]
    table = search.choose(_frame(rows), {"accuracy_budget_pp": 0.3})
    assert table.loc[table["choice"] == "chosen", "variant"].tolist() == ["other"]


def test_a_goal_nobody_meets_names_the_closest_and_keeps_everyone():
    table = search.choose(_frame(CANDIDATES), {"accuracy_budget_pp": 0.3, "max_latency_ratio": 0.25})
    assert not table["meets_goal"].any() and len(table) == len(CANDIDATES)
    # shortfalls: vit dynamic 0 + (0.48-0.25)/0.25 = 0.92; slim dynamic (1.0-0.3)/0.3 + 0.05/0.25 = 2.53; slim float 3.2
    closest = table[table["choice"] == "closest"]
    assert closest[["experiment", "variant"]].values.tolist() == [["vit", "dynamic_int8"]]
    assert (table["choice"] == "chosen").sum() == 0


def test_a_latency_goal_that_is_met_filters_as_well():
    table = search.choose(_frame(CANDIDATES), {"accuracy_budget_pp": 1.0, "max_latency_ratio": 0.5})
    assert table.loc[table["meets_goal"], "variant"].tolist() == ["dynamic_int8", "dynamic_int8"]


def test_the_front_is_the_non_dominated_set():
    table = search.choose(_frame(CANDIDATES), {})
    on = table.loc[table["on_front"], ["experiment", "variant"]].values.tolist()
    # full int8 is slower than dynamic_int8 at the same size but 0.1 pp more accurate, and smaller than float32:
    # nothing beats it on all three, so it is on the front too
    assert ["vit", "float32"] in on and ["vit_slim", "dynamic_int8"] in on and ["vit", "dynamic_int8"] in on
    assert ["vit", "int8"] in on
    assert ["vit_slim", "float32"] not in on  # vit dynamic_int8 is more accurate, faster and smaller
    dominated = pd.DataFrame([{"accuracy": 0.9, "latency_ms": 1.0, "size_bytes": 10},
                              {"accuracy": 0.8, "latency_ms": 2.0, "size_bytes": 20}])
    assert search.pareto_mask(dominated) == [True, False]


def _write_entries(tmp_path, rows, family_of):
    entries = []
    for r in rows:
        stem = tmp_path / f"{r['experiment']}-{r['variant']}"
        bench = {"status": r.get("status", "ok"), "p50_ms": r["latency_ms"], "size_bytes": r["size_bytes"]}
        if "agrees" in r:  # an emulated CPU's output check
            bench["output_agreement"] = {"agrees": r["agrees"]}
        stem.with_suffix(".bench.json").write_text(json.dumps(bench))
        stem.with_suffix(".eval.json").write_text(json.dumps({"accuracy": r["accuracy"]}))
        entries.append({"experiment": r["experiment"], "variant": r["variant"], "family": family_of[r["experiment"]],
                        "bench": str(stem.with_suffix(".bench.json")), "eval": str(stem.with_suffix(".eval.json"))})
    return entries


def test_the_search_writes_every_family_and_names_what_it_left_out(tmp_path):
    rows = [*CANDIDATES, {"experiment": "cnn", "variant": "int8", "accuracy": 0.8, "latency_ms": 1, "size_bytes": 9},
            {"experiment": "vit", "variant": "int16x8", "accuracy": 0.9, "latency_ms": 0, "size_bytes": 0,
             "status": "unsupported"}]
    entries = _write_entries(tmp_path, rows, {"vit": "vit", "vit_slim": "vit", "cnn": "cnn"})
    out = {k: tmp_path / f"search.{k}" for k in ("json", "csv", "md", "png", "svg")}
    result = search.write(entries, {"accuracy_budget_pp": 0.3}, "host_1t", out["json"], out["csv"], out["md"],
                          out["png"], out["svg"])
    saved = json.loads(out["json"].read_text())
    assert [f["family"] for f in saved["families"]] == ["vit"] and saved["families"][0]["met"]
    assert saved["families"][0]["chosen"]["variant"] == "dynamic_int8"
    assert len(saved["families"][0]["candidates"]) == 5
    assert any("vit/int16x8: not a candidate (unsupported)" in n for n in result["notes"])
    assert any(n.startswith("cnn: no measured float32") for n in result["notes"])
    md = out["md"].read_text()
    assert "**vit**: chosen: vit / dynamic_int8 (0.48x latency, +0.20 pp accuracy drop, 0.30x size)" in md
    assert len(pd.read_csv(out["csv"])) == 5 and out["png"].stat().st_size > 0


@pytest.mark.parametrize("budget", [0.3, 0.0])
def test_float32_itself_is_the_answer_when_nothing_faster_qualifies(budget):
    rows = [CANDIDATES[0], {**CANDIDATES[1], "accuracy": 0.85}]
    table = search.choose(_frame(rows), {"accuracy_budget_pp": budget})
    assert table.loc[table["choice"] == "chosen", "variant"].tolist() == ["float32"]


def test_a_candidate_whose_emulated_output_differs_from_the_hosts_cannot_meet_the_budget(tmp_path):
    # vit dynamic_int8 would be chosen, but on this emulated CPU its output is not the host's: its accuracy there is
    # unknown, so the next fastest within the budget (slim float32) is chosen and the table and notes say why
    rows = [{**c, "agrees": not (c["experiment"] == "vit" and c["variant"] == "dynamic_int8")} for c in CANDIDATES]
    entries = _write_entries(tmp_path, rows, {"vit": "vit", "vit_slim": "vit"})
    result = search.search(entries, {"accuracy_budget_pp": 0.3})
    assert result["families"][0]["chosen"]["experiment"] == "vit_slim"
    table = result["table"].set_index(["experiment", "variant"])
    assert table.loc[("vit", "dynamic_int8"), "output_matches_host"] == False  # noqa: E712 (a numpy bool)
    assert not table.loc[("vit", "dynamic_int8"), "meets_goal"]
    assert any("vit/dynamic_int8: its output on this device differs" in n for n in result["notes"])
    hosts = search.search(_write_entries(tmp_path, CANDIDATES, {"vit": "vit", "vit_slim": "vit"}), {})
    assert hosts["families"][0]["chosen"]["variant"] == "dynamic_int8"  # no check (a host): nothing excluded
