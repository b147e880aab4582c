# Two commands do all the set-up on a fresh machine (see README.md):
#   make bench   – install what is missing, run the benchmarks (CPU, local Spark), print the results table
#                  (make bench BENCH_ARGS='-m "not gpu" --full' for the real sizes and the slow cases)
#   make test    – install what is missing, run the test suite and the CI gate
#   make setup SPARK=4 – also create .venv-spark4 (pyspark 4, the Spark-native engine only; tests/test_spark4.py)
.PHONY: bench test setup lint
BENCH_ARGS ?=
# SPARK=4: a second environment, .venv-spark4, beside .venv (which stays on pyspark 3.5 for BigDL)
SPARK ?=
ifneq ($(filter-out 4,$(SPARK)),)
$(error SPARK=$(SPARK): only SPARK=4 is known (a second environment, .venv-spark4))
endif

bench:
	bash scripts/bench.sh $(BENCH_ARGS)

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh
ifeq ($(SPARK),4)
	bash scripts/setup_spark4.sh
endif

lint:
	.venv/bin/ruff check .
