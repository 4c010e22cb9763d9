# Training. Seeded, deterministic (op determinism, pinned threads) and resumable (a checkpoint
# after every epoch in results/models/<experiment>/.checkpoint). Pretrained models load weights
# fetched by fetch_weights; with `epochs: 0` they are kept as they are. An experiment with
# `structured_pruning` starts from its source experiment's trained model, made smaller, and
# fine-tunes it; one with `distillation` learns from its teacher experiment's trained model too. Memory, wall time and
# GPUs come from experiments.<name>.resources: a cluster request only, so changing it never
# retrains.


rule train:
    input:
        data=experiment_data,
        weights=weight_files,
        source=source_model,
        teacher=teacher_model,
    output:
        model="results/models/{experiment}/model.keras",
        history="results/models/{experiment}/history.csv",
        metrics="results/models/{experiment}/metrics.json",
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "results/jobstats/train/{experiment}.tsv"
    conda:
        "../../envs/tf.yaml"
    threads: train_threads
    resources:
        mem_mb=cluster_mem_mb,
        runtime=cluster_runtime,
        gpu=cluster_gpus,
    params:
        spec=train_spec,
        data=folder_of_first,
        seed=config["seed"],
        weights=WEIGHTS_DIR,
        source=source_arg,
    shell:
        "python -m mobopt train --experiment {wildcards.experiment} --data {params.data:q}"
        " --out $(dirname {output.model:q}) --spec {params.spec:q} --seed {params.seed} --weights {params.weights:q}"
        "{params.source} > {log:q} 2>&1"


# Parameters and multiply-accumulates (MACs) of the trained model, layer by layer and by kind, with
# the second study's standard vs depthwise-separable example (K=3, Cin=128, Cout=256): the cost
# table's inputs. Seconds of work on one thread; TensorFlow loads the model, so the tf environment.
rule model_cost:
    input:
        model="results/models/{experiment}/model.keras",
    output:
        cost="results/models/{experiment}/cost.json",
    log:
        "logs/model_cost/{experiment}.log",
    conda:
        "../../envs/tf.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    shell:
        "python -m mobopt model-cost --model {input.model:q} --out {output.cost:q} > {log:q} 2>&1"
