"""The mesh file every host shares: its members, and how an agent finds itself among them.

::

    [[members]]
    name = "a"                 # unique; also the default IKE identity, fqdn:a
    address = "192.0.2.1"      # an IP address: the agent's source and its servers' address
    groups = ["eu", "core"]    # optional: "group:eu" in a test's targets or sources
    twamp_port = 862           # optional, the defaults shown
    owamp_port = 861
    ike_port = 500
    ike_id = "fqdn:a.example"  # optional: the identity its certificate names

Adding a host to the mesh is adding its ``[[members]]`` table: its
certificate comes from the operator's CA, and no secret is shared per pair.
"""

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from otwamp.agent.tomlfile import Table, TomlFile
from otwamp.drivers.owamp_client import OWAMP_PORT
from otwamp.drivers.twamp_client import TWAMP_PORT
from otwamp.errors import ConfigError
from otwamp.ike.config import parse_identity
from otwamp.ike.framing import IKE_PORT

MEMBER_KEYS = {"name", "address", "groups", "twamp_port", "owamp_port", "ike_port", "ike_id"}


@dataclass(frozen=True)
class Member:
    """A host of the mesh."""

    name: str
    address: str
    groups: tuple[str, ...] = ()
    twamp_port: int = TWAMP_PORT
    owamp_port: int = OWAMP_PORT
    ike_port: int = IKE_PORT
    ike_id: str = ""  # "" means fqdn:NAME

    @property
    def identity(self) -> str:
        """The IKE identity its certificate must name."""
        return self.ike_id or f"fqdn:{self.name}"

    def port(self, protocol: str) -> int:
        """Its control port for "twamp" or "owamp"."""
        return self.twamp_port if protocol == "twamp" else self.owamp_port


@dataclass(frozen=True)
class Mesh:
    """The members, in the file's order."""

    path: Path
    members: tuple[Member, ...]

    def member(self, name: str) -> Member | None:
        """The member called ``name``."""
        return next((member for member in self.members if member.name == name), None)

    def group(self, name: str) -> tuple[Member, ...]:
        """The members of group ``name``."""
        return tuple(member for member in self.members if name in member.groups)

    def groups(self) -> set[str]:
        """Every group named."""
        return {group for member in self.members for group in member.groups}

    def find_self(self, name: str | None, address: str | None) -> Member:
        """This host: by name, else by address, else by host name, else by a local address."""
        if name is not None:
            member = self.member(name)
            if member is None:
                raise ConfigError(f"{self.path}: no member is called {name!r}")
            return member
        if address is not None:
            found = [member for member in self.members if _same(member.address, address)]
            if not found:
                raise ConfigError(f"{self.path}: no member has the address {address}")
            return found[0]
        host = socket.gethostname()
        for candidate in (host, host.split(".")[0]):
            if (member := self.member(candidate)) is not None:
                return member
        local = [member for member in self.members if _is_local(member.address)]
        if len(local) == 1:
            return local[0]
        if not local:
            raise ConfigError(
                f"{self.path}: this host ({host}) is no member: set [agent] name or address"
            )
        names = ", ".join(member.name for member in local)
        raise ConfigError(f"{self.path}: several members are this host ({names}): set [agent] name")


def _same(one: str, other: str) -> bool:
    try:
        return ipaddress.ip_address(one) == ipaddress.ip_address(other)
    except ValueError:
        return False


def _is_local(address: str) -> bool:
    """Whether this host has ``address`` (a UDP socket can bind it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
    except OSError:
        return False
    return True


def load_mesh(path: Path) -> Mesh:
    """Read and check a mesh file; errors name the file, line and key."""
    root = TomlFile.read(path, "mesh file").root()
    root.check_keys({"members"})
    members: list[Member] = []
    for table in root.tables("members"):
        member = _member(table)
        for other in members:
            if other.name == member.name:
                raise table.error("name", f"{member.name!r} is also an earlier member's name")
            if _same(other.address, member.address) and other.port("twamp") == member.port("twamp"):
                raise table.error("address", f"{member.address} is also {other.name!r}'s")
        members.append(member)
    if not members:
        raise root.error("members", "the mesh has no [[members]]")
    return Mesh(path, tuple(members))


def _member(table: Table) -> Member:
    table.check_keys(MEMBER_KEYS)
    name = table.string("name")
    if not name or name in ("mesh",) or name.startswith("group:"):
        raise table.error("name", f"{name!r} cannot name a member (it names targets)")
    address = table.string("address")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise table.error("address", f"{address!r} is not an IP address") from None
    ike_id = table.string("ike_id", "")
    if ike_id:
        table.convert("ike_id", parse_identity)
    twamp, owamp, ike = (table.integer(key, default, most=65535) for key, default in _PORTS)
    return Member(name, address, table.strings("groups"), twamp, owamp, ike, ike_id)


_PORTS = (("twamp_port", TWAMP_PORT), ("owamp_port", OWAMP_PORT), ("ike_port", IKE_PORT))
