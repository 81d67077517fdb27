"""`specenc run` and `specenc demo`: the headless flowgraph on a recording, with files and a summary."""
