# Stage 6: tables and figures, built only from result files (every number traceable).
# Local rules: seconds of work, which on a cluster would wait longer in the queue than they run.


rule table2:
    input:
        entry_files(bench_entries(), ("bench", "tflite_info", "eval")),
    output:
        csv=report(
            "reports/tables/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
        md="reports/tables/table2.md",
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
        " > {log:q} 2>&1"


rule table1:
    input:
        entry_files(model_entries(), ("metrics", "meta")),
    output:
        csv=report(
            "reports/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        md="reports/tables/table1.md",
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
        " > {log:q} 2>&1"


rule accuracy_table:
    input:
        entry_files(eval_entries(EVAL_SPLITS), ("eval",)),
    output:
        csv=report(
            "reports/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
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
            category="Figures",
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
            category="Figures",
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
