"""What a local IKE endpoint offers and whom it trusts."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from otwamp.ike.proposal import Suite
from otwamp.ike.trust import Credentials, TrustStore
from otwamp.ike.wire.identity import Identity


@dataclass(frozen=True)
class Policy:
    """Our identity and suites (in order of preference), and how we authenticate.

    With ``credentials`` we sign our AUTH (RFC 7427), otherwise we use the PSK of the peer's
    identity (RFC 7296 §2.15: both ends use the same shared secret). Peers may authenticate
    with a PSK listed in ``psks`` or with a certificate that ``trust`` accepts.
    """

    local_id: Identity
    suites: tuple[Suite, ...]
    psks: Mapping[Identity, bytes] = field(default_factory=dict, repr=False)
    credentials: Credentials | None = None
    trust: TrustStore | None = None

    def __post_init__(self) -> None:
        if not self.suites:
            raise ValueError("a policy needs at least one suite")
