# Two commands do all the set-up on a fresh machine (see README.md):
#   make bench   – install what is missing, run the benchmarks (CPU, local Spark), print the results table
#   make test    – install what is missing, run the test suite and the CI gate
.PHONY: bench test setup lint

bench:
	bash scripts/bench.sh

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

lint:
	.venv/bin/ruff check .
