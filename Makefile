# The two commands: `make run` (the whole local stack, foreground) and `make test` (everything).
.PHONY: run test lint bench bootstrap clean

bootstrap:
	@scripts/bootstrap.sh

# AUTH=keycloak also starts Keycloak (scripts/keycloak.sh) and makes the API require its tokens.
AUTH ?= noauth

# The suite runs in an order shuffled by this seed (printed in its header): no test relies on
# another running before it. `make test TEST_SEED=<n>` tries another order.
TEST_SEED ?= 13

run: bootstrap
	.venv/bin/python -m workers.devstack --state-dir .state --auth $(AUTH)

test:
	@scripts/bootstrap.sh --postgres
	url=$$(scripts/postgres.sh) && NOVAFLOW_TEST_POSTGRES_URL=$$url .venv/bin/python -m pytest -q -n 2 --dist loadgroup -p random_order --random-order-bucket=module --random-order-seed=$(TEST_SEED)

lint: bootstrap
	.venv/bin/ruff check .

bench: bootstrap
	.venv/bin/python bench/create_delete_bench.py
	.venv/bin/python bench/scheduler_bench.py
	.venv/bin/python bench/disk_copy_bench.py

clean:
	rm -rf .state
