"""IKE-specific refinements of otwamp's exceptions (src/otwamp/errors.py)."""

from otwamp.errors import OtwampError, ProtocolError


class UnsupportedCriticalPayload(ProtocolError):
    """A payload of unknown type with the critical bit set (RFC 7296 §2.5)."""

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        super().__init__(
            f"unknown critical payload type {payload_type}",
            field="Next Payload",
            section="RFC 7296 §2.5",
        )


class StateError(OtwampError):
    """A local request that the IKE SA's state does not allow (a caller's mistake)."""


class NegotiationError(OtwampError):
    """An IKE SA could not be set up or deleted; the message names the peer and the reason."""
