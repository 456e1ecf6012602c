"""The accounts tests use the HTTP API fixtures (client, make_token, auth, make_observation...)."""

from tests.api.conftest import *  # noqa: F401,F403  (pytest fixtures are found by name)
from tests.api.conftest import _node_id_shim  # noqa: F401  (autouse, private name)
