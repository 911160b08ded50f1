"""Sentence encoders (all-MiniLM-L6-v2, all-mpnet-base-v2) as self-contained ONNX graphs,
built from safetensors without PyTorch."""
