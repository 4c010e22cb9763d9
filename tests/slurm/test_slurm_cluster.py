"""The workflow on a real SLURM cluster, through the official executor plugin.

tests/slurm/run.sh (`make test-slurm`, and CI) starts a one-node cluster on this machine
(slurmctld, slurmd, slurmdbd with MariaDB, munge) and runs this module; anywhere else it is
skipped. The demo config (the ViT on scikit-learn's digits, shortened to minutes) goes
through `snakemake --executor slurm` with tests/slurm/profile, and every claim is checked
against SLURM's own accounting (sacct), not against what Snakemake says: which rules ran as
cluster jobs, that each result records the job that made it, that a benchmark had its node
to itself. Then the failure paths: a job that fails and a request the node can never meet
must end Snakemake with an error in bounded time, never a hang. Every Snakemake call runs
under a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("MOBOPT_SLURM_CLUSTER"),
        reason="needs the SLURM cluster that tests/slurm/run.sh starts (make test-slurm)",
    ),
]

CI_PROFILE = REPO / "tests/slurm/profile"
USER_PROFILE = REPO / "profiles/slurm"
#: Seconds a whole run may take before it counts as hung (the run itself takes 2-5 minutes).
RUN_TIMEOUT = 1200
#: Seconds within which a failing job must have ended Snakemake.
FAIL_TIMEOUT = 240
#: Rules that run as cluster jobs in the demo, with their job counts (benchmark jobs, which measure
#: and must have their node to themselves, are counted apart); the rest are local rules.
CLUSTER_JOBS = {"prepare_mnist": 1, "train": 1, "prune": 1, "sensitivity": 1, "convert": 4, "evaluate": 5,
                "peak_models": 1, "model_cost": 1}
#: Rules whose jobs measure latency: the per-experiment benchmarks, the CPU's peak and the graph-opt
#: layer selection (it benchmarks its candidates).
MEASURING_RULES = {"bench_vit_mnist", "cpu_peak", "select_precision"}
LOCAL_RULES = {"download_mnist", "table1", "table2", "accuracy_table", "training_curves", "evaluation_figure",
               "paper_table2", "paper_vs_reproduced", "op_profile_table", "latency_figure", "pareto_figure",
               "size_figure", "roofline_figure", "summary", "cost_table"}


def measures(rule: str) -> bool:
    """Rules whose jobs are measurements (MEASURING_RULES)."""
    return rule in MEASURING_RULES
#: What the config asks for the training job (experiments.<name>.resources).
TRAIN_REQUEST = {"runtime": 30, "mem_mb": 3000, "gpus": 0}
FINAL = ["reports/tables/table1.csv", "reports/tables/table2.csv", "reports/tables/accuracy.csv",
         "reports/figures/training_curves_vit_mnist.png", "reports/figures/fig2_accuracy.png",
         "reports/figures/fig3_loss.png", "reports/figures/roofline_host_1t.png", "reports/summary.html"]


class Run:
    """One Snakemake call: exit code, output, wall time, and the SLURM run id the plugin printed."""

    def __init__(self, label: str, workdir: Path, args: list[str], timeout: float, targets: tuple[str, ...] = ()):
        cmd = [sys.executable, "-m", "snakemake", *targets, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), *args]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
            self.returncode, self.output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"") + (e.stderr or b"")
            self.returncode, self.output = None, out.decode(errors="replace") if isinstance(out, bytes) else out
        self.seconds = time.monotonic() - start
        with open(workdir / "snakemake-calls.log", "a") as f:
            f.write(f"$ {' '.join(cmd)}\n# exit {self.returncode} after {self.seconds:.1f} s\n{self.output}\n")
        if os.environ.get("MOBOPT_SLURM_TIMES"):  # run.sh prints these at the end
            with open(os.environ["MOBOPT_SLURM_TIMES"], "a") as f:
                f.write(f"{label}: {self.seconds:.1f} s (exit {self.returncode})\n")
        ids = [line.split("SLURM run ID:")[1].strip() for line in self.output.splitlines() if "SLURM run ID:" in line]
        self.run_id = ids[0] if ids else None

    def tail(self, n: int = 6000) -> str:
        return f"exit {self.returncode} after {self.seconds:.0f} s\n{self.output[-n:]}"


def sacct(run_id: str) -> list[dict[str, str]]:
    """SLURM's accounting record of every job of one Snakemake run (the plugin names jobs by run id)."""
    fields = ["JobIDRaw", "JobName", "Comment", "State", "ExitCode", "Account", "Partition", "AllocCPUS", "Start",
              "End", "NodeList", "TimelimitRaw", "ReqMem"]
    out = subprocess.run(["sacct", "-X", "-P", "-n", "--starttime", "now-1days", "--name", run_id,
                          "--format", ",".join(fields)], capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]


