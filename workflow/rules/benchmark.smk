# Stage 5: latency, memory and CPU benchmark of one .tflite on one device profile, in a
# fresh TF-free process. The job claims every core Snakemake was given, and the
# `bench_slots` resource (limited to 1 in profiles/default) keeps benchmarks from ever
# running two at once, so nothing else disturbs a measurement.


rule benchmark:
    input:
        "results/tflite/{experiment}/{variant}.tflite",
    output:
        "results/bench/{device}/{experiment}/{variant}.json",
    params:
        options=as_json({k: v for k, v in BENCH.items() if k != "devices"}),
    log:
        "logs/benchmark/{device}/{experiment}/{variant}.log",
    threads: all_cores()
    resources:
        bench_slots=1,
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/litert.yaml"
    shell:
        "python -m mobopt bench --model {input:q} --device {wildcards.device} --out {output:q}"
        " --options {params.options:q} > {log:q} 2>&1"
