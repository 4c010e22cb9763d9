# Stage 5: latency, memory and CPU benchmark of one .tflite on one device profile, in a
# fresh TF-free process. The job claims every core Snakemake was given, and the
# `bench_slots` resource (limited to 1 in profiles/default) keeps benchmarks from ever
# running two at once, so nothing else disturbs a measurement.
# On a SLURM cluster (profiles/slurm) the job also asks for its node exclusively:
# `slurm_extra` is read only by the SLURM executor, so local runs are unchanged. Without
# --cores (cluster runs) it asks for at least the device profile's threads.


rule benchmark:
    input:
        "results/tflite/{experiment}/{variant}.tflite",
    output:
        "results/bench/{device}/{experiment}/{variant}.json",
    params:
        options=as_json({k: v for k, v in BENCH.items() if k != "devices"}),
    log:
        "logs/benchmark/{device}/{experiment}/{variant}.log",
    threads: lambda w: max(all_cores(), device_registry.get(w.device).threads)
    resources:
        bench_slots=1,
        mem_mb=2000,
        runtime=60,
        slurm_extra="--exclusive",
    conda:
        "../../envs/litert.yaml"
    shell:
        "python -m mobopt bench --model {input:q} --device {wildcards.device} --out {output:q}"
        " --options {params.options:q} > {log:q} 2>&1"
