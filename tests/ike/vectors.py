"""The strongSwan 5.9.8 vectors (../shared/vectors/strongswan) and helpers to read them."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otwamp.ike.crypto.keymat import IkeKeys
from otwamp.ike.crypto.sk import Protection
from otwamp.ike.proposal import Suite
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.sa import SecurityAssociation

# The vectors live next to the repository (DESIGN.md: ../shared/vectors); OTWAMP_VECTORS overrides.
VECTOR_DIR = (
    Path(
        os.environ.get("OTWAMP_VECTORS", Path(__file__).resolve().parents[3] / "shared" / "vectors")
    )
    / "strongswan"
)
SK_NAMES = ("SK_d", "SK_ai", "SK_ar", "SK_ei", "SK_er", "SK_pi", "SK_pr")


@dataclass(frozen=True)
class Recorded:
    """One recorded IKE message and the vector it belongs to."""

    vector: dict[str, Any]
    message: dict[str, Any]
    index: int

    @property
    def raw(self) -> bytes:
        """The whole IKE message."""
        return bytes.fromhex(self.message["hex"])


def load(name: str) -> dict[str, Any]:
    """One vector by name."""
    data: dict[str, Any] = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    return data


def all_vectors() -> list[dict[str, Any]]:
    """Every vector, by file name; a missing vector directory is an error, not a skip."""
    paths = sorted(VECTOR_DIR.glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"no strongSwan vectors in {VECTOR_DIR} (set OTWAMP_VECTORS)")
    return [load(p.stem) for p in paths]


def all_recorded() -> list[Recorded]:
    """Every recorded message of every vector."""
    return [
        Recorded(vector, message, index)
        for vector in all_vectors()
        for index, message in enumerate(vector["messages"])
    ]


def suite(vector: dict[str, Any]) -> Suite:
    """The negotiated suite, from the SA payload of the IKE_SA_INIT response."""
    response = Message.decode(bytes.fromhex(vector["messages"][1]["hex"]))
    sa = response.find(SecurityAssociation)
    assert sa is not None
    return Suite.from_proposal(sa.proposals[0])


def recorded_keys(values: dict[str, Any]) -> IkeKeys:
    """SK_d ... SK_pr as recorded in ``ike_sa`` or ``rekey``."""
    return IkeKeys(*(bytes.fromhex(values[name]) for name in SK_NAMES))


def protection(recorded: Recorded) -> Protection:
    """The SK protection of the direction and SA that sent ``recorded``."""
    vector = recorded.vector
    rekey = vector["rekey"]
    header = recorded.message["header"]
    on_new_sa = rekey is not None and header["spi_i"] == rekey["new_spi_i"]
    keys = recorded_keys(rekey if on_new_sa else vector["ike_sa"])
    by_initiator = header["flags"] & 0x08
    chosen = suite(vector)
    return Protection(
        chosen.encryption,
        chosen.integrity,
        keys.sk_ei if by_initiator else keys.sk_er,
        keys.sk_ai if by_initiator else keys.sk_ar,
    )


class Replay:
    """A random source that hands out recorded octets, in order."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __call__(self, n: int) -> bytes:
        chunk, self._data = self._data[:n], self._data[n:]
        assert len(chunk) == n, "replay ran out of recorded octets"
        return chunk

    @property
    def exhausted(self) -> bool:
        return not self._data
