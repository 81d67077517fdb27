"""`specenc run` and `specenc demo`: the headless chain on a recording, with files and a summary."""
