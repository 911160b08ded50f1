"""Semantic item search: catalogue embedded by the text encoder, cosine top-k in ONNX."""
