"""End to end through Snakemake, offline: all three of the paper's experiments in tiny form.

The ViT also gets the graph-optimized variant (prune, sensitivity, selection with benchmarks)
and int16x8, which the converter refuses for it: the run must record that and go on.

The demo's ViT on digits (IDX files over HTTP on 127.0.0.1), MobileNetV2 on a
stand-in ASL Alphabet zip fetched by a stand-in ``kaggle`` executable, and the
pretrained MobileNetV2 scored on a stand-in Imagenette .tgz, with weight files
the test writes served by the same HTTP server; from download to figures.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, make_asl_zip, make_imagenette_tgz, write_kaggle_stand_in, write_mobilenetv2_weights

pytestmark = pytest.mark.slow

FINAL = ["reports/tables/table2.csv", "reports/tables/table2.md", "reports/tables/table1.csv", "reports/tables/accuracy.csv",
         "reports/figures/training_curves_vit_mnist.png",
         "reports/figures/training_curves_vit_mnist.svg", "reports/figures/fig2_accuracy.png",
         "reports/figures/fig2_accuracy.svg", "reports/figures/fig3_loss.png", "reports/figures/fig3_loss.svg",
         "reports/tables/variants.csv", "reports/tables/variants.md", "reports/figures/sensitivity_vit_mnist.png",
         "reports/figures/sensitivity_vit_mnist.svg", "reports/tables/cost.csv", "reports/tables/cost.md",
         "results/models/vit_mnist/cost.json", "reports/tables/search_host_1t.md", "reports/tables/search_host_1t.csv",
         "reports/figures/search_host_1t.png", "reports/tables/search_host_1t.json"]


EXPERIMENTS = ("vit_mnist", "mobilenetv2_imagenet", "mobilenetv2_asl")
#: Rules that read every benchmark result: they rerun whenever one experiment's results change.
REPORT_RULES = ("paper_vs_reproduced", "latency_figure", "pareto_figure", "roofline_figure", "summary", "search")
#: Variants per experiment in the tiny run (int16x8 is refused by the converter for the ViT).
VIT_VARIANTS = ("float32", "int8", "int16x8", "graph_opt_int8")
#: The pretrained MobileNetV2 also runs on ONNX Runtime, the second runtime, through the same rules.
VARIANTS = {"vit_mnist": VIT_VARIANTS, "mobilenetv2_imagenet": ("float32", "int8", "ort_float32"),
            "mobilenetv2_asl": ("float32", "int8")}
#: Kaggle credentials for the stand-in CLI (the real client is never run).
KAGGLE_ENV = {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "test-key-never-logged-0123"}


def snakemake(workdir, *args, timeout=1200):
    """Snakemake on ``workdir``, whose ``bin`` folder (the stand-in kaggle) is first on the user's PATH."""
    env = {**os.environ, **KAGGLE_ENV, "PATH": f"{workdir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    return proc


def jobs_run(stdout: str) -> set[str]:
    """Rule names from Snakemake's 'Job stats' table."""
    lines = stdout.split("Job stats:")[1].splitlines()[3:]
    names = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        names.add(parts[0])
    return names


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory, digits_idx):
    import threading
    from http.server import ThreadingHTTPServer

    from conftest import FaultyServer, _handler

    work = tmp_path_factory.mktemp("workflow")
    www = work / "www"
    www.mkdir()
    for f in digits_idx.iterdir():
        (www / f.name).write_bytes(f.read_bytes())
    state = FaultyServer(www)
    state.fail("train-images-idx3-ubyte.gz", 500)  # the workflow's download must retry through it
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    make_imagenette_tgz(www / "imagenette2-160.tgz")
    for include_top in (True, False):
        write_mobilenetv2_weights(www, include_top=include_top)
    kaggle = write_kaggle_stand_in(work / "bin", make_asl_zip(work / "kaggle" / "asl-alphabet.zip", per_class=6))
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["datasets"]["mnist"] = {"source": "url", "mirrors": [url], "verify": False, "backoff": 0, "progress": False}
    tiny_images = {"image_size": 32, "progress": False, "workers": 2}
    # `kaggle_cli: kaggle` (the default) must find the stand-in on the user's PATH, although the jobs' PATH starts
    # with the folder of this Python, which holds the real kaggle client (it would need the internet)
    assert kaggle == work / "bin" / "kaggle"
    cfg["datasets"]["asl_alphabet"] = {"source": "kaggle", "kaggle_cli": "kaggle", "verify": False,
                                       "validation_fraction": 0.2, "test_fraction": 0.2, **tiny_images}
    cfg["datasets"]["imagenet_subset"] = {"source": "url", "mirrors": [url], "resolution": "160", "verify": False,
                                          "crop_fraction": 0.875, "backoff": 0, **tiny_images}
    cfg["pretrained"] = {"mirrors": [url], "backoff": 0, "progress": False}
    mobilenet = {"name": "mobilenetv2", "alpha": 0.35, "weights": "imagenet"}
    cfg["experiments"]["mobilenetv2_imagenet"] = {
        "label": "MobileNetV2 + ImageNet (stand-in)", "dataset": "imagenet_subset",
        "variants": list(VARIANTS["mobilenetv2_imagenet"]),
        "model": {**mobilenet, "include_top": True}, "train": {"epochs": 0}}
    cfg["experiments"]["mobilenetv2_asl"] = {
        "label": "MobileNetV2 + ASL (stand-in)", "dataset": "asl_alphabet", "variants": ["float32", "int8"],
        "model": {**mobilenet, "include_top": False},
        "train": {"epochs": 2, "frozen_epochs": 1, "fine_tune_from": 100, "batch_size": 16, "threads": 2}}
    cfg["convert"] = {"representative_samples": 50}
    cfg["experiments"]["vit_mnist"]["variants"] = list(VIT_VARIANTS)
    # the budget is wide here: this run tests the plumbing, tests/test_graph_opt.py the budget itself
    cfg["graph_opt"]["mixed_precision"].update(accuracy_budget_pp=5.0, candidates=[2], samples=8)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    first = snakemake(work, "--cores", "2")
    second = snakemake(work, "--cores", "2", "-n")
    yield work, first, second, state
    server.shutdown()
    server.server_close()


