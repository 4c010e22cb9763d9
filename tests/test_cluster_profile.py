"""Cluster readiness without a cluster: what every rule asks a scheduler for, and the SLURM profiles.

The workflow must run unchanged on a SLURM cluster (README "Running on a SLURM cluster"):
each rule declares threads, memory, wall time and a log; downloads, tables and figures are
local rules; account and partition live only in a profile; the benchmark asks for its node
exclusively; training's memory, wall time and GPUs come from the config. The real cluster
run is tests/slurm/test_slurm_cluster.py (`make test-slurm`).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO

RULE_FILES = sorted((REPO / "workflow/rules").glob("*.smk"))
#: Rules that must be cluster jobs: the heavy stages.
CLUSTER = {"prepare_mnist", "prepare_asl_alphabet", "prepare_imagenet_subset", "train", "convert", "evaluate"}
PROFILES = {"user": REPO / "profiles/slurm/config.yaml", "ci": REPO / "tests/slurm/profile/config.yaml"}


@pytest.fixture(scope="module")
def parsed():
    """The parsed workflow of the paper config (all three experiments, so every rule exists)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    with tempfile.TemporaryDirectory() as tmp, SnakemakeApi(OutputSettings()) as api:
        wapi = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                            config_settings=ConfigSettings(configfiles=[REPO / "config/config.yaml"]),
                            snakefile=REPO / "Snakefile", workdir=Path(tmp))
        wf = wapi._workflow  # the parsed rules (no public accessor in Snakemake 9.27)
        yield {rule.name: rule for rule in wf.rules if rule.name != "all"}, wf


def must_be_local(name: str) -> bool:
    """Downloads (compute nodes often have no internet) and every table and figure rule (seconds of work)."""
    return name.startswith(("download_", "fetch_")) or report_rule(name)


def report_rule(name: str) -> bool:
    return f"rule {name}:" in (REPO / "workflow/rules/report.smk").read_text()


def generated_as(pattern: str, name: str) -> bool:
    """Whether a rule generated in a loop from the f-string name ``pattern`` (e.g. ``prepare_{_ds}``) is ``name``."""
    regex = "".join(r"\w+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", pattern))
    return re.fullmatch(regex, name) is not None


def rule_blocks() -> dict[str, str]:
    """Each rule's source text, keyed by name (named rules and the generated `name: f"..._{_ds}"` ones)."""
    blocks = {}
    derived = {}
    for path in RULE_FILES:
        text = path.read_text()
        parts = re.split(r"^\s*rule(?:\s+(\w+))?:\s*$", text, flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name is None:
                name = re.search(r'name:\s*\n\s*f"([^"]+)"', body).group(1)
            blocks[name] = body
        # `use rule A as B with:` inherits A's directives (threads among them)
        derived.update(dict((b, a) for a, b in re.findall(r"^use rule (\w+) as (\w+) with:", text, flags=re.M)))
    for new, base in derived.items():
        blocks[new] = blocks[base]
    return blocks


def test_every_rule_declares_threads_memory_runtime_and_a_log(parsed):
    rules, _ = parsed
    assert CLUSTER <= set(rules) and any(name.startswith("bench_") for name in rules)
    blocks = rule_blocks()
    for name, rule in rules.items():
        block = blocks.get(name) or next(body for pattern, body in blocks.items() if generated_as(pattern, name))
        # tables and figures take Snakemake's default single thread (report.smk says so once)
        assert report_rule(name) or re.search(r"^\s*threads:", block, flags=re.M), f"rule {name} declares no threads"
        declared = set(rule.resources.keys())
        assert {"mem_mb", "runtime"} <= declared, f"rule {name} declares {sorted(declared)}"
        assert rule.log, f"rule {name} has no log"


def test_downloads_tables_and_figures_are_local_rules_the_rest_go_to_the_cluster(parsed):
    rules, wf = parsed
    local = {name for name in rules if name in wf._localrules}
    assert local == {name for name in rules if must_be_local(name)}
    assert {"download_mnist", "table2", "evaluation_figure"} <= local and not CLUSTER & local


def test_no_rule_names_an_account_or_a_partition(parsed):
    rules, _ = parsed
    for name, rule in rules.items():
        assert not {"slurm_account", "slurm_partition", "account", "partition", "qos"} & set(rule.resources.keys()), name
    for path in [REPO / "Snakefile", *RULE_FILES]:
        text = path.read_text()
        for word in ("slurm_account", "slurm_partition", "--account", "--partition", "-A ", "-p "):
            assert word not in text, f"{path.name} mentions {word!r}: accounts and partitions belong in a profile"


def _dry_run(tmp_path, cfg):
    """Jobs of a dry run: rule name -> the resources line Snakemake prints for it (--quiet host: every job's block)."""
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--quiet", "host", "--configfile", str(tmp_path / "cfg.yaml")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr):
        m = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s*resources: (.*)$", block, flags=re.M)
        if m and res:
            jobs[m.group(1)] = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
    return jobs


def test_training_asks_for_what_the_config_says_and_the_benchmark_for_its_node(tmp_path):
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["experiments"]["vit_mnist"]["resources"] = {"gpus": 1, "mem_mb": 12000, "runtime": 90}
    jobs = _dry_run(tmp_path, cfg)
    for fit in ("train", "prune"):  # pruning fine-tunes: it asks for what training does
        assert (jobs[fit]["gpu"], jobs[fit]["mem_mb"], jobs[fit]["runtime"]) == ("1", "12000", "90"), fit
    measuring = [name for name in jobs if name.startswith("bench_")] + ["cpu_peak", "select_precision"]
    assert all(jobs[name]["slurm_extra"] == "--exclusive" for name in measuring)
    assert "slurm_extra" not in jobs["convert"]
    del cfg["experiments"]["vit_mnist"]["resources"]  # the defaults: CPU only, 8 GB, 24 h
    jobs = _dry_run(tmp_path, cfg)
    assert (jobs["train"]["gpu"], jobs["train"]["mem_mb"], jobs["train"]["runtime"]) == ("0", "8000", "1440")


def test_a_mistyped_cluster_request_is_named():
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = copy.deepcopy(yaml.safe_load((REPO / "config/demo.yaml").read_text()))
    cfg["experiments"]["vit_mnist"]["resources"] = {"gpu": 1}
    with pytest.raises(WorkflowError, match="gpu"):
        validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)


