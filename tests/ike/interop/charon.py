"""A charon-systemd instance in a network namespace, configured for one IKE connection."""

import hashlib
import hmac
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CHARON = "/usr/sbin/charon-systemd"
PLUGINS = (
    "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints sha1 sha2 hmac aes"
    " gmp curve25519 kdf kernel-netlink socket-default vici"
)
PSK = "ippm-test-psk-0123456789"

STRONGSWAN_CONF = """charon {{
    port = {port}
    port_nat_t = {nat_port}
    load_modular = no
    load = {plugins}
    install_routes = no
    install_virtual_ip = no
    retransmit_tries = 2
    plugins {{
        vici {{
            socket = unix://{dir}/charon.vici
        }}
    }}
    filelog {{
        keys {{
            path = {dir}/charon-keys.log
            append = no
            default = 0
            ike = 4
            ike_name = yes
            flush_line = yes
        }}
        main {{
            path = {dir}/charon.log
            append = no
            default = 1
            ike = 2
            cfg = 2
            ike_name = yes
            flush_line = yes
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
        auth {{
            default = -1
        }}
    }}
}}
charon-systemd {{
    journal {{
        default = -1
    }}
}}
swanctl {{
    load = pem pkcs1 pkcs8 x509 revocation constraints pubkey openssl random
}}
"""


def run_in(netns: str, *command: str, env: dict[str, str] | None = None) -> str:
    """Run ``command`` in ``netns`` and return its stdout."""
    result = subprocess.run(
        ["ip", "netns", "exec", netns, *command],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=30,
    )
    return result.stdout


@dataclass
class Connection:
    """One swanctl connection named ``ippm``."""

    local_id: str
    remote_id: str
    proposal: str
    local_port: int
    initiator: bool
    remote_port: int = 500
    cert: bool = False

    def swanctl_conf(self) -> str:
        """The swanctl.conf text."""
        if self.cert:
            local_auth = f"auth = pubkey\n            certs = {self.local_id}.crt"
            remote_auth = "auth = pubkey\n            cacerts = ca.crt"
        else:
            local_auth = remote_auth = "auth = psk"
        role = (
            f"remote_addrs = 127.0.0.1\n        remote_port = {self.remote_port}\n"
            "        childless = force"
            if self.initiator
            else "remote_addrs = %any\n        childless = allow\n        unique = never"
        )
        secrets = (
            ""
            if self.cert
            else f"""secrets {{
    ike-ippm {{
        id-a = {self.local_id}
        id-b = {self.remote_id}
        secret = "{PSK}"
    }}
}}
"""
        )
        return f"""connections {{
    ippm {{
        version = 2
        local_addrs = 127.0.0.1
        local_port = {self.local_port}
        {role}
        proposals = {self.proposal}
        mobike = no
        local {{
            {local_auth}
            id = {self.local_id}
        }}
        remote {{
            {remote_auth}
            id = {self.remote_id}
        }}
    }}
}}
{secrets}"""


class Charon:
    """charon-systemd in the foreground inside ``netns``, with its own config directory."""

    def __init__(self, netns: str, directory: Path, connection: Connection) -> None:
        self.netns = netns
        self.dir = directory
        (directory / "swanctl").mkdir(parents=True)
        for sub in ("x509", "x509ca", "private"):
            (directory / "swanctl" / sub).mkdir()
        port = connection.local_port
        (directory / "strongswan.conf").write_text(
            STRONGSWAN_CONF.format(port=port, nat_port=port + 1, plugins=PLUGINS, dir=directory)
        )
        (directory / "swanctl" / "swanctl.conf").write_text(connection.swanctl_conf())
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start charon and load the configuration."""
        env = {**os.environ, "STRONGSWAN_CONF": str(self.dir / "strongswan.conf")}
        with (self.dir / "charon.out").open("wb") as out:
            self._process = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, CHARON], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 10
        while not (self.dir / "charon.vici").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("charon did not open its vici socket")
            time.sleep(0.05)
        self.swanctl("--load-all")

    def stop(self) -> None:
        """Stop the charon we started."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def swanctl(self, command: str, *args: str) -> str:
        """Run one swanctl command against this instance."""
        return run_in(
            self.netns,
            "swanctl",
            command,
            "--uri",
            f"unix://{self.dir}/charon.vici",
            *args,
            env={
                "STRONGSWAN_CONF": str(self.dir / "strongswan.conf"),
                "SWANCTL_DIR": str(self.dir / "swanctl"),
            },
        )

    def sk_d(self) -> list[bytes]:
        """Every SK_d that charon logged at ike = 4, in order (also for non-HMAC PRFs)."""
        keys: list[bytes] = []
        collecting = False
        for line in (self.dir / "charon-keys.log").read_text().splitlines():
            if re.search(r"<[^>]*> Sk_d secret => \d+ bytes", line):
                keys.append(b"")
                collecting = True
                continue
            dump = re.search(r"<[^>]*>\s+\d+: ((?:[0-9A-F]{2} )+)", line)
            if collecting and dump:
                keys[-1] += bytes.fromhex(dump.group(1).replace(" ", ""))
            else:
                collecting = False
        return keys

    def ippm_keys(self, hash_name: str) -> list[str]:
        """HMAC-<hash>(SK_d, "IPPM") for every SK_d in the ike=4 log (RFC 7717 §5.1)."""
        keys = self.sk_d()
        return [hmac.new(k, b"IPPM", getattr(hashlib, hash_name)).hexdigest() for k in keys]
