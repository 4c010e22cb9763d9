# Stage 3: conversion to LiteRT (.tflite), one job per (experiment, variant) from the
# package's variant registry; each .tflite comes with a JSON describing it. A variant the
# converter refuses for a model is recorded (empty .tflite, JSON with the reason), not an error.
# graph_opt_int8 is built from the graph-optimization steps (graph_opt.smk).


rule convert:
    input:
        unpack(convert_inputs),
    output:
        tflite="results/tflite/{experiment}/{variant}.tflite",
        info="results/tflite/{experiment}/{variant}.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
        options=as_json(config.get("convert", {})),
        seed=config["seed"],
        graph_opt=lambda w, input: graph_opt_arg(w, input),
    log:
        "logs/convert/{experiment}/{variant}.log",
    benchmark:
        "results/jobstats/convert/{experiment}/{variant}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt convert --model {input.model:q} --data {params.data:q} --variant {wildcards.variant}"
        " --out {output.tflite:q} --info {output.info:q} --options {params.options:q} --seed {params.seed}{params.graph_opt}"
        " > {log:q} 2>&1"
