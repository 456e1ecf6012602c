"""The adversarial suite: attacks an outsider (or a curious contributor) would try, kept as
tests so what they found stays fixed. It reuses the HTTP API fixtures (``client``,
``make_token``, ``auth``, ``make_observation``, ...) of ``tests/api/conftest.py``."""

from tests.api.conftest import *  # noqa: F401,F403  (pytest fixtures are found by name)
from tests.api.conftest import _node_id_shim  # noqa: F401  (autouse, private name)
