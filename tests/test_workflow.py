"""End to end through Snakemake: the demo config from download (over HTTP on 127.0.0.1) to figures."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow

FINAL = ["reports/tables/table2.csv", "reports/tables/table2.md", "reports/figures/fig1_training_vit_mnist.png",
         "reports/figures/fig1_training_vit_mnist.svg", "reports/figures/fig2_accuracy.png",
         "reports/figures/fig2_accuracy.svg", "reports/figures/fig3_loss.png", "reports/figures/fig3_loss.svg"]


def snakemake(workdir, *args, timeout=900):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *args],
        capture_output=True, text=True, timeout=timeout,
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
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["datasets"]["mnist"] = {"source": "url", "mirrors": [f"http://127.0.0.1:{server.server_address[1]}/"],
                                "verify": False, "backoff": 0, "progress": False}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
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
    assert jobs_run(first.stderr) == {"download_mnist", "prepare_mnist", "train", "convert", "evaluate_keras",
                                      "evaluate_tflite", "benchmark", "table2", "training_curves",
                                      "evaluation_figure", "all"}


def test_table2_rows_come_from_the_results(workflow_run):
    work = workflow_run[0]
    table = pd.read_csv(work / "reports/tables/table2.csv")
    assert table[["variant", "device"]].values.tolist() == [["float32", "host_1t"], ["int8", "host_1t"]]
    for _, row in table.iterrows():
        bench = json.loads((work / f"results/bench/host_1t/vit_mnist/{row.variant}.json").read_text())
        ev = json.loads((work / f"results/eval/vit_mnist/{row.variant}.json").read_text())
        assert row.p95_ms == pytest.approx(bench["p95_ms"]) and row.accuracy == pytest.approx(ev["accuracy"])
        assert bench["iterations"] == 1200 and bench["tensorflow_imported"] is False
        assert ev["accuracy"] >= 0.85
    header = [h.strip() for h in (work / "reports/tables/table2.md").read_text().splitlines()[0].strip("|").split("|")]
    assert header[:11] == ["model", "variant", "device", "size", "RAM MB", "CPU %", "p95", "p90", "p50", "p10", "load ms"]


def test_benchmarks_never_overlap(workflow_run):
    work = workflow_run[0]
    spans = sorted((b["started_unix"], b["finished_unix"]) for b in
                   (json.loads(p.read_text()) for p in (work / "results/bench").rglob("*.json")))
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0], "two benchmarks ran at the same time"


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
            "benchmark/host_1t/vit_mnist/int8.log", "report/table2.log"} <= logs


def test_second_run_does_nothing(workflow_run):
    second = workflow_run[2]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing to be done" in second.stdout + second.stderr


def test_forcerun_convert_reruns_only_what_depends_on_it(workflow_run):
    work = workflow_run[0]
    upstream = ["results/models/vit_mnist/model.keras", "data/prepared/mnist/train.npz",
                "data/raw/mnist/train-images-idx3-ubyte.gz", "results/eval/vit_mnist/keras.json",
                "reports/figures/fig1_training_vit_mnist.png"]
    before = {p: (work / p).stat().st_mtime_ns for p in upstream}
    proc = snakemake(work, "--cores", "2", "--forcerun", "convert")
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert jobs_run(proc.stderr) == {"convert", "evaluate_tflite", "benchmark", "table2", "evaluation_figure", "all"}
    assert before == {p: (work / p).stat().st_mtime_ns for p in upstream}


def test_html_report_bundles_figures_and_table(workflow_run):
    work = workflow_run[0]
    proc = snakemake(work, "--report", str(work / "report.html"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (work / "report.html").read_text()
    for name in ("table2.csv", "fig1_training_vit_mnist.png", "fig2_accuracy.png", "fig3_loss.png"):
        assert name in html, name
    assert "Training curves (paper Fig. 1)" in html  # a caption from workflow/report/
