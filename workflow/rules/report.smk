# Tables, figures and the report's landing page, built only from result files (every number
# traceable to a JSON). Categories are numbered so the report lists them in this order. Local
# rules: seconds of work, which on a cluster would wait longer in the queue than they run; one
# thread (Snakemake's default) and the same small request each.

REPORT_ENV = "../../envs/report.yaml"
REPORT_RESOURCES = {"mem_mb": 2000, "runtime": 15}
PAPER_DATA = workflow.source_path("../../src/mobopt/report/data/paper.yaml")
STUDY_DATA = workflow.source_path("../../src/mobopt/report/data/lightweight_cnns.yaml")


localrules:
    table2,
    paper_table2,
    paper_vs_reproduced,
    second_study_table,
    op_profile_table,
    table1,
    accuracy_table,
    training_curves,
    evaluation_figure,
    latency_figure,
    pareto_figure,
    size_figure,
    roofline_figure,
    summary,
    sensitivity_figure,
    variants_table,
    cost_table,
    search,
    isa_table,


rule table2:
    input:
        bench_entry_files(("bench", "tflite_info", "eval")),
    output:
        csv=report(
            "reports/tables/table2.csv",
            caption="../report/table2.rst",
            category="2 Tables",
        ),
        md="reports/tables/table2.md",
        tex="reports/tables/table2.tex",
    log:
        "logs/report/table2.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.bench_entries()),
    shell:
        "python -m mobopt table2 --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule paper_table2:
    input:
        PAPER_DATA,
    output:
        csv=report(
            "reports/tables/table2_paper.csv",
            caption="../report/table2_paper.rst",
            category="2 Tables",
        ),
        md="reports/tables/table2_paper.md",
        tex="reports/tables/table2_paper.tex",
    log:
        "logs/report/table2_paper.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    shell:
        "python -m mobopt paper-table2 --out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q}"
        " > {log:q} 2>&1"


rule paper_vs_reproduced:
    input:
        bench_entry_files(("bench", "tflite_info", "eval")),
        PAPER_DATA,
    output:
        csv=report(
            "reports/tables/paper_vs_reproduced.csv",
            caption="../report/paper_vs_reproduced.rst",
            category="2 Tables",
        ),
        md="reports/tables/paper_vs_reproduced.md",
        tex="reports/tables/paper_vs_reproduced.tex",
    log:
        "logs/report/paper_vs_reproduced.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.bench_entries()),
    shell:
        "python -m mobopt paper-vs-reproduced --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule second_study_table:
    input:
        PLAN.study_files(PLAN.study_entries()),
        STUDY_DATA,
    output:
        csv=report(
            "reports/tables/second_study.csv",
            caption="../report/second_study.rst",
            category="2 Tables",
        ),
        md="reports/tables/second_study.md",
    log:
        "logs/report/second_study.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.study_entries()),
    shell:
        "python -m mobopt second-study-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule op_profile_table:
    input:
        bench_entry_files(("bench",)),
    output:
        csv=report(
            "reports/tables/op_profile.csv",
            caption="../report/op_profile.rst",
            category="2 Tables",
        ),
        md="reports/tables/op_profile.md",
    log:
        "logs/report/op_profile.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.bench_entries()),
    shell:
        "python -m mobopt op-profile-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule table1:
    input:
        PLAN.entry_files(PLAN.model_entries(), ("metrics", "meta")),
    output:
        csv=report(
            "reports/tables/table1.csv",
            caption="../report/table1.rst",
            category="2 Tables",
        ),
        md="reports/tables/table1.md",
        tex="reports/tables/table1.tex",
    log:
        "logs/report/table1.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.model_entries()),
    shell:
        "python -m mobopt table1 --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule accuracy_table:
    input:
        PLAN.entry_files(PLAN.eval_entries(PLAN.eval_split_names), ("eval",)),
    output:
        csv=report(
            "reports/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="2 Tables",
        ),
        md="reports/tables/accuracy.md",
    log:
        "logs/report/accuracy.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.eval_entries(PLAN.eval_split_names)),
    shell:
        "python -m mobopt accuracy-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule training_curves:
    input:
        "results/models/{experiment}/history.csv",
    output:
        png=report(
            "reports/figures/training_curves_{experiment}.png",
            caption="../report/training_curves.rst",
            category="3 Figures",
            subcategory="Training",
        ),
        svg="reports/figures/training_curves_{experiment}.svg",
    log:
        "logs/report/training_curves_{experiment}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        title=experiment_label,
    shell:
        "python -m mobopt training-curves --history {input:q} --title {params.title:q}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule evaluation_figure:
    input:
        PLAN.entry_files(PLAN.eval_entries(), ("eval",)),
    output:
        png=report(
            "reports/figures/fig{n}_{metric}.png",
            caption="../report/fig_eval.rst",
            category="3 Figures",
            subcategory="Accuracy and loss",
        ),
        svg="reports/figures/fig{n}_{metric}.svg",
    log:
        "logs/report/fig{n}_{metric}.log",
    wildcard_constraints:
        n="2|3",
        metric="accuracy|loss",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.eval_entries()),
    shell:
        "python -m mobopt evaluation-figure --entries {params.entries:q} --metric {wildcards.metric}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule latency_figure:
    input:
        device_bench_files("bench"),
    output:
        png=report(
            "reports/figures/latency_{device}.png",
            caption="../report/latency.rst",
            category="3 Figures",
            subcategory="Latency",
        ),
        svg="reports/figures/latency_{device}.svg",
    log:
        "logs/report/latency_{device}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=device_bench_entries,
    shell:
        "python -m mobopt latency-figure --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule pareto_figure:
    input:
        device_bench_files("bench", "eval"),
    output:
        png=report(
            "reports/figures/pareto_{device}.png",
            caption="../report/pareto.rst",
            category="3 Figures",
            subcategory="Accuracy vs latency",
        ),
        svg="reports/figures/pareto_{device}.svg",
    log:
        "logs/report/pareto_{device}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=device_bench_entries,
    shell:
        "python -m mobopt pareto-figure --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


