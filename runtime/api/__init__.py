"""The HTTP service: the Flask app and its routes (v1, Open Inference Protocol v2, OpenAPI, metrics), and the servers
that run it (pre-forked gunicorn workers on Linux, waitress elsewhere)."""
