"""Benchmarks: the pytest-benchmark suites, the wrk load phase, and the report (`mnist-edge bench`)."""
