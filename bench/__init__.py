"""otwamp benchmarks: ``python -m bench`` (``make bench``) prints one JSON object.

Speed is measured here, never in timed tests. Every figure is set against a
baseline measured in the same run on the same machine: a plain Python UDP
echo over loopback, which shows what a trivial Python reflector gets here.
"""
