"""Lumen's default models: built offline from public data, exported to ONNX.

Importing this package is cheap on purpose: the heavy training dependencies
(onnx, safetensors, scikit-learn) are imported only inside the modules that
build models, so ``models.runtime`` stays usable by the inference server.
"""
