# Graph optimization (the `graph_opt_int8` variant), one rule per step so each result is cached
# on its own inputs: pruning (Keras, fine-tune) -> sensitivity of every layer to int8 (on the
# pruned float .tflite) -> selection of the higher-precision layers (accuracy budget, measured
# latency, node order) -> `convert` builds the variant from these. Options: `graph_opt` in the
# config, per experiment overridable under experiments.<name>.graph_opt.


rule prune:
    input:
        model="results/models/{experiment}/model.keras",
        data=experiment_data,
    output:
        model="results/models/{experiment}/pruned.keras",
        info="results/models/{experiment}/pruning.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
        options=lambda w: as_json(graph_opt_options(w.experiment)["pruning"]),
        seed=config["seed"],
    log:
        "logs/graph_opt/{experiment}/prune.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/prune.tsv"
    threads: lambda w: graph_opt_options(w.experiment)["pruning"].get("threads", 2)
    # pruning is a fine-tune of the trained model: it asks a cluster for what training does
    resources:
        mem_mb=lambda w: cluster_request(w.experiment)["mem_mb"],
        runtime=lambda w: cluster_request(w.experiment)["runtime"],
        gpu=lambda w: cluster_request(w.experiment)["gpus"],
    conda:
        "../../envs/tf.yaml"
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
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
        options=lambda w: as_json(graph_opt_options(w.experiment)),
        seed=config["seed"],
    log:
        "logs/graph_opt/{experiment}/sensitivity.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/sensitivity.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    conda:
        "../../envs/tf.yaml"
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
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
        options=lambda w: as_json(graph_opt_options(w.experiment)),
        seed=config["seed"],
    log:
        "logs/graph_opt/{experiment}/select_precision.log",
    benchmark:
        "results/jobstats/graph_opt/{experiment}/select_precision.tsv"
    threads: all_cores()
    resources:
        bench_slots=1,
        mem_mb=4000,
        runtime=120,
        slurm_extra="--exclusive",
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt select-precision --float {input.float:q} --sensitivity {input.sensitivity:q}"
        " --reference {input.reference:q} --data {params.data:q} --out-json {output.json:q} --out-csv {output.csv:q}"
        " --options {params.options:q} --seed {params.seed} > {log:q} 2>&1"
