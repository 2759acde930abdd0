"""The bottleneck vocabulary, defined once: what the profiler charges step time to, what a
verdict names, and what a method card says it relieves.

``BOTTLENECKS`` is the vocabulary in catalogue order. ``PRIORITY`` is the same names in verdict
order: upstream stalls first (waiting for data, for communication, for the host), because they
hide any saving in device work.
"""

from __future__ import annotations

DATA = "data"
COMMUNICATION = "communication"
HOST = "host"
MEMORY = "memory"
COMPUTE = "compute"

BOTTLENECKS: tuple[str, ...] = (DATA, HOST, MEMORY, COMPUTE, COMMUNICATION)
PRIORITY: tuple[str, ...] = (DATA, COMMUNICATION, HOST, MEMORY, COMPUTE)
