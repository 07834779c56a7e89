"""Entry point of tiercel-vault: one secret provider (hvac is imported on the first lookup)."""

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_secret_providers(register: Callable[[type], None]) -> None:
    from tiercel_vault.provider import VaultSecrets

    register(VaultSecrets)
