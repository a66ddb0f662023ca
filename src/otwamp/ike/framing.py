"""The Non-ESP marker in front of IKE messages off port 500 (RFC 3948 §2.2, DESIGN D8)."""

from otwamp.errors import ProtocolError

IKE_PORT = 500
NON_ESP_MARKER = bytes(4)


def needs_marker(local_port: int, remote_port: int) -> bool:
    """strongSwan's rule: the marker is used whenever neither port is 500 (DESIGN D8)."""
    return IKE_PORT not in (local_port, remote_port)


def frame(message: bytes, marked: bool) -> bytes:
    """The UDP payload for an IKE message."""
    return NON_ESP_MARKER + message if marked else message


def unframe(datagram: bytes, marked: bool) -> bytes:
    """The IKE message in a UDP payload; without the marker it is ESP (RFC 3948 §2.2)."""
    if not marked:
        return datagram
    if not datagram.startswith(NON_ESP_MARKER):
        raise ProtocolError(
            "no Non-ESP marker: an ESP packet", field="Non-ESP Marker", section="RFC 3948 §2.2"
        )
    return datagram[len(NON_ESP_MARKER) :]
