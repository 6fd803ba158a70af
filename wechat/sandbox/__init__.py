"""An offline stand-in for the parts of WeChat's servers the backend uses (DESIGN.md §4.4).

`create_sandbox_app(config)` builds it as an app of its own (`python -m wechat.sandbox`);
`create_sandbox_blueprint(config)` gives a Blueprint to mount under /sandbox. See
docs/sandbox.md for the endpoints and the faults it can inject.
"""
from .app import create_sandbox_app, create_sandbox_blueprint
from .config import DEFAULTS, build_config, config_from_env

__all__ = ["create_sandbox_app", "create_sandbox_blueprint", "DEFAULTS", "build_config", "config_from_env"]
