# Optimization: every variant of a trained model. `convert` makes one .tflite per (experiment,
# variant) from the package's variant registry, each with a JSON describing it; a variant the
# converter refuses is recorded (empty .tflite, JSON with the reason), not an error.
# The graph-optimized variant (graph_opt_int8) is built from one rule per step, so each result
# is cached on its own inputs: pruning (Keras, fine-tune) -> sensitivity of every layer to int8
# (on the pruned float .tflite) -> selection of the higher-precision layers (accuracy budget,
# measured latency, node order) -> convert. Options: `graph_opt` in the config, per experiment
# overridable under experiments.<name>.graph_opt.


rule convert:
    input:
        unpack(convert_inputs),
    output:
        tflite="results/tflite/{experiment}/{variant}.tflite",
        info="results/tflite/{experiment}/{variant}.json",
    log:
        "logs/convert/{experiment}/{variant}.log",
    benchmark:
        "results/jobstats/convert/{experiment}/{variant}.tsv"
    wildcard_constraints:
        variant=variants_of_runtime("litert"),
    conda:
        "../../envs/tf.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        data=folder_of_first,
        options=convert_options,
        seed=config["seed"],
        graph_opt=graph_opt_arg,
    shell:
        "python -m mobopt convert --model {input.model:q} --data {params.data:q} --variant {wildcards.variant}"
        " --out {output.tflite:q} --info {output.info:q} --options {params.options:q} --seed {params.seed}{params.graph_opt}"
        " > {log:q} 2>&1"


# ONNX Runtime, the second runtime: the same command exports the trained model with tf2onnx and
# quantizes it with ONNX Runtime's tools (src/mobopt/optimize/onnx_export.py); only the paths differ.
use rule convert as export_onnx with:
    output:
        tflite="results/onnx/{experiment}/{variant}.onnx",
        info="results/onnx/{experiment}/{variant}.json",
    log:
        "logs/export_onnx/{experiment}/{variant}.log",
    benchmark:
        "results/jobstats/export_onnx/{experiment}/{variant}.tsv"
    wildcard_constraints:
        variant=variants_of_runtime("onnxruntime"),


rule prune:
    input:
        model="results/models/{experiment}/model.keras",
        data=experiment_data,
    output:
        model="results/models/{experiment}/pruned.keras",
        info="results/models/{experiment}/pruning.json",
    log:
        "logs/graph_opt/{experiment}/prune.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/prune.tsv"
    conda:
        "../../envs/tf.yaml"
    threads: pruning_threads
    # pruning is a fine-tune of the trained model: it asks a cluster for what training does
    resources:
        mem_mb=cluster_mem_mb,
        runtime=cluster_runtime,
        gpu=cluster_gpus,
    params:
        data=folder_of_first,
        options=pruning_options,
        seed=config["seed"],
    shell:
        "python -m mobopt prune --model {input.model:q} --data {params.data:q} --out {output.model:q}"
        " --info {output.info:q} --options {params.options:q} --seed {params.seed} > {log:q} 2>&1"


rule sensitivity:
    input:
        model="results/models/{experiment}/pruned.keras",
        data=experiment_data,
    output:
        json="results/graph_opt/{experiment}/sensitivity.json",
        csv=report(
            "results/graph_opt/{experiment}/sensitivity.csv",
            caption="../report/sensitivity.rst",
            category="4 Graph optimization",
            subcategory="{experiment}",
        ),
        float="results/graph_opt/{experiment}/pruned_float32.tflite",
    log:
        "logs/graph_opt/{experiment}/sensitivity.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/sensitivity.tsv"
    conda:
        "../../envs/tf.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        data=folder_of_first,
        options=graph_opt_options,
        seed=config["seed"],
    shell:
        "python -m mobopt sensitivity --model {input.model:q} --data {params.data:q} --out-json {output.json:q}"
        " --out-csv {output.csv:q} --out-float {output.float:q} --options {params.options:q} --seed {params.seed}"
        " > {log:q} 2>&1"


# Benchmarks every candidate with the benchmark protocol (fresh TF-free processes, candidates
# interleaved): like the benchmark jobs it takes every core, the single `bench_slots` and, on a
# SLURM cluster, its node exclusively, so no other job disturbs its measurements.
rule select_precision:
    input:
        float="results/graph_opt/{experiment}/pruned_float32.tflite",
        sensitivity="results/graph_opt/{experiment}/sensitivity.json",
        reference="results/tflite/{experiment}/float32.tflite",
        data=experiment_data,
    output:
        json="results/graph_opt/{experiment}/selection.json",
        csv=report(
            "results/graph_opt/{experiment}/candidates.csv",
            caption="../report/candidates.rst",
            category="4 Graph optimization",
            subcategory="{experiment}",
        ),
    log:
        "logs/graph_opt/{experiment}/select_precision.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/select_precision.tsv"
    conda:
        "../../envs/tf.yaml"
    threads: all_cores()
    resources:
        bench_slots=1,
        mem_mb=4000,
        runtime=120,
        slurm_extra="--exclusive",
    params:
        data=folder_of_first,
        options=graph_opt_options,
        seed=config["seed"],
    shell:
        "python -m mobopt select-precision --float {input.float:q} --sensitivity {input.sensitivity:q}"
        " --reference {input.reference:q} --data {params.data:q} --out-json {output.json:q} --out-csv {output.csv:q}"
        " --options {params.options:q} --seed {params.seed} > {log:q} 2>&1"


# The GEMM models whose measured speed is this CPU's roofline ceiling (bench.smk: cpu_peak).
rule peak_models:
    output:
        float32="results/peak/fc_float32.tflite",
        int8="results/peak/fc_int8.tflite",
    log:
        "logs/report/peak_models.log",
    conda:
        "../../envs/tf.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        out=folder_of_output,
    shell:
        "python -m mobopt peak-models --out {params.out:q} > {log:q} 2>&1"