# The accuracy-gated search: per device and model family (a trained model and the experiments
# pruned or distilled from it), every variant against the family's float32, the Pareto front of
# accuracy, latency and size, and the fastest candidate within `search.accuracy_budget_pp`.
rule search:
    input:
        device_bench_files("bench", "eval"),
    output:
        json="reports/tables/search_{device}.json",
        csv="reports/tables/search_{device}.csv",
        md=report(
            "reports/tables/search_{device}.md",
            caption="../report/search.rst",
            category="2 Tables",
            subcategory="Search",
        ),
        png=report(
            "reports/figures/search_{device}.png",
            caption="../report/search.rst",
            category="3 Figures",
            subcategory="Search",
        ),
        svg="reports/figures/search_{device}.svg",
    log:
        "logs/report/search_{device}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=search_entries,
        options=search_options,
    shell:
        "python -m mobopt search --entries {params.entries:q} --options {params.options:q} --device {wildcards.device}"
        " --json {output.json:q} --out-csv {output.csv:q} --out-md {output.md:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule size_figure:
    input:
        PLAN.entry_files(PLAN.bench_entries(PLAN.devices[:1]), ("tflite_info",)),
    output:
        png=report(
            "reports/figures/size.png",
            caption="../report/size.rst",
            category="3 Figures",
            subcategory="Size",
        ),
        svg="reports/figures/size.svg",
    log:
        "logs/report/size.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.bench_entries(PLAN.devices[:1])),
    shell:
        "python -m mobopt size-figure --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule roofline_figure:
    input:
        entries=device_bench_files("bench", "tflite_info"),
        peak="results/bench/{device}/cpu_peak.json",
    output:
        png=report(
            "reports/figures/roofline_{device}.png",
            caption="../report/roofline.rst",
            category="3 Figures",
            subcategory="Roofline",
        ),
        svg="reports/figures/roofline_{device}.svg",
    log:
        "logs/report/roofline_{device}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=device_bench_entries,
    shell:
        "python -m mobopt roofline-figure --entries {params.entries:q} --peak {input.peak:q}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule summary:
    input:
        unpack(summary_inputs),
    output:
        report(
            "reports/summary.html",
            caption="../report/summary.rst",
            category="1 Summary",
            labels={"page": "what was reproduced, run metadata"},
        ),
    log:
        "logs/report/summary.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        config=as_json(config),
        isa=summary_isa_arg,
    shell:
        "python -m mobopt summary --verdicts {input.verdicts:q} --table2 {input.table2:q} --bench {input.bench:q}"
        " --config {params.config:q}{params.isa} --out {output:q} > {log:q} 2>&1"


rule sensitivity_figure:
    input:
        sensitivity="results/graph_opt/{experiment}/sensitivity.json",
        selection="results/graph_opt/{experiment}/selection.json",
    output:
        png=report(
            "reports/figures/sensitivity_{experiment}.png",
            caption="../report/sensitivity_figure.rst",
            category="3 Figures",
            subcategory="Graph optimization",
        ),
        svg="reports/figures/sensitivity_{experiment}.svg",
    log:
        "logs/report/sensitivity_{experiment}.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        title=experiment_label,
    shell:
        "python -m mobopt sensitivity-figure --sensitivity {input.sensitivity:q} --selection {input.selection:q}"
        " --title {params.title:q} --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


# Does int8 pay here? Every variant against float32 on every device, hosts and phones by latency, emulated
# ARM CPUs by instructions per invoke, each column with its instruction set (src/mobopt/report/isa.py).
rule isa_table:
    input:
        PLAN.entry_files(PLAN.isa_entries(), ("bench",)),
    output:
        csv="reports/tables/int8_by_isa.csv",
        md=report(
            "reports/tables/int8_by_isa.md",
            caption="../report/int8_by_isa.rst",
            category="2 Tables",
        ),
    log:
        "logs/report/int8_by_isa.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.isa_entries()),
        options=as_json(config.get("search", {})),
    shell:
        "python -m mobopt isa-table --entries {params.entries:q} --options {params.options:q} --out-csv {output.csv:q}"
        " --out-md {output.md:q} > {log:q} 2>&1"


rule variants_table:
    input:
        bench_entry_files(("bench", "tflite_info", "eval")),
    output:
        csv=report(
            "reports/tables/variants.csv",
            caption="../report/variants.rst",
            category="2 Tables",
        ),
        md="reports/tables/variants.md",
    log:
        "logs/report/variants.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.bench_entries()),
    shell:
        "python -m mobopt variants-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule cost_table:
    input:
        PLAN.cost_table_inputs(),
    output:
        csv=report(
            "reports/tables/cost.csv",
            caption="../report/cost.rst",
            category="2 Tables",
        ),
        md="reports/tables/cost.md",
    log:
        "logs/report/cost.log",
    conda:
        REPORT_ENV
    resources:
        **REPORT_RESOURCES,
    params:
        entries=as_json(PLAN.cost_entries()),
        devices=" ".join(PLAN.devices),
    shell:
        "python -m mobopt cost-table --entries {params.entries:q} --devices {params.devices} --out-csv {output.csv:q}"
        " --out-md {output.md:q} > {log:q} 2>&1"
