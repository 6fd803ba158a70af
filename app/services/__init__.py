"""Use cases of the domain, as plain functions: no Flask request objects, no jobs imports."""