def test_first_run_builds_everything(workflow_run):
    work, first, _, state = workflow_run
    assert first.returncode == 0, first.stderr[-5000:]
    for path in FINAL:
        assert (work / path).stat().st_size > 0, path
    assert ("/train-images-idx3-ubyte.gz", None) in state.requests
    assert jobs_run(first.stderr) == {
        "download_mnist", "prepare_mnist", "download_asl_alphabet", "prepare_asl_alphabet", "download_imagenet_subset",
        "prepare_imagenet_subset", "fetch_weights", "train", "convert", "export_onnx", "evaluate",
        *(f"bench_{e}" for e in EXPERIMENTS), "table1", "table2", "accuracy_table", "op_profile_table",
        "training_curves", "evaluation_figure", *REPORT_RULES, "peak_models", "cpu_peak", "size_figure", "paper_table2",
        "prune", "sensitivity", "select_precision", "sensitivity_figure", "variants_table", "model_cost", "cost_table",
        "all"}
    # the pretrained ImageNet model is not trained, so it has no training curves
    assert not (work / "reports/figures/training_curves_mobilenetv2_imagenet.png").exists()
    assert (work / "reports/figures/training_curves_mobilenetv2_asl.png").stat().st_size > 0


def test_table2_rows_come_from_the_results(workflow_run):
    work = workflow_run[0]
    table = pd.read_csv(work / "reports/tables/table2.csv")
    assert table[["experiment", "variant"]].values.tolist() == [[e, v] for e in EXPERIMENTS for v in VARIANTS[e]]
    refused = table[table.variant == "int16x8"].iloc[0]
    assert refused["size"] == "not supported" and refused["status"] == "not supported"
    assert "NEG" in refused["flags"] and pd.isna(refused["p95_ms"])
    ort = table[table.variant == "ort_float32"].iloc[0]
    assert ort["runtime"] == "onnxruntime" and pd.isna(ort["partitions"]) and ort["status"] == "ok"
    assert (work / "results/onnx/mobilenetv2_imagenet/ort_float32.onnx").stat().st_size > 0
    lite = table[(table.experiment == "mobilenetv2_imagenet") & (table.variant == "float32")].iloc[0]
    assert abs(ort["accuracy"] - lite["accuracy"]) <= 0.02  # the same float model on two runtimes (50 test images)
    for _, row in table[table.variant != "int16x8"].iterrows():
        bench = json.loads((work / f"results/bench/host_1t/{row.experiment}/{row.variant}.json").read_text())
        ev = json.loads((work / f"results/eval/{row.experiment}/test/{row.variant}.json").read_text())
        assert row.p95_ms == pytest.approx(bench["p95_ms"]) and row.accuracy == pytest.approx(ev["accuracy"])
        assert row.p50_ci_low_ms == pytest.approx(bench["p50_ci_ms"][0]) and row.p99_ms == pytest.approx(bench["p99_ms"])
        assert row.status == "ok" and bench["op_profile"]["ops_failed"] == 0
        assert bench["iterations"] == 1200 and bench["repeats_done"] == 3 and bench["tensorflow_imported"] is False
        if row.runtime == "onnxruntime":  # no delegate, no independent timing tool: said, not flagged
            assert "delegation" not in bench and bench["crosscheck"]["unavailable"]
            assert not any("cross-check" in flag for flag in bench["flags"])
            continue
        assert row.delegated_nodes == bench["delegation"]["delegated_nodes"]
        # LiteRT's tool rounds to 0.01 ms: a fast host reads 0.00 for the tiny models, compared in absolute terms
        assert bench["crosscheck"]["tool_p50_ms"] >= 0 and "compared_at" in bench["crosscheck"]
        assert bench["op_profile"]["ops_failed"] == 0
        if row.experiment == "vit_mnist":
            assert ev["accuracy"] >= 0.85
    header = [h.strip() for h in (work / "reports/tables/table2.md").read_text().splitlines()[0].strip("|").split("|")]
    assert header[:11] == ["model", "variant", "device", "size", "RAM MB", "CPU %", "p95", "p90", "p50", "p10", "load ms"]


