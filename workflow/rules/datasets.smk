# Datasets: one download and one prepare rule per dataset in use, generated from the package's
# dataset registry (src/mobopt/datasets): adding a dataset needs no edit here.
# Downloads are local rules: compute nodes often have no internet. An archive is kept beside
# its extracted tree (data/raw/<dataset>/tree) so its checksum can be checked again.


for _ds in PLAN.used_datasets:

    rule:
        name:
            f"download_{_ds}"
        input:
            # `source: path`: the user's files, so fixing one reruns the download (else none)
            PLAN.source_inputs(_ds),
        output:
            **raw_outputs(_ds),
        log:
            f"logs/download/{_ds}.log",
        localrule: True
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=240,
        params:
            dataset=_ds,
            options=as_json(PLAN.dataset_options(_ds)),
        shell:
            "python -m mobopt download --dataset {params.dataset} --out $(dirname {output.record:q})"
            " --options {params.options:q} > {log:q} 2>&1"

    rule:
        name:
            f"prepare_{_ds}"
        input:
            unpack(download_outputs(_ds)),
        output:
            PLAN.prepared_files(_ds),
        log:
            f"logs/prepare/{_ds}.log",
        benchmark:
            f"results/jobstats/prepare/{_ds}.tsv"
        conda:
            "../../envs/data.yaml"
        threads: PLAN.prepare_workers(_ds)
        resources:
            mem_mb=4000,
            runtime=120,
        params:
            dataset=_ds,
            options=as_json(PLAN.dataset_options(_ds)),
            raw=folder_of_record,
            out=folder_of_output,
            seed=config["seed"],
        shell:
            "python -m mobopt prepare --dataset {params.dataset} --raw {params.raw:q} --out {params.out:q}"
            " --options {params.options:q} --seed {params.seed} --workers {threads} > {log:q} 2>&1"


rule fetch_weights:
    output:
        weights="data/weights/{weights_file}",
        record="data/weights/{weights_file}.json",
    log:
        "logs/download/weights/{weights_file}.log",
    wildcard_constraints:
        weights_file=r"[A-Za-z0-9_.\-]+\.h5",
    localrule: True
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        options=as_json(config.get("pretrained", {})),
        out=folder_of_output,
    shell:
        "python -m mobopt fetch-weights --name {wildcards.weights_file} --out {params.out:q}"
        " --options {params.options:q} > {log:q} 2>&1"
