"""Intent classifier: MiniLM encoder + a trained head, with out-of-scope detection."""
