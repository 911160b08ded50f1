"""Insights: what is trending and where demand is going, from the hourly trend windows.

``python -m services.insights`` serves ``lumen.v1.TrendService`` (Trending, Forecast) over gRPC;
see docs/insights.md.
"""
