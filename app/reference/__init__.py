"""Reference data shipped with the product (installed by migrations, edited by staff later).

Plain data, importing nothing of the project, so a migration can read it.
"""
