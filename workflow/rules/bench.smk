# Benchmarks: latency, memory and CPU (src/mobopt/bench/protocol.py). One job per
# (device, experiment) measures all of the experiment's variants together, so their repeats
# can be interleaved (A B A B): drift of the machine hits every variant alike. Each
# measurement is a fresh TF-free process pinned to the device's cores. The job claims every
# core Snakemake was given, and the `bench_slots` resource (limited to 1 in
# profiles/default) keeps benchmarks from ever running two at once.
# On a SLURM cluster (profiles/slurm) benchmark jobs also ask for their node exclusively:
# `slurm_extra` is read only by the SLURM executor, so local runs are unchanged. Without
# --cores (cluster runs) they ask for at least the device profile's threads.


for _exp in EXPERIMENTS:

    rule:
        name:
            f"bench_{_exp}"
        input:
            unpack(bench_inputs(_exp)),
        output:
            **PLAN.bench_outputs(_exp),
        log:
            f"logs/benchmark/{{device}}/{_exp}.log",
        benchmark:
            f"results/jobstats/benchmark/{{device}}/{_exp}.tsv"
        conda:
            "../../envs/litert.yaml"
        threads: bench_threads
        resources:
            bench_slots=1,
            mem_mb=4000,
            runtime=PLAN.bench_runtime(),
            slurm_extra="--exclusive",
        params:
            experiment=_exp,
            args=bench_args(_exp),
            options=bench_options,
        shell:
            "python -m mobopt bench --device {wildcards.device} --experiment {params.experiment} {params.args}"
            " --options {params.options:q} > {log:q} 2>&1"


# The emulated ARM CPUs' toolchain (src/mobopt/bench/arm_toolchain.py): qemu-user 7.2 (apt-get, when
# missing), an arm64 Python unpacked from Debian packages, the aarch64 LiteRT wheels, the counting plugin.
# A local rule: it needs the package registries, which compute nodes often lack. Built once.
rule fetch_arm_toolchain:
    output:
        ARM_TOOLCHAIN,
    log:
        "logs/download/arm_toolchain.log",
    localrule: True
    conda:
        "../../envs/litert.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "python -m mobopt setup-arm-emulation --out {output:q} > {log:q} 2>&1"


rule fetch_benchmark_model:
    output:
        binary=ANDROID_TOOL,
        record=f"{ANDROID_TOOL}.json",
    log:
        "logs/download/benchmark_model.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        options=as_json(BENCH.get("android", {})),
    shell:
        "python -m mobopt fetch-benchmark-model --out {output.binary:q} --options {params.options:q} > {log:q} 2>&1"


# The CPU's ceilings for the roofline figure (src/mobopt/bench/peak.py), measured on each host
# device like any benchmark, from the GEMM models of optimize.smk's peak_models.


rule cpu_peak:
    input:
        float32="results/peak/fc_float32.tflite",
        int8="results/peak/fc_int8.tflite",
    output:
        "results/bench/{device}/cpu_peak.json",
    log:
        "logs/benchmark/{device}/cpu_peak.log",
    wildcard_constraints:
        device="|".join(PLAN.host_devices) or "none",
    conda:
        "../../envs/litert.yaml"
    threads: bench_threads
    resources:
        bench_slots=1,
        mem_mb=3000,
        runtime=20,
        slurm_extra="--exclusive",
    shell:
        "python -m mobopt cpu-peak --float32 {input.float32:q} --int8 {input.int8:q} --device {wildcards.device}"
        " --out {output:q} > {log:q} 2>&1"
