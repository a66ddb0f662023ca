"""Each codec part is exactly what one control HMAC covers (RFC 4656 §3.2, DESIGN D13).

The A/E transcripts record the plaintext every HMAC was computed over; the
parts our codecs produce must be those octets, so the channel can seal each
part on its own. The only HMAC that covers more is the server's first, which
also covers Server-Start's last block (DESIGN D13); that is the channel's
business, and the part is still the rest of what it covers.
"""

from typing import Any

import pytest

from otwamp.wire.owamp_control import AcceptSession, RequestSession, StartAck, StartSessions
from otwamp.wire.owamp_fetch import FetchAck, FetchSession, decode_record_part
from otwamp.wire.owamp_stop import StopSessions
from tests.wire.owamp.vectors import HMAC, REPRODUCTION, REQUEST, SKIP_PART, load, messages

SECURED = ("owamp-A", "owamp-E")
SINGLE: dict[str, Any] = {
    "Accept-Session": AcceptSession,
    "Start-Sessions": StartSessions,
    "Start-Ack": StartAck,
    "Stop-Sessions": StopSessions,
    "Fetch-Session": FetchSession,
    "Fetch-Ack": FetchAck,
}


def covered(field: dict[str, object]) -> bytes:
    assert field["valid"] is True
    return bytes.fromhex(str(field["covered_plaintext_hex"]))


@pytest.mark.parametrize("vector", SECURED)
def test_every_hmac_covers_one_codec_part(vector: str):
    first_accept = True
    checked = 0
    for m in messages(vector):
        if m.name in (REQUEST, REPRODUCTION):
            fixed = m.plaintext[:96]
            slots = m.plaintext[96 + HMAC : -HMAC]
            parts = RequestSession.decode_parts(fixed, slots).encode_parts()
            assert covered(m.fields["hmac"]) == parts[0]
            assert covered(m.fields["slots_hmac"]) == parts[1]
            assert m.plaintext[96:112].hex() == m.fields["hmac"]["value"]
            assert m.plaintext[-HMAC:].hex() == m.fields["slots_hmac"]["value"]
            checked += 2
        elif m.name in SINGLE:
            body = SINGLE[m.name].decode(m.body).encode()
            expected = covered(m.fields["hmac"])
            if m.name == "Accept-Session" and first_accept:
                first_accept = False
                assert expected[:16] == messages(vector)[2].plaintext[32:48]  # Server-Start
                expected = expected[16:]
            assert expected == body
            assert m.plaintext[-HMAC:].hex() == m.fields["hmac"]["value"]
            checked += 1
        elif m.name == SKIP_PART:
            assert covered(m.fields["hmac"]) == m.body == b""
            checked += 1
        elif m.name.startswith("Fetch data: packet records"):
            records = decode_record_part(m.body, len(m.fields["records"]))
            assert covered(m.fields["hmac"]) == m.body
            assert len(records) == 5
            checked += 1
    assert checked == load(vector)["checks"]["control_hmacs_checked"] == 16