def test_benchmarks_never_overlap(workflow_run):
    """One job per experiment (its variants interleaved inside); two jobs never run at the same time."""
    work = workflow_run[0]
    jobs: dict[str, list[float]] = {}
    for path in (work / "results/bench").rglob("*.json"):
        b = json.loads(path.read_text())
        if "experiment" not in b or b.get("status") != "ok":  # cpu_peak.json; a variant not supported
            continue
        for rep in b["repeats"]:
            span = jobs.setdefault(b["experiment"], [rep["started_unix"], rep["finished_unix"]])
            span[0], span[1] = min(span[0], rep["started_unix"]), max(span[1], rep["finished_unix"])
    spans = sorted(jobs.values())
    assert len(spans) == 3
    # the precision selection benchmarks its candidates (interleaved, in one protocol run) in the same exclusive slot
    selection = json.loads((work / "results/graph_opt/vit_mnist/selection.json").read_text())
    candidates = [(c["started_unix"], c["finished_unix"]) for c in selection["candidates"]]
    assert len(candidates) == 3
    spans = sorted([*spans, [min(c[0] for c in candidates), max(c[1] for c in candidates)]])
    for first, second in zip(spans, spans[1:], strict=False):
        assert first[1] <= second[0], "two benchmark jobs ran at the same time"


def test_provenance_in_every_result(workflow_run):
    work = workflow_run[0]
    results = list((work / "results").rglob("*.json"))
    assert len(results) >= 8
    hashes = set()
    for path in results:
        prov = json.loads(path.read_text())["provenance"]
        hashes.add(prov["config_sha256"])
        assert prov["packages"]["ai-edge-litert"] == "2.3.0", path
        assert prov["cpu_model"] and prov["python"].startswith("3.11"), path
    assert len(hashes) == 1 and None not in hashes


def test_every_rule_wrote_a_log(workflow_run):
    work = workflow_run[0]
    logs = {p.relative_to(work / "logs").as_posix() for p in (work / "logs").rglob("*.log")}
    assert {"download/mnist.log", "prepare/mnist.log", "train/vit_mnist.log", "convert/vit_mnist/int8.log",
            "benchmark/host_1t/vit_mnist.log", "report/table2.log", "report/op_profile.log",
            "graph_opt/vit_mnist/prune.log", "graph_opt/vit_mnist/sensitivity.log",
            "graph_opt/vit_mnist/select_precision.log"} <= logs


