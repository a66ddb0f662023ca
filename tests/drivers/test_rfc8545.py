"""The well-known ports of RFC 8545 as our defaults, and what a request for them gets."""

import socket

from otwamp.cli.owping import OWAMP
from otwamp.cli.ping import TWAMP
from otwamp.cli.stamp import STAMP
from otwamp.drivers import control_server
from otwamp.drivers.control_server import ServerSettings
from otwamp.drivers.stamp_reflector import STAMP_PORT


def test_control_and_test_ports_default_to_the_assigned_ones():
    # RFC 8545 §5 / §7: TCP 861 OWAMP-Control, TCP 862 TWAMP-Control, UDP 862 the
    # TWAMP-Test Receiver Port (STAMP's default, RFC 8762 §4.1).
    settings = ServerSettings()
    assert {port for _host, port in settings.listen} == {862}
    assert {port for _host, port in settings.owamp_listen} == {861}
    assert (TWAMP.port, OWAMP.port, STAMP.port, STAMP_PORT) == (862, 861, 862, 862)


def test_a_session_asking_for_a_well_known_test_port_gets_an_alternate():
    # RFC 8545 §4: a Server that does not serve the allocated Receiver Port answers with an
    # alternate in Accept-Session. One UDP port cannot carry a socket per session, and UDP 862
    # is the STAMP reflector's: TestPorts offers any other free port.
    ports = control_server.TestPorts(None)
    for requested in (861, 862):
        sock = ports.bind("127.0.0.1", requested, 0)
        try:
            assert sock.family == socket.AF_INET
            assert sock.getsockname()[1] not in (0, 861, 862)
        finally:
            ports.release(sock.getsockname()[1])
            sock.close()