def _keys(path: Path) -> list[tuple[int, str]]:
    """(line number, key) of every setting in a profile: top-level keys and list entries."""
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        m = re.match(r"^([\w-]+):|^\s+- ([\w-]+)[=:]", line)
        if m:
            out.append((i, m.group(1) or m.group(2)))
    return out


@pytest.mark.parametrize("which", PROFILES)
def test_every_profile_key_is_commented(which):
    path = PROFILES[which]
    lines = path.read_text().splitlines()
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    for i, key in _keys(path):
        above = lines[i - 1].strip() if i else ""
        if key == "default-resources":
            continue  # a heading: each entry below it carries its own comment
        if not above.startswith("#") and "#" not in lines[i]:
            # consecutive entries of one list may share the comment above the first
            j = i
            while j > 0 and re.match(r"^\s+- ", lines[j - 1]):
                j -= 1
            assert lines[j - 1].strip().startswith("#"), f"{path}: line {i + 1} ({key}) has no comment"


def test_user_profile_covers_what_a_cluster_user_sets():
    path = PROFILES["user"]
    text = path.read_text()
    prof = yaml.safe_load(text)
    assert prof["executor"] == "slurm"
    assert {"jobs", "latency-wait", "slurm-status-command", "slurm-init-seconds-before-status-checks",
            "slurm-status-attempts", "max-threads"} <= set(prof)
    defaults = dict(entry.split("=", 1) for entry in prof["default-resources"])
    assert {"mem_mb", "runtime"} <= set(defaults)
    assert "cpus_per_task" not in defaults  # it would override every rule's threads
    # account and partition: documented, left for the user to fill in (commented out)
    for key in ("slurm_account=", "slurm_partition=", "gpus"):
        assert key in text, key
    assert ".snakemake/slurm_logs" in text


def test_ci_profile_matches_the_cluster_run_sh_builds():
    prof = yaml.safe_load(PROFILES["ci"].read_text())
    defaults = dict(entry.split("=", 1) for entry in prof["default-resources"])
    script = (REPO / "tests/slurm/run.sh").read_text()
    assert f"add account {defaults['slurm_account']} " in script
    assert f"PartitionName={defaults['slurm_partition']} " in script
    assert "EnforcePartLimits=ALL" in script
    assert prof["max-threads"] <= 2 and prof["executor"] == "slurm"


@pytest.mark.parametrize("which", PROFILES)
def test_profile_keys_are_snakemake_options(which):
    help_text = subprocess.run([sys.executable, "-m", "snakemake", "--help"], capture_output=True, text=True,
                               timeout=120, check=True).stdout
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
        plugin = True
    except ImportError:
        plugin = False  # its options (slurm-*) appear in --help only when it is installed: pip install -e ".[slurm]"
    for key in yaml.safe_load(PROFILES[which].read_text()):
        if key.startswith("slurm-") and not plugin:
            continue
        assert f"--{key}" in help_text, f"{PROFILES[which]}: {key} is not a snakemake option"


def test_a_phone_gets_a_pareto_figure_but_no_latency_distribution_or_roofline(tmp_path):
    """benchmark_model prints no per-run latencies and a phone has no measured GEMM peak: `all` must not ask for them."""
    from conftest import write_adb_stand_in

    write_adb_stand_in(tmp_path / "bin")
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["benchmark"]["devices"] = ["host_1t", "android"]
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--quiet", "host", "--configfile", str(tmp_path / "cfg.yaml")], capture_output=True, text=True, timeout=300,
        env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "reports/figures/pareto_android.png" in out and "results/bench/android/vit_mnist/int8.json" in out
    assert "latency_android" not in out and "roofline_android" not in out
    assert "reports/figures/latency_host_1t.png" in out


def test_the_default_dry_run_has_no_json_walls_and_a_job_table_on_request(tmp_path):
    """`snakemake -n` on the paper config: every job's block but no shell commands with their JSON options;
    `--quiet rules`: the job table and the reasons alone."""
    def dry(*extra):
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                               *extra], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return (proc.stdout + proc.stderr).splitlines()

    out = dry()
    assert "Job stats:" in out and not any("--options '" in line or "Shell command" in line for line in out)
    table = dry("--quiet", "rules")
    assert "Job stats:" in table and "Reasons:" in [line.strip() for line in table]
    assert len(table) < 150, f"{len(table)} lines"  # 1,146 with every job's block and shell command
    prof = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert "quiet" not in prof and prof["show-failed-logs"] is True and "printshellcmds" not in prof
