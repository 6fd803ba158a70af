"""Flask CLI commands of the domain (flask seed-demo, flask import-households, flask export-households, ...)."""
from __future__ import annotations

from flask import Flask


def register_cli(app: Flask) -> None:
    from app.demo.cli import seed_demo_command
    from app.imports.cli import export_households_command, import_households_command
    from app.staff_cli import staff_cli
    from wechat.doctor import doctor_command

    app.cli.add_command(seed_demo_command)
    app.cli.add_command(import_households_command)
    app.cli.add_command(export_households_command)
    app.cli.add_command(staff_cli)
    app.cli.add_command(doctor_command)
