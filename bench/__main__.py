"""`python -m bench [--quick]`: the load harness (see bench/harness.py and bench/RESULTS.md)."""

from bench.harness import main

main()