def test_second_run_does_nothing(workflow_run):
    second = workflow_run[2]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing to be done" in second.stdout + second.stderr


def test_forcerun_convert_reruns_only_what_depends_on_it(workflow_run):
    work = workflow_run[0]
    upstream = ["results/models/vit_mnist/model.keras", "data/prepared/mnist/train_x.npy",
                "data/raw/mnist/train-images-idx3-ubyte.gz", "results/eval/vit_mnist/test/keras.json",
                "reports/figures/training_curves_vit_mnist.png"]
    before = {p: (work / p).stat().st_mtime_ns for p in upstream}
    proc = snakemake(work, "--cores", "2", "--forcerun", "results/tflite/vit_mnist/int8.tflite")
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert jobs_run(proc.stderr) == {"convert", "evaluate", "bench_vit_mnist", "table2", "accuracy_table",
                                     "op_profile_table", "evaluation_figure", "size_figure", "variants_table", *REPORT_RULES,
                                     "cost_table", "all"}  # the benchmark rewrites float32's result, which cost_table reads
    assert before == {p: (work / p).stat().st_mtime_ns for p in upstream}


def test_html_report_bundles_figures_and_table(report_html):
    html = report_html.read_text()
    for name in ("table2.csv", "table1.csv", "table2_paper.csv", "paper_vs_reproduced.csv", "op_profile.csv",
                 "summary.html", "training_curves_vit_mnist.png", "fig2_accuracy.png", "fig3_loss.png",
                 "latency_host_1t.png", "pareto_host_1t.png", "roofline_host_1t.png", "size.png", "variants.csv",
                 "sensitivity_vit_mnist.png", "sensitivity.csv", "candidates.csv"):
        assert name in html, name
    assert "Training curves (paper Fig. 1 for the ViT" in html  # a caption from workflow/report/
    assert "Start with Results" in html  # the landing page, workflow/report/workflow.rst


def _entries(work):
    """The entries the workflow passes to the table rules, from the same plan the rules use."""
    from mobopt.workflow.plan import Plan

    cfg = yaml.safe_load((work / "config.yaml").read_text())
    entries = Plan(cfg).bench_entries(["host_1t"])
    return [{**e, **{k: str(work / e[k]) for k in ("bench", "tflite_info", "eval")}} for e in entries]


def test_every_table_regenerates_from_the_result_jsons(workflow_run):
    """Every number in the tables is traceable: rebuilding them from the JSONs gives the same tables."""
    from mobopt.report import tables

    work = workflow_run[0]
    entries = _entries(work)
    for name, frame in (("table2", tables.table2(entries)), ("paper_vs_reproduced", tables.paper_vs_reproduced(entries)),
                        ("op_profile", tables.op_profile(entries)), ("table2_paper", tables.paper_table2())):
        written = pd.read_csv(work / f"reports/tables/{name}.csv")
        if "flags" in written:
            written["flags"] = written["flags"].fillna("")  # an empty cell reads back as NaN
        frame = frame.reset_index(drop=True)
        frame = frame.astype(object).where(frame.notna(), np.nan)  # a None (ONNX Runtime: no delegate) reads back as NaN
        pd.testing.assert_frame_equal(written, frame, check_dtype=False, check_exact=False, rtol=1e-9, obj=name)
    tex = (work / "reports/tables/table2.tex").read_text()
    assert "\\begin{tabular}" in tex and "ViT + digits (demo)" in tex


def test_paper_vs_reproduced_has_a_verdict_for_every_optimized_variant(workflow_run):
    work = workflow_run[0]
    df = pd.read_csv(work / "reports/tables/paper_vs_reproduced.csv")
    # every optimized variant that was made (int16x8 is refused for the ViT: no row), ONNX Runtime's beside LiteRT's
    assert set(df.variant) == {"int8", "graph_opt_int8", "ort_float32"}
    assert set(df.metric) == {"size", "p50", "p95", "load", "accuracy"} and len(df) == 5 * 5
    assert set(df[df.variant == "ort_float32"].verdict) == {"no paper figure"}  # the paper ran LiteRT only
    graph_opt_p95 = df[(df.variant == "graph_opt_int8") & (df.metric == "p95")].iloc[0]
    assert graph_opt_p95.paper_change == pytest.approx(9 / 16 - 1)  # the paper's -44 %
    from mobopt.report import paper

    assert set(df.verdict) <= set(paper.VERDICTS)
    vit_size = df[(df.experiment == "vit_mnist") & (df.metric == "size")].iloc[0]
    assert vit_size.paper_change == pytest.approx(0.899 / 3.5 - 1)
    assert vit_size.paper_rows == "Quantized ViT + MNIST vs ViT + MNIST"
    asl = df[df.experiment == "mobilenetv2_asl"]
    assert set(asl.verdict) == {"no paper figure"}  # the paper has no quantized ASL row


