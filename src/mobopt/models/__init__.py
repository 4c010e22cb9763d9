"""Models: architectures (the registry), pretrained weights, training, TensorFlow set-up.

No package face: ``architectures`` imports Keras, and the workflow reads
``pretrained`` while it parses, which must stay TF-free.
"""
