"""Benchmarks shipped with the package (``orange-fast bench``): per-frame SFrame cost
against the straightforward ``cryptography`` SFrame and the C-loop limit of the
linked OpenSSL."""