def test_table1_and_every_evaluation_split(workflow_run):
    work = workflow_run[0]
    table1 = pd.read_csv(work / "reports/tables/table1.csv").set_index("experiment")
    assert list(table1.index) == list(EXPERIMENTS)
    assert table1.loc["vit_mnist", "parameters"] == json.loads(
        (work / "results/models/vit_mnist/metrics.json").read_text())["parameters"]
    assert table1.loc["mobilenetv2_imagenet", "outputs"] == 1000
    assert table1.loc["mobilenetv2_asl", "training"] == "1 frozen epochs, 1 fine_tune epochs"
    acc = pd.read_csv(work / "reports/tables/accuracy.csv")
    official = acc[acc.split == "official_test"]
    assert set(official.experiment) == {"mobilenetv2_asl"} and set(official.samples) == {28}
    assert set(official.variant) == {"keras", "float32", "int8"}
    inet = json.loads((work / "results/eval/mobilenetv2_imagenet/test/float32.json").read_text())
    assert inet["outputs"] == 1000 and "top5_accuracy" in inet and inet["samples"] == 20


def test_downloads_are_recorded_and_the_kaggle_key_is_never_written(workflow_run):
    work = workflow_run[0]
    source = json.loads((work / "data/raw/asl_alphabet/SOURCE.json").read_text())
    assert source["files"]["asl-alphabet.zip"]["origin"] == "kaggle:grassknoted/asl-alphabet"
    assert source["files"]["asl-alphabet.zip"]["kaggle_cli"] == str(work / "bin" / "kaggle")  # the user's, not ours
    assert f"with {work / 'bin' / 'kaggle'} (credentials" in (work / "logs/download/asl_alphabet.log").read_text()
    weights = json.loads((work / "data/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5.json")
                         .read_text())
    assert len(weights["sha256"]) == 64 and weights["pinned"] is False
    metrics = json.loads((work / "results/models/mobilenetv2_asl/metrics.json").read_text())
    assert metrics["pretrained_weights"][0]["sha256"] != weights["sha256"]  # the no_top file
    key = KAGGLE_ENV["KAGGLE_KEY"]
    for folder in ("logs", "results", "reports", "data/raw/asl_alphabet"):
        for path in (work / folder).rglob("*"):
            if path.is_file() and path.suffix in {".log", ".json", ".csv", ".md", ".txt", ".tsv"}:
                assert key not in path.read_text(errors="replace"), path


def test_graph_optimized_variant_is_recorded_end_to_end(workflow_run):
    work = workflow_run[0]
    info = json.loads((work / "results/tflite/vit_mnist/graph_opt_int8.json").read_text())
    selection = json.loads((work / "results/graph_opt/vit_mnist/selection.json").read_text())
    pruning = json.loads((work / "results/models/vit_mnist/pruning.json").read_text())
    go = info["graph_opt"]
    assert [h["layer"] for h in go["higher_precision_layers"]] == selection["chosen"]["higher_precision"]
    assert all("sensitivity rank" in h["why"] for h in go["higher_precision_layers"])
    assert go["identical_to_measured_candidate"] is True  # the same bytes the selection measured
    assert pruning["measured"]["sparsity"] == pytest.approx(0.3, abs=1e-3)
    assert info["weight_sparsity"]["sparsity"] >= 0.25  # the zeros survive into the int8 file
    assert all(check["ok"] for check in info["fusion"]["checks"].values())
    assert "order_changed" in go["reorder"] or go["reorder"]["applied"] is False
    variants = pd.read_csv(work / "reports/tables/variants.csv")
    row = variants[(variants.experiment == "vit_mnist") & (variants.variant == "graph_opt_int8")].iloc[0]
    assert row.size_bytes == info["size_bytes"] and row.size_vs_float32 < 0.6
    assert "not supported" in variants[variants.variant == "int16x8"].iloc[0]["note"]
    refused = json.loads((work / "results/eval/vit_mnist/test/int16x8.json").read_text())
    assert refused["supported"] is False and "accuracy" not in refused


