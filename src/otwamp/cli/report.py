"""What the reports of ``ping`` and ``owping`` add for RFC 7717 keys: the IKE SA's SPIs."""

from typing import Any


def ike_sa_json(spis: tuple[str, str] | None) -> dict[str, Any]:
    """``{"ike_sa": {"spi_i", "spi_r"}}`` when the key came from an IKE SA (D4), else nothing."""
    return {} if spis is None else {"ike_sa": {"spi_i": spis[0], "spi_r": spis[1]}}


def with_ike_sa(text: str, spis: tuple[str, str] | None) -> str:
    """The text report with the IKE SA's SPIs after its header lines."""
    if spis is None:
        return text
    return f"{text.rstrip()}\nkeyed by IKE SA SPIi={spis[0]} SPIr={spis[1]} (RFC 7717)\n"
