"""all-MiniLM-L6-v2 as a self-contained ONNX graph, built from safetensors without PyTorch."""
