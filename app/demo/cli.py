import click


@click.command("seed-demo")
def seed_demo_command():
    """Create the demo city (idempotent)."""
    raise click.ClickException("not built yet")
