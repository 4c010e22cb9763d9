# Stage 6: tables, figures and the report's landing page, built only from result files (every
# number traceable to a JSON). Categories are numbered so the report lists them in this order.
# Local rules: seconds of work, which on a cluster would wait longer in the queue than they run.


rule table2:
    input:
        entry_files(bench_entries(), ("bench", "tflite_info", "eval")),
    output:
        csv=report(
            "reports/tables/table2.csv", caption="../report/table2.rst", category="2 Tables"
        ),
        md="reports/tables/table2.md",
        tex="reports/tables/table2.tex",
    params:
        entries=as_json(bench_entries()),
    log:
        "logs/report/table2.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt table2 --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule paper_table2:
    input:
        workflow.source_path("../../src/mobopt/data/paper.yaml"),
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
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt paper-table2 --out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q}"
        " > {log:q} 2>&1"


rule paper_vs_reproduced:
    input:
        entry_files(bench_entries(), ("bench", "tflite_info", "eval")),
        workflow.source_path("../../src/mobopt/data/paper.yaml"),
    output:
        csv=report(
            "reports/tables/paper_vs_reproduced.csv",
            caption="../report/paper_vs_reproduced.rst",
            category="2 Tables",
        ),
        md="reports/tables/paper_vs_reproduced.md",
        tex="reports/tables/paper_vs_reproduced.tex",
    params:
        entries=as_json(bench_entries()),
    log:
        "logs/report/paper_vs_reproduced.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt paper-vs --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule op_profile_table:
    input:
        entry_files(bench_entries(), ("bench",)),
    output:
        csv=report(
            "reports/tables/op_profile.csv",
            caption="../report/op_profile.rst",
            category="2 Tables",
        ),
        md="reports/tables/op_profile.md",
    params:
        entries=as_json(bench_entries()),
    log:
        "logs/report/op_profile.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt op-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"


rule table1:
    input:
        entry_files(model_entries(), ("metrics", "meta")),
    output:
        csv=report(
            "reports/tables/table1.csv", caption="../report/table1.rst", category="2 Tables"
        ),
        md="reports/tables/table1.md",
        tex="reports/tables/table1.tex",
    params:
        entries=as_json(model_entries()),
    log:
        "logs/report/table1.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt table1 --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-tex {output.tex:q} > {log:q} 2>&1"


rule accuracy_table:
    input:
        entry_files(eval_entries(EVAL_SPLITS), ("eval",)),
    output:
        csv=report(
            "reports/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="2 Tables",
        ),
        md="reports/tables/accuracy.md",
    params:
        entries=as_json(eval_entries(EVAL_SPLITS)),
    log:
        "logs/report/accuracy.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt accuracy --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
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
    params:
        title=lambda w: label(w.experiment),
    log:
        "logs/report/training_curves_{experiment}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot-history --history {input:q} --title {params.title:q}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule evaluation_figure:
    input:
        entry_files(eval_entries(), ("eval",)),
    output:
        png=report(
            "reports/figures/fig{n}_{metric}.png",
            caption="../report/fig_eval.rst",
            category="3 Figures",
            subcategory="Accuracy and loss",
        ),
        svg="reports/figures/fig{n}_{metric}.svg",
    wildcard_constraints:
        n="2|3",
        metric="accuracy|loss",
    params:
        entries=as_json(eval_entries()),
    log:
        "logs/report/fig{n}_{metric}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot-eval --entries {params.entries:q} --metric {wildcards.metric}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule latency_figure:
    input:
        lambda w: entry_files(bench_entries([w.device]), ("bench",)),
    output:
        png=report(
            "reports/figures/latency_{device}.png",
            caption="../report/latency.rst",
            category="3 Figures",
            subcategory="Latency",
        ),
        svg="reports/figures/latency_{device}.svg",
    params:
        entries=lambda w: as_json(bench_entries([w.device])),
    log:
        "logs/report/latency_{device}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot latency --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule pareto_figure:
    input:
        lambda w: entry_files(bench_entries([w.device]), ("bench", "eval")),
    output:
        png=report(
            "reports/figures/pareto_{device}.png",
            caption="../report/pareto.rst",
            category="3 Figures",
            subcategory="Accuracy vs latency",
        ),
        svg="reports/figures/pareto_{device}.svg",
    params:
        entries=lambda w: as_json(bench_entries([w.device])),
    log:
        "logs/report/pareto_{device}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot pareto --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule size_figure:
    input:
        entry_files(bench_entries(DEVICES[:1]), ("tflite_info",)),
    output:
        png=report(
            "reports/figures/size.png",
            caption="../report/size.rst",
            category="3 Figures",
            subcategory="Size",
        ),
        svg="reports/figures/size.svg",
    params:
        entries=as_json(bench_entries(DEVICES[:1])),
    log:
        "logs/report/size.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot size --entries {params.entries:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule roofline_figure:
    input:
        entries=lambda w: entry_files(bench_entries([w.device]), ("bench", "tflite_info")),
        peak="results/bench/{device}/cpu_peak.json",
    output:
        png=report(
            "reports/figures/roofline_{device}.png",
            caption="../report/roofline.rst",
            category="3 Figures",
            subcategory="Roofline",
        ),
        svg="reports/figures/roofline_{device}.svg",
    params:
        entries=lambda w: as_json(bench_entries([w.device])),
    log:
        "logs/report/roofline_{device}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot-roofline --entries {params.entries:q} --peak {input.peak:q}"
        " --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule summary:
    input:
        verdicts="reports/tables/paper_vs_reproduced.csv",
        table2="reports/tables/table2.csv",
        bench=bench_entries()[0]["bench"] if bench_entries() else [],
    output:
        report(
            "reports/summary.html",
            caption="../report/summary.rst",
            category="1 Summary",
            labels={"page": "what was reproduced, run metadata"},
        ),
    params:
        config=as_json(config),
    log:
        "logs/report/summary.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt summary --verdicts {input.verdicts:q} --table2 {input.table2:q} --bench {input.bench:q}"
        " --config {params.config:q} --out {output:q} > {log:q} 2>&1"


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
    params:
        title=lambda w: label(w.experiment),
    log:
        "logs/report/sensitivity_{experiment}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt plot-sensitivity --sensitivity {input.sensitivity:q} --selection {input.selection:q}"
        " --title {params.title:q} --png {output.png:q} --svg {output.svg:q} > {log:q} 2>&1"


rule variants_table:
    input:
        entry_files(bench_entries(), ("bench", "tflite_info", "eval")),
    output:
        csv=report(
            "reports/tables/variants.csv",
            caption="../report/variants.rst",
            category="2 Tables",
        ),
        md="reports/tables/variants.md",
    params:
        entries=as_json(bench_entries()),
    log:
        "logs/report/variants.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m mobopt graph-opt-table --entries {params.entries:q} --out-csv {output.csv:q} --out-md {output.md:q}"
        " > {log:q} 2>&1"