CHROMIUM = "/usr/bin/chromium"
#: Flags that keep Chromium off the network (this machine has none) and out of a root sandbox.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report_html(workflow_run):
    work = workflow_run[0]
    proc = snakemake(work, "--report", str(work / "report.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "report.html"


def test_report_as_a_person_sees_it(report_html, tmp_path):
    """Open the report in headless Chromium: the landing page renders, every embedded figure decodes to an image
    of real size, the summary page shows the verdicts, and nothing logs an error."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) "
                    "to test the report in a browser")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the test extras)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report_html.as_uri())
        page.wait_for_function("typeof results === 'object' && document.body.innerText.length > 200")
        page.screenshot(path=str(tmp_path / "landing.png"), full_page=True)
        assert "Start with Results" in page.inner_text("body")
        # every image the report embeds, decoded by the browser itself
        images = page.evaluate("""async () => {
            const out = [];
            for (const [path, r] of Object.entries(results)) {
                if (!r.mime_type || !r.mime_type.startsWith("image/")) continue;
                const img = new Image();
                img.src = r.data_uri;
                try { await img.decode(); out.push([path, img.naturalWidth, img.naturalHeight]); }
                catch (e) { out.push([path, 0, 0]); }
            }
            return out;
        }""")
        names = {Path(path).name for path, _, _ in images}
        assert {"training_curves_vit_mnist.png", "fig2_accuracy.png", "latency_host_1t.png", "pareto_host_1t.png",
                "roofline_host_1t.png", "size.png"} <= names, names
        broken = [(path, w, h) for path, w, h in images if w < 200 or h < 100]
        assert not broken, f"broken or empty images in the report: {broken}"
        # the landing summary, as the report shows it
        summary = page.evaluate("Object.entries(results).find(([p, r]) => p.endsWith('summary.html'))[1].data_uri")
        page.goto(summary)
        text = page.inner_text("body")
        assert "Verdicts" in text and "Run metadata" in text and "git commit" in text
        assert any(v in text for v in ("reproduced", "reversed", "no change"))
        assert "Why each variant is fast or slow here" in text and "int8 dot product" in text
        page.screenshot(path=str(tmp_path / "summary.png"), full_page=True)
        browser.close()
    assert not errors, errors
    assert (tmp_path / "landing.png").stat().st_size > 10_000


def test_a_fixed_source_file_reruns_by_itself(tmp_path, digits_idx):
    """`source: path`: fixing the user's broken file makes the next run pass, without --forcerun.

    The user's files are inputs of the download rule, so the fixed one is copied again and prepared
    again; the failure names the user's file, not only the workflow's copy in data/raw.
    """
    from mobopt.datasets.idx import read_idx, write_idx

    mine = tmp_path / "my-mnist"
    mine.mkdir()
    for f in digits_idx.iterdir():
        (mine / f.name).write_bytes(f.read_bytes())
    labels = mine / "t10k-labels-idx1-ubyte.gz"
    good = read_idx(labels)
    write_idx(labels, good[:-1])  # one label short of the images
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["datasets"]["mnist"] = {"source": "path", "path": "my-mnist", "verify": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    target = "data/prepared/mnist/meta.json"

    first = snakemake(tmp_path, "--cores", "1", target, timeout=600)
    assert first.returncode != 0
    log = (tmp_path / "logs/prepare/mnist.log").read_text()
    assert f"data/raw/mnist/t10k-labels-idx1-ubyte.gz is the workflow's copy of {labels}" in log
    assert not (tmp_path / target).exists()

    write_idx(labels, good)
    second = snakemake(tmp_path, "--cores", "1", target, timeout=600)
    assert second.returncode == 0, second.stderr[-4000:]
    assert {"download_mnist", "prepare_mnist"} <= jobs_run(second.stderr)
    assert json.loads((tmp_path / target).read_text())["counts"]["test"] == len(good)
    again = snakemake(tmp_path, "--cores", "1", "-n", target, timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr
