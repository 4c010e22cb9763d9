# Stage 5: latency, memory and CPU benchmarks (src/mobopt/protocol.py). One job per
# (device, experiment) measures all of the experiment's variants together, so their repeats
# can be interleaved (A B A B): drift of the machine hits every variant alike. Each
# measurement is a fresh TF-free process pinned to the device's cores. The job claims every
# core Snakemake was given, and the `bench_slots` resource (limited to 1 in
# profiles/default) keeps benchmarks from ever running two at once.
# On a SLURM cluster (profiles/slurm) benchmark jobs also ask for their node exclusively:
# `slurm_extra` is read only by the SLURM executor, so local runs are unchanged. Without
# --cores (cluster runs) they ask for at least the device profile's threads.


for _exp, _spec in EXPERIMENTS.items():

    rule:
        name:
            f"benchmark_{_exp}"
        input:
            unpack(lambda w, exp=_exp: bench_inputs(exp, w.device)),
        output:
            **{v: f"results/bench/{{device}}/{_exp}/{v}.json" for v in _spec["variants"]},
        params:
            experiment=_exp,
            args=lambda w, input, output, exp=_exp: bench_args(exp, input, output),
            options=lambda w: as_json(bench_options(w.device)),
        log:
            f"logs/benchmark/{{device}}/{_exp}.log",
        benchmark:
            f"results/jobstats/benchmark/{{device}}/{_exp}.tsv"
        threads: lambda w: bench_threads(w.device)
        resources:
            bench_slots=1,
            mem_mb=4000,
            runtime=bench_runtime(),
            slurm_extra="--exclusive",
        conda:
            "../../envs/litert.yaml"
        shell:
            "python -m mobopt bench --device {wildcards.device} --experiment {params.experiment} {params.args}"
            " --options {params.options:q} > {log:q} 2>&1"


rule download_benchmark_model:
    localrule: True
    output:
        binary=ANDROID_TOOL,
        record=f"{ANDROID_TOOL}.json",
    params:
        options=as_json(BENCH.get("android", {})),
    log:
        "logs/download/benchmark_model.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m mobopt fetch-tool --out {output.binary:q} --options {params.options:q} > {log:q} 2>&1"


# The CPU's ceilings for the roofline figure (src/mobopt/peak.py): two GEMM models converted
# with TensorFlow, measured on each host device like any benchmark.


rule peak_models:
    output:
        float32="results/peak/fc_float32.tflite",
        int8="results/peak/fc_int8.tflite",
    params:
        out=lambda w, output: os.path.dirname(output.float32),
    log:
        "logs/report/peak_models.log",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt peak-models --out {params.out:q} > {log:q} 2>&1"


rule cpu_peak:
    input:
        float32="results/peak/fc_float32.tflite",
        int8="results/peak/fc_int8.tflite",
    output:
        "results/bench/{device}/cpu_peak.json",
    wildcard_constraints:
        device="|".join(HOST_DEVICES) or "none",
    log:
        "logs/benchmark/{device}/cpu_peak.log",
    threads: lambda w: bench_threads(w.device)
    resources:
        bench_slots=1,
        mem_mb=3000,
        runtime=20,
        slurm_extra="--exclusive",
    conda:
        "../../envs/litert.yaml"
    shell:
        "python -m mobopt cpu-peak --float32 {input.float32:q} --int8 {input.int8:q} --device {wildcards.device}"
        " --out {output:q} > {log:q} 2>&1"
