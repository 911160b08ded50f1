"""The trainer: retrains the served recommender from the product's own events, on a schedule
and after enough new interactions, and publishes a version only when it beats the served one."""
