"""The Non-ESP marker (RFC 3948 §2.2, DESIGN D8)."""

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike.framing import frame, needs_marker, unframe


@pytest.mark.parametrize(
    ("local", "remote", "marked"),
    [(500, 500, False), (500, 15500, False), (15600, 500, False), (15600, 15500, True)],
)
def test_marker_only_when_neither_port_is_500(local, remote, marked):
    assert needs_marker(local, remote) is marked


def test_frame_and_unframe():
    assert frame(b"ike", True) == b"\x00\x00\x00\x00ike"
    assert frame(b"ike", False) == b"ike"
    assert unframe(b"\x00\x00\x00\x00ike", True) == b"ike"
    assert unframe(b"ike", False) == b"ike"
    with pytest.raises(ProtocolError, match="ESP"):
        unframe(b"\x00\x00\x01\x00ike", True)