def rule_of(job: dict[str, str]) -> str:
    """The rule name from the job comment the plugin sets: rule_<name>[_wildcards_<...>]."""
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def write_config(work: Path, digits: Path, **datasets) -> None:
    """The offline demo config, shortened: a few epochs and benchmark iterations (still the real chain)."""
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["datasets"]["mnist"] = {**cfg["datasets"]["mnist"], "path": str(digits), "progress": False, **datasets}
    cfg["experiments"]["vit_mnist"]["train"].update(epochs=3, warmup_epochs=1)
    cfg["graph_opt"]["pruning"]["epochs"] = 2
    # a 3-epoch model is far from converged: pruning alone moves it by a few points, so the
    # demo's 1.5 pp budget would (rightly) stop select_precision; this test is about the cluster
    cfg["graph_opt"]["mixed_precision"]["accuracy_budget_pp"] = 10.0
    # the default 24 h would exceed the partition's 2 h limit: sbatch would refuse the job
    cfg["experiments"]["vit_mnist"]["resources"] = TRAIN_REQUEST
    cfg["convert"] = {"representative_samples": 100}
    cfg["benchmark"].update(iterations=200, warmup=20)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("digits-idx")
    subprocess.run([sys.executable, "-m", "mobopt", "digits-idx", str(out)], check=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory, digits):
    """The demo workflow through `snakemake --executor slurm` (tests/slurm/profile)."""
    work = tmp_path_factory.mktemp("demo")
    write_config(work, digits)
    run = Run("demo workflow", work, ["--profile", str(CI_PROFILE)], RUN_TIMEOUT)
    return work, run


def test_demo_runs_on_the_cluster(demo):
    work, run = demo
    assert run.returncode == 0, run.tail()
    assert run.run_id, "the SLURM executor printed no run id"
    for path in FINAL:
        assert (work / path).stat().st_size > 0, path


def test_every_cluster_rule_ran_as_a_slurm_job_and_local_rules_did_not(demo):
    work, run = demo
    jobs = sacct(run.run_id)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[rule_of(job)] = counts.get(rule_of(job), 0) + 1
        assert job["State"] == "COMPLETED" and job["ExitCode"] == "0:0", job
        assert job["Account"] == "mobopt" and job["Partition"] == "ci", job
    assert {rule: n for rule, n in counts.items() if not measures(rule)} == CLUSTER_JOBS
    assert {rule for rule in counts if measures(rule)} == MEASURING_RULES
    assert not LOCAL_RULES & set(counts)
    for fit in ("train", "prune"):  # the pruning fine-tune asks for what training does
        job = next(j for j in jobs if rule_of(j) == fit)
        assert (int(job["TimelimitRaw"]), job["ReqMem"]) == (TRAIN_REQUEST["runtime"], f"{TRAIN_REQUEST['mem_mb']}M"), job


def test_each_result_records_the_slurm_job_that_made_it(demo):
    work, run = demo
    jobs = {job["JobIDRaw"]: job for job in sacct(run.run_id)}
    results = [p for p in sorted((work / "results").rglob("*.json")) if "provenance" in json.loads(p.read_text())]
    assert len(results) >= 8  # metrics, 2 conversions, 3 evaluations, 2 benchmarks
    made_by, job_of = {}, {}
    for path in results:
        job_id = json.loads(path.read_text())["provenance"]["slurm_job_id"]
        assert job_id in jobs, f"{path.relative_to(work)}: SLURM job {job_id!r} is not one of this run's jobs"
        made_by[path.relative_to(work).as_posix()] = rule_of(jobs[job_id])
        job_of[path.relative_to(work).as_posix()] = job_id
    assert job_of["results/tflite/vit_mnist/int8.json"] != job_of["results/tflite/vit_mnist/float32.json"]
    assert made_by["results/models/vit_mnist/metrics.json"] == "train"
    assert made_by["results/tflite/vit_mnist/int8.json"] == "convert"
    assert made_by["results/eval/vit_mnist/test/keras.json"] == "evaluate"
    assert made_by["results/eval/vit_mnist/test/int8.json"] == "evaluate"
    assert made_by["results/bench/host_1t/vit_mnist/int8.json"].startswith("bench_")


def test_a_benchmark_has_its_node_to_itself(demo):
    work, run = demo
    jobs = sacct(run.run_id)
    span = {j["JobIDRaw"]: (datetime.fromisoformat(j["Start"]), datetime.fromisoformat(j["End"])) for j in jobs}
    node_cpus = int(subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True, timeout=60,
                                   check=True).stdout.split()[0])
    benches = [j for j in jobs if measures(rule_of(j))]
    assert benches
    for bench in benches:
        assert int(bench["AllocCPUS"]) == node_cpus, "--exclusive should allocate the whole node"
        b0, b1 = span[bench["JobIDRaw"]]
        for other in jobs:
            o0, o1 = span[other["JobIDRaw"]]
            if other is not bench:
                assert o1 <= b0 or o0 >= b1, f"{rule_of(other)} job {other['JobIDRaw']} overlapped a benchmark"


