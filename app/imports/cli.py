import click


@click.command("import-households")
def import_households_command():
    """Import households from an .xlsx file."""
    raise click.ClickException("not built yet")
