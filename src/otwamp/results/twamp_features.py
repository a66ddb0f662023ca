"""What the RFC 6038 and RFC 7750 modes let a Session-Sender see, per session.

DSCP and ECN Monitoring (RFC 7750 §2.2.1) reports, in each reply, the DS
field the reflector received: the forward path's marking. The reply's own
DS field, as our socket received it, is the backward path's. Each is
compared with the marking the session asked for (the DSCP of the Type-P
Descriptor, RFC 4656 §3.5, and Not-ECT: we send no ECN codepoint and the
reflector sets none, RFC 7750 §2.2.1). Reflect Octets (RFC 6038 §5.2.1)
returns octets we chose: replies whose octets differ are counted.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from otwamp.wire.twamp_features import split_dscp_ecn

NOT_ECT = 0  # RFC 3168 §5
ECN_NAMES = {0: "Not-ECT", 1: "ECT(1)", 2: "ECT(0)", 3: "CE"}  # RFC 3168 §5


@dataclass(slots=True)
class FeatureTally:
    """Per-session counts of the RFC 6038 / RFC 7750 observations."""

    dscp: int  # the DSCP sent and asked of the reflector (Type-P Descriptor)
    dscp_ecn: bool = False  # RFC 7750 in use: the reflector reports S-DSCP-ECN
    reflect_length: int = 0  # RFC 6038 octets the reflector returns
    forward: Counter[tuple[int, int]] = field(default_factory=Counter)  # (DSCP, ECN) reported
    backward: Counter[tuple[int, int]] = field(default_factory=Counter)  # (DSCP, ECN) received
    reflected_ok: int = 0
    reflected_wrong: int = 0

    def saw(self, reported: int | None, received_tos: int | None) -> None:
        """One reply: its S-DSCP-ECN (None without RFC 7750) and its own DS field (or None)."""
        if reported is not None:
            self.forward[split_dscp_ecn(reported)] += 1
        if received_tos is not None and self.dscp_ecn:
            self.backward[split_dscp_ecn(received_tos)] += 1

    def saw_reflected(self, matches: bool) -> None:
        """One reply's reflected octets were (not) the ones sent (RFC 6038 §5.2.1)."""
        if matches:
            self.reflected_ok += 1
        else:
            self.reflected_wrong += 1

    def changed(self, counts: Counter[tuple[int, int]]) -> int:
        """Replies whose marking differs from the one the session asked for."""
        return sum(n for mark, n in counts.items() if mark != (self.dscp, NOT_ECT))

    def to_json(self) -> dict[str, Any]:
        """The observations as JSON-ready values (empty when no mode was in use)."""
        out: dict[str, Any] = {}
        if self.dscp_ecn:
            expected = {"dscp": self.dscp, "ecn": NOT_ECT}
            out["dscp_ecn"] = {
                direction: {
                    "expected": expected,
                    "seen": [
                        {"dscp": dscp, "ecn": ecn, "packets": n}
                        for (dscp, ecn), n in sorted(counts.items())
                    ],
                    "changed": self.changed(counts),
                }
                for direction, counts in (("forward", self.forward), ("backward", self.backward))
            }
        if self.reflect_length:
            out["reflect_octets"] = {
                "length": self.reflect_length,
                "returned": self.reflected_ok,
                "wrong": self.reflected_wrong,
            }
        return out

    def lines(self) -> list[str]:
        """Report lines: the marking seen each way and whether it changed on the path."""
        lines = []
        if self.dscp_ecn:
            for name, counts in (("forward", self.forward), ("backward", self.backward)):
                seen = ", ".join(
                    f"DSCP {dscp} {ECN_NAMES[ecn]} x{n}"
                    for (dscp, ecn), n in sorted(counts.items())
                )
                changed = self.changed(counts)
                verdict = f"{changed} changed on the path" if changed else "unchanged"
                lines.append(
                    f"DSCP/ECN {name}: sent DSCP {self.dscp} Not-ECT; "
                    f"seen {seen or 'nothing'} ({verdict}; RFC 7750)"
                )
        if self.reflect_length:
            lines.append(
                f"reflected octets ({self.reflect_length}): {self.reflected_ok} returned intact, "
                f"{self.reflected_wrong} altered (RFC 6038)"
            )
        return lines
