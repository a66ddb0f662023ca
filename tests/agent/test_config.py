"""The agent's configuration and mesh files: what they mean, and errors naming file, line, key."""

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.agent.config import DEFAULT_METRICS, load_agent_config
from otwamp.agent.mesh import load_mesh
from otwamp.agent.plan import describe, make_plan, with_mesh_peers
from otwamp.agent.tomlfile import TomlFile, dotted
from otwamp.archive import DEFAULT_ARCHIVE
from otwamp.errors import ConfigError
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.config import parse_identity
from otwamp.wire.registry import TwampMode
from tests.e2e.ike_support import CLIENT_ID, SERVER_ID, make_pki, write_ike_config

MESH = """\
[[members]]
name = "a"
address = "192.0.2.1"
groups = ["eu"]

[[members]]
name = "b"
address = "192.0.2.2"
groups = ["eu", "core"]
twamp_port = 10862

[[members]]
name = "c"
address = "2001:db8::3"
ike_id = "fqdn:c.example"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    write(tmp_path, "mesh.toml", MESH)
    write(tmp_path, "keys.pfs", f"alice\t{b'a pass-phrase'.hex()}\n").chmod(0o600)
    return tmp_path


def agent(
    directory: Path, body: str, head: str = '[agent]\nname = "a"\nmesh = "mesh.toml"\n'
) -> Path:
    return write(directory, "agent.toml", head + textwrap.dedent(body))


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_agent_config(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- what a good file means -----------------------------------------------------------------


def test_a_mesh_test_measures_every_other_member(files: Path) -> None:
    path = agent(
        files,
        """
        [agent.server]
        modes = "open,authenticated"
        keyfile = "keys.pfs"

        [[test]]
        name = "rtt"
        protocol = "twamp"
        targets = "mesh"
        identity = "alice"
        keyfile = "keys.pfs"
        every = "1m"

        [[test]]
        name = "owd"
        protocol = "owamp"
        targets = ["group:eu", "198.51.100.7:9861"]
        continuous = true
        packets = 300
        interval = 0.1
        dscp = "EF"
        """,
    )
    config = load_agent_config(path)
    assert config.me is not None and config.me.name == "a"
    assert config.address == "192.0.2.1"
    assert config.archive == DEFAULT_ARCHIVE and config.metrics == DEFAULT_METRICS
    assert config.server.listen == (("192.0.2.1", 862),)  # the member's address by default
    assert config.server.owamp_listen == (("192.0.2.1", 861),)
    rtt, owd = config.tests
    assert rtt.every == 60.0 and rtt.key_source == "passphrase"
    assert set(rtt.modes) == {TwampMode.ENCRYPTED, TwampMode.AUTHENTICATED, TwampMode.MIXED}
    assert owd.continuous and owd.dscp == 46 and owd.modes == (TwampMode.UNAUTHENTICATED,)
    plan = make_plan(config)
    assert [(job.test.name, job.target, job.host, job.port) for job in plan.jobs] == [
        ("rtt", "b", "192.0.2.2", 10862),
        ("rtt", "c", "2001:db8::3", 862),
        ("owd", "b", "192.0.2.2", 861),  # group eu without this agent
        ("owd", "198.51.100.7:9861", "198.51.100.7", 9861),
    ]
    text = describe(config, plan)
    assert "this agent is 'a' (192.0.2.1)" in text
    assert "test 'rtt': twamp every 60 s" in text and "key source passphrase" in text
    assert "test 'owd': owamp continuous" in text and "-> c (2001:db8::3:862)" not in text
    assert "-> c ([2001:db8::3]:862)" in text


def test_sources_choose_the_agents_that_run_a_test(files: Path) -> None:
    body = """
        [[test]]
        name = "core"
        protocol = "twamp"
        targets = "mesh"
        sources = ["group:core"]
        every = 10
        """
    assert make_plan(load_agent_config(agent(files, body))).idle == ("core",)
    head = '[agent]\naddress = "192.0.2.2"\nmesh = "mesh.toml"\n'  # found by address
    plan = make_plan(load_agent_config(agent(files, body, head)))
    assert plan.me is not None and plan.me.name == "b"
    assert [job.target for job in plan.jobs] == ["a", "c"]


def test_without_a_mesh_targets_are_addresses(tmp_path: Path) -> None:
    path = agent(
        tmp_path,
        """
        [[test]]
        name = "t"
        protocol = "owamp"
        targets = ["192.0.2.9", "[2001:db8::9]:9861"]
        every = "30s"
        directions = ["from"]
        """,
        head='[agent]\nmetrics = "off"\narchive = "db/x.db"\n',
    )
    config = load_agent_config(path)
    assert config.metrics is None and config.archive == str(tmp_path / "db/x.db")
    assert config.tests[0].directions == ("from",)
    jobs = make_plan(config).jobs
    assert [(job.host, job.port) for job in jobs] == [("192.0.2.9", 861), ("2001:db8::9", 9861)]
    assert jobs[0].settings(None, None).directions == ("from",)


def test_mesh_members_become_ike_peers(files: Path, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    ike = write_ike_config(
        tmp_path / "ike.toml", address="192.0.2.1", port=500, local_id=CLIENT_ID, pki=pki, peers=[]
    )
    config = load_agent_config(
        agent(
            files,
            f"""
            [agent.server]
            modes = "authenticated"
            ike_config = "{ike.name}"

            [[test]]
            name = "t"
            protocol = "twamp"
            targets = "mesh"
            key_source = "ike"
            every = "10s"
            """,
        )
    )
    daemon = with_mesh_peers(load_ike_config(ike), config)
    assert [(peer.identity, peer.address) for peer in daemon.peers] == [
        (parse_identity("fqdn:b"), ("192.0.2.2", 500)),
        (parse_identity("fqdn:c.example"), ("2001:db8::3", 500)),
    ]
    assert SERVER_ID  # the helpers' names are not the mesh's


# --- errors: file, line, key ----------------------------------------------------------------

BAD = [
    ("[[test]]\nname = 't'\nprotocol = 'udp'\n", 6, "test[1].protocol", "twamp or owamp"),
    (
        "[[test]]\nname = 't'\nprotocol = 'twamp'\ntargets = 'mesh'\nevery = '60x'\n",
        8,
        "test[1].every",
        "not a duration",
    ),
    (
        "[[test]]\nname = 't'\nprotocol = 'twamp'\ntargets = 'mesh'\n",
        4,
        "test[1]",
        "either every",
    ),
    (
        "[[test]]\nname = 't'\nprotocol = 'twamp'\ntargets = 'group:asia'\nevery = 5\n",
        7,
        "test[1].targets",
        "group 'asia'",
    ),
    ("[agent.server]\nmodes = 'open'\nlisten_on = 1\n", 6, "agent.server.listen_on", "unknown key"),
    ("[agent.server]\ncontrol_timeout = -1\n", 5, "agent.server.control_timeout", "positive"),
    ("[agent.server]\nmodes = 'authenticated'\n", 5, "agent.server.modes", "need keys"),
    ("max_sessions = 0\n", 4, "agent.max_sessions", "at least 1"),
    ("colour = 'blue'\n", 4, "agent.colour", "unknown key"),
    (
        "[[test]]\nname='a'\nprotocol='owamp'\ntargets='b'\nevery=1\n"
        "[[test]]\nname='b'\nprotocol='owamp'\ntargets='b'\nevery=1\nmodes='mixed'\n",
        14,
        "test[2].modes",
        "no mixed mode",
    ),
    (
        "[[test]]\nname='t'\nprotocol='twamp'\ntargets='b'\nevery=1\nkey_source='ike'\n",
        9,
        "test[1].key_source",
        "ike_config",
    ),
    (
        "[[test]]\nname='t'\nprotocol='owamp'\ntargets='b'\ncontinuous=true\npackets=10\n",
        8,
        "test[1].continuous",
        "at least 2 s",
    ),
    (
        "[[test]]\nname='t'\nprotocol='twamp'\ntargets='b'\nevery=1\nidentity='bob'\n"
        "keyfile='keys.pfs'\n",
        9,
        "test[1].identity",
        "no pass-phrase for identity 'bob'",
    ),
    (
        "[[test]]\nname='t'\nprotocol='twamp'\ntargets='b'\nevery=1\ndscp='XX'\n",
        9,
        "test[1].dscp",
        "DSCP",
    ),
]


@pytest.mark.parametrize(("body", "line", "key", "words"), BAD)
def test_errors_name_file_line_and_key(
    files: Path, body: str, line: int, key: str, words: str
) -> None:
    path = agent(files, body)
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert words in message


def test_toml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "agent.toml", "[agent]\nname = 'a'\nmesh = \n")
    assert error_of(path).startswith(f"{path}:3: not valid TOML: ")


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[[members]]\nname = 'a'\naddress = 'x'\n", 3, "members[1].address", "not an IP"),
        ("[[members]]\nname = 'a'\naddress = '192.0.2.1'\n" * 2, 5, "members[2].name", "earlier"),
        (
            "[[members]]\nname='a'\naddress='192.0.2.1'\nike_port=70000\n",
            4,
            "members[1].ike_port",
            "65535",
        ),
        (
            "[[members]]\nname='a'\naddress='192.0.2.1'\nike_id='dn:=='\n",
            4,
            "members[1].ike_id",
            "identity",
        ),
        ("members = []\n", 1, "members", "no [[members]]"),
    ],
)
def test_mesh_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, words: str
) -> None:
    path = write(tmp_path, "mesh.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_mesh(path)
    assert str(caught.value).startswith(f"{path}:{line}: {key}: "), caught.value
    assert words in str(caught.value)


def test_an_agent_not_in_the_mesh_is_refused(files: Path) -> None:
    path = agent(files, "", head='[agent]\nname = "z"\nmesh = "mesh.toml"\n')
    assert error_of(path) == f"{path}:2: agent.name: {files / 'mesh.toml'}: no member is called 'z'"


# --- the key locator, for any layout --------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
VALUES = st.one_of(st.integers(-5, 5), st.booleans(), st.text("abc ", max_size=5))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(NAMES, VALUES, max_size=4),
    st.lists(st.dictionaries(NAMES, VALUES, min_size=1, max_size=4), max_size=4),
    st.integers(0, 3),
)
def test_every_key_is_found_on_its_line(
    tmp_path: Path, top: dict, tests: list, blanks: int
) -> None:
    lines: list[str] = []
    where: dict[tuple, int] = {}

    def emit(key: tuple, name: str, value: object) -> None:
        lines.extend([""] * blanks)
        rendered = repr(value) if not isinstance(value, bool) else str(value).lower()
        lines.append(f"{name} = {rendered!s}".replace("'", '"'))
        where[key] = len(lines)

    lines.append("[agent]")
    for name, value in top.items():
        emit(("agent", name), name, value)
    for index, table in enumerate(tests):
        lines.append("[[test]]  # one more")
        where[("test", index)] = len(lines)
        for name, value in table.items():
            emit(("test", index, name), name, value)
    path = tmp_path / "x.toml"
    path.write_text("\n".join(lines) + "\n")
    file = TomlFile.read(path, "test file")
    for key, line in where.items():
        assert file.line(key) == line, (dotted(key), path.read_text())


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_any_bytes_are_a_config_error_or_a_document(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.toml"
    path.write_bytes(data)
    try:
        TomlFile.read(path, "test file")
    except ConfigError as exc:
        assert "\n" not in str(exc)
