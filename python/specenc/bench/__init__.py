"""Benchmarks behind `specenc bench SUITE`; each suite module has add_arguments(parser) and main(args)."""
