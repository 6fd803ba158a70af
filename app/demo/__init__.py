"""The demo city: realistic Chinese data for the demo and the dashboard."""
