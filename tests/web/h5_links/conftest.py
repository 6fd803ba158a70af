"""The official-account page fixtures (tests/web/h5_support.py)."""
from tests.web.h5_support import _h5_sandbox, h5, h5_merchant_key  # noqa: F401 (fixtures)
