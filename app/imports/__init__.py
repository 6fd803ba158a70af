"""Bulk imports of customer records."""
