"""Report stages: result JSONs in, tables, figures and the landing page out (pandas and matplotlib, no TensorFlow).

Each command is named as the workflow rule that runs it.
"""

from __future__ import annotations

from mobopt.cli._args import add_command, add_entries, add_figure, add_options, add_table, json_arg, require


def cmd_table1(a):
    from mobopt.report.tables import write_table1

    write_table1(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_table2(a):
    from mobopt.report.tables import write_table2

    write_table2(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_paper_table2(a):
    from mobopt.report.tables import write_paper_table2

    write_paper_table2(a.out_csv, a.out_md, a.out_tex)


def cmd_paper_vs_reproduced(a):
    from mobopt.report.tables import write_paper_vs_reproduced

    write_paper_vs_reproduced(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_accuracy_table(a):
    from mobopt.report.tables import write_accuracy

    write_accuracy(a.entries, a.out_csv, a.out_md)


def cmd_second_study_table(a):
    from mobopt.report import study

    study.write(a.entries, a.out_csv, a.out_md)


def cmd_op_profile_table(a):
    from mobopt.report.tables import write_op_profile

    write_op_profile(a.entries, a.out_csv, a.out_md)


def cmd_variants_table(a):
    from mobopt.report.tables import write_variants

    write_variants(a.entries, a.out_csv, a.out_md)


def cmd_isa_table(a):
    from mobopt.report import isa

    isa.write(a.entries, a.out_csv, a.out_md, (a.options or {}).get("latency_key", "p50_ms"))


def cmd_cost_table(a):
    from mobopt.report.costs import write_cost_table

    write_cost_table(a.entries, a.devices, a.out_csv, a.out_md)


def cmd_training_curves(a):
    require(a.history)
    from mobopt.report.plots import training_curves

    training_curves(a.history, a.title, a.png, a.svg)


def cmd_evaluation_figure(a):
    from mobopt.report.plots import evaluation_bars

    evaluation_bars(a.entries, a.metric, a.png, a.svg)


def cmd_latency_figure(a):
    from mobopt.report.plots import latency_distributions

    latency_distributions(a.entries, a.png, a.svg)


def cmd_size_figure(a):
    from mobopt.report.plots import size_bars

    size_bars(a.entries, a.png, a.svg)


def cmd_pareto_figure(a):
    from mobopt.report.plots import accuracy_latency_pareto

    accuracy_latency_pareto(a.entries, a.png, a.svg)


def cmd_roofline_figure(a):
    require(a.peak)
    from mobopt.report.plots import roofline

    roofline(a.entries, a.peak, a.png, a.svg)


def cmd_sensitivity_figure(a):
    require(a.sensitivity, a.selection)
    from mobopt.report.plots import sensitivity_bars

    sensitivity_bars(a.sensitivity, a.selection, a.title, a.png, a.svg)


def cmd_summary(a):
    require(a.verdicts, a.table2, a.bench)
    from mobopt.report.summary import write

    write(a.verdicts, a.table2, a.bench, a.config, a.out, a.isa)


def cmd_publish_results(a):
    from mobopt.report.publish import publish

    dest = publish(a.results, a.out, a.name, a.command)
    print(dest)


def cmd_search(a):
    from mobopt.report import search

    search.write(a.entries, a.options, a.device, a.json, a.out_csv, a.out_md, a.png, a.svg)


def register(sub) -> None:
    add_table(sub, "table1", cmd_table1, "write Table 1 (models x datasets) from result JSONs", tex="optional")
    add_table(sub, "table2", cmd_table2, "write Table 2 (CSV, Markdown, LaTeX) from result JSONs", tex="optional")
    add_table(sub, "paper-table2", cmd_paper_table2, "write the paper's Table 2 as published (from the packaged paper.yaml)",
              tex="required", entries=False)
    add_table(sub, "paper-vs-reproduced", cmd_paper_vs_reproduced, "write the paper-vs-reproduced table with verdicts",
              tex="required")
    s = add_table(sub, "isa-table", cmd_isa_table, "write the does-int8-pay table: every variant against float32 on every "
                  "device (latency on hosts and phones, instructions on emulated ARM CPUs), with each device's ISA")
    add_options(s, "the config's `search` options (latency_key)")
    add_table(sub, "accuracy-table", cmd_accuracy_table, "write the accuracy table (every model, variant and evaluation split)")
    add_table(sub, "second-study-table", cmd_second_study_table,
              "write the second study (MobileNet vs ShuffleNet) beside ours: scores, ablation drops, size and latency")
    add_table(sub, "op-profile-table", cmd_op_profile_table,
              "write the per-op time profile table (CSV and Markdown) from benchmark JSONs")
    add_table(sub, "variants-table", cmd_variants_table,
              "per-variant table: size, accuracy, latency, ops, precision, sparsity")

    s = add_table(sub, "cost-table", cmd_cost_table,
                  "per model: parameters and MACs by layer kind, float32 p50 latency and MACs per ms on each device, the "
                  "study's standard vs depthwise-separable example and the ablations' MAC and latency ratios")
    s.add_argument("--devices", nargs="*", default=[], help="benchmarked devices, one column each (default: none)")

    s = add_figure(sub, "training-curves", cmd_training_curves, "training curves (paper Figs. 1 and 4)")
    s.add_argument("--history", required=True, help="the training's history.csv")
    s.add_argument("--title", required=True, help="figure title")

    s = add_figure(sub, "evaluation-figure", cmd_evaluation_figure, "accuracy or loss, Keras vs variants (paper Figs. 2-3)")
    add_entries(s)
    s.add_argument("--metric", choices=("accuracy", "loss"), required=True, help="metric to plot")

    for name, func, help in (
        ("latency-figure", cmd_latency_figure, "latency distributions per variant"),
        ("size-figure", cmd_size_figure, "model size bars per variant"),
        ("pareto-figure", cmd_pareto_figure, "accuracy-latency Pareto fronts"),
    ):
        add_entries(add_figure(sub, name, func, help))

    s = add_table(sub, "search", cmd_search, "the accuracy-gated search on one device: per model family (a trained "
                  "model and those pruned or distilled from it) every variant's accuracy drop, latency and size against "
                  "float32, the Pareto front and the fastest candidate within the accuracy budget")
    s.add_argument("--png", required=True, help="figure PNG to write")
    s.add_argument("--svg", required=True, help="figure SVG to write")
    s.add_argument("--json", required=True, help="every candidate, the front and the choice (JSON)")
    s.add_argument("--device", required=True, help="the device the latencies were measured on")
    s.add_argument("--options", type=json_arg, default={}, help="the config's `search` keys, as JSON")

    s = add_figure(sub, "roofline-figure", cmd_roofline_figure, "achieved GFLOP/s per variant against this CPU's measured peak")
    add_entries(s)
    s.add_argument("--peak", required=True, help="this CPU's measured peaks (cpu-peak's JSON)")

    s = add_figure(sub, "sensitivity-figure", cmd_sensitivity_figure, "per-layer sensitivity figure, chosen layers marked")
    s.add_argument("--sensitivity", required=True, help="the sensitivity ranking (JSON)")
    s.add_argument("--selection", required=True, help="the precision selection (JSON)")
    s.add_argument("--title", required=True, help="figure title")

    s = add_command(sub, "summary", cmd_summary, "the report's landing page: verdicts and run metadata (HTML)")
    s.add_argument("--verdicts", required=True, help="the paper-vs-reproduced table (CSV)")
    s.add_argument("--table2", required=True, help="Table 2 (CSV)")
    s.add_argument("--bench", required=True, help="one benchmark JSON, for the run's provenance")
    s.add_argument("--config", type=json_arg, required=True, help="the workflow's config, as JSON")
    s.add_argument("--isa", default=None, help="the does-int8-pay table (int8_by_isa.csv), with emulated devices")
    s.add_argument("--out", required=True, help="HTML page to write")

    s = add_command(sub, "publish-results", cmd_publish_results,
                    "copy a finished run's tables, figures and summary into docs/results/<date>-<name>-<cpu>/")
    s.add_argument("results", help="the folder the workflow ran in (holds results/ and reports/)")
    s.add_argument("--name", required=True, help="what the run was, e.g. the config's name (fashion_mnist)")
    s.add_argument("--out", default="docs/results", help="where the dated folder goes (default: %(default)s)")
    s.add_argument("--command", default="snakemake --cores 2", help="the command that made the run, for its README")
