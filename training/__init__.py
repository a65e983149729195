"""Training side: phantoms, data sources, VGG19 fine-tuning, evaluation.

TensorFlow is imported inside the functions that need it, so ``cxr
phantoms`` and the data tooling start fast.
"""
