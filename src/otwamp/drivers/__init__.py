"""I/O drivers (layer 6): sockets, kernel timestamps, clocks, asyncio glue."""
