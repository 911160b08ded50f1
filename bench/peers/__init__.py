"""Peer model servers run beside Lumen's inference server for the side-by-side benchmark."""
