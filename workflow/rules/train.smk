# Stage 2: training. Seeded, deterministic (op determinism, pinned threads) and resumable
# (a checkpoint after every epoch in results/models/<experiment>/.checkpoint). Pretrained
# models load weights fetched by download_weights; with `epochs: 0` they are kept as they are.
# Memory, wall time and GPUs come from experiments.<name>.resources: a cluster request only,
# so changing it never retrains.


rule train:
    input:
        data=experiment_data,
        weights=lambda w: weight_files(w.experiment),
    output:
        model="results/models/{experiment}/model.keras",
        history="results/models/{experiment}/history.csv",
        metrics="results/models/{experiment}/metrics.json",
    params:
        # only what changes the model: editing variants or labels must not retrain
        spec=lambda w: as_json({"model": experiment(w)["model"], "train": experiment(w).get("train", {})}),
        data=lambda w, input: os.path.dirname(input.data[0]),
        seed=config["seed"],
        weights=WEIGHTS_DIR,
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "results/jobstats/train/{experiment}.tsv"
    threads: lambda w: EXPERIMENTS[w.experiment].get("train", {}).get("threads", 2)
    resources:
        mem_mb=lambda w: cluster_request(w.experiment)["mem_mb"],
        runtime=lambda w: cluster_request(w.experiment)["runtime"],
        gpu=lambda w: cluster_request(w.experiment)["gpus"],
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt train --experiment {wildcards.experiment} --data {params.data:q}"
        " --out $(dirname {output.model:q}) --spec {params.spec:q} --seed {params.seed} --weights {params.weights:q}"
        " > {log:q} 2>&1"
