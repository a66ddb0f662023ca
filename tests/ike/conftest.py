"""Parametrizes IKE tests over the strongSwan 5.9.8 vectors."""

from typing import Any

import pytest

from .vectors import all_recorded, all_vectors, load


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``vector``/``psk_vector``: JSON files; ``recorded``/``encrypted``: (SK) messages."""
    for name, only_psk in (("vector", False), ("psk_vector", True)):
        if name in metafunc.fixturenames:
            vectors = [v for v in all_vectors() if not only_psk or v["psk_hex"]]
            metafunc.parametrize(name, vectors, ids=[v["name"] for v in vectors])
    for name, only_encrypted in (("recorded", False), ("encrypted", True)):
        if name in metafunc.fixturenames:
            recorded = [r for r in all_recorded() if not only_encrypted or "sk_iv" in r.message]
            ids = [f"{r.vector['name']}-{r.index}" for r in recorded]
            metafunc.parametrize(name, recorded, ids=ids)


@pytest.fixture
def rekey_vector() -> dict[str, Any]:
    """The run with an IKE SA rekey."""
    return load("psk-aes128-sha256-x25519-rekey")
