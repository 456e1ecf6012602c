"""A test plugin that cannot erase what it keeps."""

from core import hookimpl


@hookimpl
def erase_account(account_id):
    raise ConnectionError("the plugin's store is away")
