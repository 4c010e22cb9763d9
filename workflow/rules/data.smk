# Stage 1: datasets. One download and one prepare rule per dataset in use, generated from
# the package's dataset registry: adding a dataset needs no edit here.
# Downloads are local rules: compute nodes often have no internet. An archive is kept beside
# its extracted tree (data/raw/<dataset>/tree) so its checksum can be checked again.


for _ds in USED_DATASETS:

    rule:
        name:
            f"download_{_ds}"
        localrule: True
        output:
            **raw_outputs(_ds),
        params:
            dataset=_ds,
            options=as_json(config["datasets"][_ds]),
        log:
            f"logs/download/{_ds}.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=240,
        conda:
            "../../envs/data.yaml"
        shell:
            "python -m mobopt download --dataset {params.dataset} --out $(dirname {output.record:q})"
            " --options {params.options:q} > {log:q} 2>&1"

    rule:
        name:
            f"prepare_{_ds}"
        input:
            unpack(lambda w, ds=_ds: dict(getattr(rules, f"download_{ds}").output)),
        output:
            prepared_files(_ds),
        params:
            dataset=_ds,
            options=as_json(config["datasets"][_ds]),
            raw=lambda w, input: os.path.dirname(input.record),
            out=lambda w, output: os.path.dirname(output[0]),
            seed=config["seed"],
        log:
            f"logs/prepare/{_ds}.log",
        benchmark:
            f"results/jobstats/prepare/{_ds}.tsv"
        threads: lambda w, ds=_ds: config["datasets"][ds].get("workers", 2)
        resources:
            mem_mb=4000,
            runtime=120,
        conda:
            "../../envs/data.yaml"
        shell:
            "python -m mobopt prepare --dataset {params.dataset} --raw {params.raw:q} --out {params.out:q}"
            " --options {params.options:q} --seed {params.seed} --workers {threads} > {log:q} 2>&1"


rule download_weights:
    localrule: True
    output:
        weights="data/weights/{weights_file}",
        record="data/weights/{weights_file}.json",
    wildcard_constraints:
        weights_file=r"[A-Za-z0-9_.\-]+\.h5",
    params:
        options=as_json(config.get("pretrained", {})),
        out=lambda w, output: os.path.dirname(output.weights),
    log:
        "logs/download/weights/{weights_file}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m mobopt fetch-weights --name {wildcards.weights_file} --out {params.out:q}"
        " --options {params.options:q} > {log:q} 2>&1"
