"""The IKE SA database: established SAs by SPIs and by peer address (DESIGN D7)."""

from otwamp.ike.sa import IkeSa


class SaDatabase:
    """Established IKE SAs; answers only with records that hold the IPPM key, never SK_d."""

    def __init__(self) -> None:
        self._by_spis: dict[tuple[bytes, bytes], IkeSa] = {}

    def add(self, sa: IkeSa) -> None:
        """Record an established SA."""
        self._by_spis[(sa.spi_i, sa.spi_r)] = sa

    def remove(self, spi_i: bytes, spi_r: bytes) -> None:
        """Forget a deleted SA (sessions already using its key keep it, DESIGN D5)."""
        self._by_spis.pop((spi_i, spi_r), None)

    def by_spis(self, spi_i: bytes, spi_r: bytes) -> IkeSa | None:
        """The SA of an O/TWAMP KeyID's SPIi and SPIr (RFC 7717 §5.1)."""
        return self._by_spis.get((spi_i, spi_r))

    def by_peer(self, host: str) -> IkeSa | None:
        """The most recently established SA with the peer at ``host``."""
        matches = [sa for sa in self._by_spis.values() if sa.peer[0] == host]
        return max(matches, key=lambda sa: sa.established_at, default=None)

    def all(self) -> tuple[IkeSa, ...]:
        """Every established SA, oldest first."""
        return tuple(sorted(self._by_spis.values(), key=lambda sa: sa.established_at))
