"""``lumen seed``: replay public data sets through Lumen's public APIs."""
