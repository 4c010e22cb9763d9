# Stage 4: accuracy and loss on each evaluation split (test, plus a dataset's own extra test
# sets such as ASL's official 28 images), for every .tflite variant (LiteRT, TF-free, batch 1,
# inputs quantized with the tensor's scale and zero point) and for the Keras model, so the
# Keras-to-TFLite gap is visible.


rule evaluate_tflite:
    input:
        model="results/tflite/{experiment}/{variant}.tflite",
        data=experiment_data,
    output:
        "results/eval/{experiment}/{split}/{variant}.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
    log:
        "logs/evaluate/{experiment}/{split}/{variant}.log",
    benchmark:
        "results/jobstats/evaluate/{experiment}/{split}/{variant}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/litert.yaml"
    shell:
        "python -m mobopt evaluate --model {input.model:q} --data {params.data:q} --split {wildcards.split}"
        " --out {output:q} > {log:q} 2>&1"


rule evaluate_keras:
    input:
        model="results/models/{experiment}/model.keras",
        data=experiment_data,
    output:
        "results/eval/{experiment}/{split}/keras.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
    log:
        "logs/evaluate/{experiment}/{split}/keras.log",
    benchmark:
        "results/jobstats/evaluate/{experiment}/{split}/keras.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt evaluate --model {input.model:q} --data {params.data:q} --split {wildcards.split}"
        " --out {output:q} > {log:q} 2>&1"
