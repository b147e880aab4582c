# Two commands do all the set-up on a fresh machine (see README.md):
#   make bench   – install what is missing, run the benchmarks (CPU, local Spark), print the results table
#                  (make bench BENCH_ARGS='-m "not gpu" --full' for the real sizes and the slow cases)
#   make test    – install what is missing, run the test suite and the CI gate
.PHONY: bench test setup lint
BENCH_ARGS ?=

bench:
	bash scripts/bench.sh $(BENCH_ARGS)

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

lint:
	.venv/bin/ruff check .