def test_logs_land_where_the_readme_says(demo):
    work, run = demo
    for job in sacct(run.run_id):
        logs = list((work / ".snakemake/slurm_logs" / f"rule_{rule_of(job)}").rglob(f"{job['JobIDRaw']}.log"))
        assert len(logs) == 1, f"no sbatch log for job {job['JobIDRaw']} ({rule_of(job)})"
    assert (work / "logs/train/vit_mnist.log").stat().st_size > 0
    assert (work / "logs/download/mnist.log").exists()


def test_one_stage_reruns_on_the_cluster_with_the_users_profile(demo):
    """README's recipe with profiles/slurm itself; only the account, partition and waits are this cluster's."""
    work, _ = demo
    target = "results/eval/vit_mnist/test/int8.json"
    upstream = ["results/models/vit_mnist/model.keras", "results/tflite/vit_mnist/int8.tflite",
                "results/bench/host_1t/vit_mnist/int8.json"]
    before = {p: (work / p).stat().st_mtime_ns for p in upstream}
    old_eval = (work / target).stat().st_mtime_ns
    this_cluster = ["--default-resources", "slurm_account=mobopt", "slurm_partition=ci",
                    "--slurm-init-seconds-before-status-checks", "4", "--max-threads", "2"]
    run = Run("rerun one stage (profiles/slurm)", work, ["--profile", str(USER_PROFILE), *this_cluster,
                                                         "--forcerun", target], RUN_TIMEOUT)
    assert run.returncode == 0, run.tail()
    assert sorted(rule_of(j) for j in sacct(run.run_id)) == ["evaluate"]
    assert (work / target).stat().st_mtime_ns > old_eval
    assert before == {p: (work / p).stat().st_mtime_ns for p in upstream}


def test_a_failing_job_ends_the_run_with_an_error(tmp_path, digits):
    """A corrupt image file passes the (local) copy and fails in the cluster job that parses it."""
    bad = tmp_path / "bad-idx"
    bad.mkdir()
    for f in digits.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not a gzip stream")
    write_config(tmp_path, bad)
    run = Run("failing job", tmp_path, ["--profile", str(CI_PROFILE)], FAIL_TIMEOUT, targets=("data/prepared/mnist/meta.json",))
    assert run.returncode is not None, f"Snakemake still running after {FAIL_TIMEOUT} s: {run.tail()}"
    assert run.returncode != 0, run.tail()
    jobs = sacct(run.run_id)
    assert [(rule_of(j), j["State"]) for j in jobs] == [("prepare_mnist", "FAILED")]
    # the terminal shows the plugin's own message and ends with the failed job and its cause
    assert "1 job(s) failed:" in run.output and "  prepare_mnist: " in run.output, run.tail()
    run_logs = "".join(p.read_text() for p in (tmp_path / ".snakemake/log").glob("*.snakemake.log"))
    assert f"SLURM-job '{jobs[0]['JobIDRaw']}' failed" in run.output + run_logs
    assert list((tmp_path / ".snakemake/slurm_logs/rule_prepare_mnist").rglob(f"{jobs[0]['JobIDRaw']}.log"))
    assert "train-images-idx3-ubyte.gz" in (tmp_path / "logs/prepare/mnist.log").read_text()
    assert not (tmp_path / "data/prepared/mnist/meta.json").exists()


def test_a_request_the_cluster_can_never_meet_fails_at_once(tmp_path, digits):
    """More memory than the node has: sbatch refuses it (EnforcePartLimits=ALL) instead of queueing it forever."""
    write_config(tmp_path, digits)
    run = Run("impossible request", tmp_path, ["--profile", str(CI_PROFILE), "--set-resources", "prepare_mnist:mem_mb=100000000"],
              FAIL_TIMEOUT, targets=("data/prepared/mnist/meta.json",))
    assert run.returncode is not None, f"Snakemake still running after {FAIL_TIMEOUT} s: {run.tail()}"
    assert run.returncode != 0, run.tail()
    run_logs = "".join(p.read_text() for p in (tmp_path / ".snakemake/log").glob("*.snakemake.log"))
    assert "Memory specification can not be satisfied" in run.output + run_logs, run.tail()
    assert run.seconds < 120, run.tail()
    # the controller logs the refused submission as a FAILED job that no node ever ran
    assert run.run_id and all(j["NodeList"] == "None assigned" for j in sacct(run.run_id)), sacct(run.run_id)
