"""Intent classifier: a fine-tuned sentence encoder (MPNet or MiniLM) + a trained head, with
out-of-scope detection."""
