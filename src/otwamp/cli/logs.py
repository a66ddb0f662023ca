"""Log output of every command: one formatted line per record on stderr."""

import logging
import sys

from otwamp.lograte import RateLimitedHandler

FORMAT = "%(asctime)s otwamp %(levelname)s %(message)s"
_HANDLER = "otwamp-cli"  # the name of the handler this module installs


def setup_logging(verbose: int) -> None:
    """Log ``otwamp.*`` (and asyncio's own errors) to stderr: WARNING, INFO with 1, DEBUG with 2.

    Lines are rate-limited per cause: a flooding peer cannot flood the log (S3).
    """
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RateLimitedHandler(sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(logging.Formatter(FORMAT))
    for name, logger_level in (("otwamp", level), ("asyncio", logging.WARNING)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(logger_level)
    logging.getLogger("asyncio").propagate = False
