"""`specenc run` and `specenc demo`: the headless chain on a recording, with files and a summary."""

import os

# OpenMP threads (torch's CPU kernels) spin-wait between parallel regions by default. With 2 threads on
# 2 busy cores (the flowgraph's own threads, other jobs) that spinning slowed the model ~8x in our
# measurements; passive waiting removes it. Read when torch loads its OpenMP runtime, so set it here,
# before anything imports torch; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
