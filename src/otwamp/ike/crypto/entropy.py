"""The injected random source: a callable returning n random octets."""

import secrets
from collections.abc import Callable

RandomSource = Callable[[int], bytes]

system_random: RandomSource = secrets.token_bytes
