# Stage 4: accuracy and loss on the full test split, for every .tflite variant (LiteRT,
# TF-free, batch 1, inputs quantized with the tensor's scale and zero point) and for the
# Keras model, so the Keras-to-TFLite gap is visible.


rule evaluate_tflite:
    input:
        model="results/tflite/{experiment}/{variant}.tflite",
        data=experiment_data,
    output:
        "results/eval/{experiment}/{variant}.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
    log:
        "logs/evaluate/{experiment}/{variant}.log",
    benchmark:
        "results/jobstats/evaluate/{experiment}/{variant}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/litert.yaml"
    shell:
        "python -m mobopt evaluate --model {input.model:q} --data {params.data:q} --out {output:q} > {log:q} 2>&1"


rule evaluate_keras:
    input:
        model="results/models/{experiment}/model.keras",
        data=experiment_data,
    output:
        "results/eval/{experiment}/keras.json",
    params:
        data=lambda w, input: os.path.dirname(input.data[0]),
    log:
        "logs/evaluate/{experiment}/keras.log",
    benchmark:
        "results/jobstats/evaluate/{experiment}/keras.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/tf.yaml"
    shell:
        "python -m mobopt evaluate --model {input.model:q} --data {params.data:q} --out {output:q} > {log:q} 2>&1"
