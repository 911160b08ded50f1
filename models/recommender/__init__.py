"""Sequence-aware recommender on MovieLens 100k with popularity and BPR-MF baselines."""
