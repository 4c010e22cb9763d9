# Evaluation: accuracy and loss on each evaluation split (test, plus a dataset's own extra test
# sets such as ASL's official 28 images), for every .tflite variant (LiteRT, TF-free, batch 1,
# inputs quantized with the tensor's scale and zero point), every .onnx variant (ONNX Runtime,
# TF-free, batch 1) and the Keras model (variant `keras`), so the Keras-to-runtime gap is visible.
# One rule: the command tells them apart by the file; only the environment, threads and memory differ.


rule evaluate:
    input:
        model=eval_model,
        data=experiment_data,
    output:
        "results/eval/{experiment}/{split}/{variant}.json",
    log:
        "logs/evaluate/{experiment}/{split}/{variant}.log",
    benchmark:
        "results/jobstats/evaluate/{experiment}/{split}/{variant}.tsv"
    wildcard_constraints:
        variant="|".join([*variant_registry.VARIANTS, "keras"]),
    conda:
        evaluate_env
    threads: evaluate_threads
    resources:
        mem_mb=evaluate_mem_mb,
        runtime=60,
    params:
        data=folder_of_first,
    shell:
        "python -m mobopt evaluate --model {input.model:q} --data {params.data:q} --split {wildcards.split}"
        " --out {output:q} > {log:q} 2>&1"
