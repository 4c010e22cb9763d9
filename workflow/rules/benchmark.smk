# Stage 5: latency, memory and CPU benchmarks (src/mobopt/protocol.py). One job per
# (device, experiment) measures all of the experiment's variants together, so their repeats
# can be interleaved (A B A B): drift of the machine hits every variant alike. Each
# measurement is a fresh TF-free process pinned to the device's cores. The job claims every
# core Snakemake was given, and the `bench_slots` resource (limited to 1 in
# profiles/default) keeps benchmarks from ever running two at once.


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
            options=as_json({k: v for k, v in BENCH.items() if k != "devices"}),
        log:
            f"logs/benchmark/{{device}}/{_exp}.log",
        benchmark:
            f"results/jobstats/benchmark/{{device}}/{_exp}.tsv"
        threads: all_cores()
        resources:
            bench_slots=1,
            mem_mb=4000,
            runtime=lambda w, exp=_exp: bench_runtime(exp),
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
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m mobopt fetch-tool --out {output.binary:q} --options {params.options:q} > {log:q} 2>&1"
