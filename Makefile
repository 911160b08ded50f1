# Lumen's developer commands. The two that matter: `make up` and `make test`.
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help install up down status test lint format protos faults fuzz soak

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## install the locked Python dependencies into .venv
	@scripts/bootstrap.sh

up: install  ## build the default models once, start everything, seed demo data, train the recommender from it (idempotent)
	@$(PY) -c 'from shared.model_registry import latest_version as v; import sys; sys.exit(not all(v(m) for m in ("recommender", "intent-classifier", "text-encoder", "item-search")))' || $(PY) -m models build-defaults
	@$(PY) -m lumen_cli up
	@$(PY) -m lumen_cli seed
	@$(PY) -m lumen_cli.seed.train_seeded

down:  ## stop everything `make up` started
	@$(PY) -m lumen_cli down

status:  ## show each component and its health
	@$(PY) -m lumen_cli status

test:  ## static checks, unit and integration tests on a real Kafka and mongod
	@scripts/test.sh

lint: install  ## ruff, mypy, import contracts (lint-imports) and buf lint
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy . && .venv/bin/lint-imports && (cd protos && ../.venv/bin/buf lint)

format: install  ## format the code
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

protos: install  ## regenerate the Python stubs from protos/ (server and client copies)
	scripts/gen_protos.sh

.PHONY: client-wheel
client-wheel: install  ## build the lumen-client wheel (clients/python) into dist/
	@uv=$$(command -v uv || echo var/tools/bin/uv); "$$uv" build --wheel --out-dir dist clients/python

.PHONY: bench bench-quick bench-tracing bench-peers-light bench-intent-few-shot bench-intent-distill
bench: install  ## every benchmark, MLServer peer included, on a private Kafka/mongod, then the light-model peers (~35 min)
	@bench/peers/setup_mlserver.sh && bench/peers/setup_kserve.sh
	@$(PY) -m bench --private-stack --peers
	@$(PY) -m bench.peers_light --registry $(BENCH_PEERS_LIGHT_REGISTRY)

BENCH_PEERS_LIGHT_REGISTRY ?= $(or $(LUMEN_TEST_SMALL_REGISTRY),var/models)
bench-peers-light: install  ## Lumen vs MLServer and KServe on the MiniLM intent model, batching on/off, 1/16/32 streams, 3 rotated rounds (~12 min); docs/benchmarks/peers_light.json
	@bench/peers/setup_mlserver.sh && bench/peers/setup_kserve.sh
	@$(PY) -m bench.peers_light --registry $(BENCH_PEERS_LIGHT_REGISTRY) $(BENCH_PEERS_LIGHT_ARGS)

bench-quick: install  ## smoke run of every benchmark on the test stack (figures not meaningful)
	@LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m bench --quick

BENCH_TRACING_ARGS ?= --quick
bench-tracing: install  ## tracing's overhead (off, 1 %, 100 %) on ingest and Recommend, on the test stack and its Jaeger (~3 min; BENCH_TRACING_ARGS= for three longer rounds)
	@LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m bench.tracing_overhead $(BENCH_TRACING_ARGS)

faults:  ## fault injection (Kafka/mongod kill -9, worker kills, rebalance, hot swap) and security tests
	LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m pytest tests/reliability tests/security -p no:cacheprovider -rA --deselect tests/reliability/test_soak.py

fuzz:  ## random search of the HTTP and gRPC APIs, 300 examples a property, seed printed (LUMEN_FUZZ_SEED=<n> repeats a run)
	@seed=$${LUMEN_FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz seed $$seed (repeat this run: LUMEN_FUZZ_SEED=$$seed make fuzz)"; \
	LUMEN_TEST_KEEP_PLATFORM=1 LUMEN_FUZZ_PROFILE=lumen-fuzz-wide LUMEN_FUZZ_EXAMPLES=$${LUMEN_FUZZ_EXAMPLES:-300} \
	$(PY) -m pytest tests/fuzz -p no:cacheprovider -rA --hypothesis-seed=$$seed

soak:  ## ten minutes at a steady rate across all services (LUMEN_SOAK_SECONDS to change it)
	LUMEN_TEST_KEEP_PLATFORM=1 LUMEN_SOAK_SECONDS=$${LUMEN_SOAK_SECONDS:-600} $(PY) -m pytest tests/reliability/test_soak.py -p no:cacheprovider -rA -s

.PHONY: bench-recommender-scale
BENCH_RECOMMENDER_SCALE_ARGS ?=
bench-recommender-scale: install  ## sparse vs dense recommender: MovieLens quality, training time and memory at 10^4-10^5 items, Recommend p99 at 200/s with the 10^5-item model (~30 min; needs the default models)
	@$(PY) -m bench.recommender_scale $(BENCH_RECOMMENDER_SCALE_ARGS)

.PHONY: bench-search
BENCH_SEARCH_REGISTRY ?= $(or $(LUMEN_TEST_SMALL_REGISTRY),var/models)
bench-search: install  ## live search: ingest -> searchable p50/p99 for 200 upserts on the test stack, then exact vs HNSW at 10^4..10^6 items (~30 min); figures in docs/benchmarks/search_*.json
	@LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m bench.search_freshness --registry $(BENCH_SEARCH_REGISTRY)
	@$(PY) -m bench.search_scale

.PHONY: bench-cold-start
BENCH_COLD_START_REGISTRY ?= $(or $(LUMEN_TEST_SMALL_REGISTRY),var/models)
bench-cold-start: install  ## cold items on MovieLens 100k: 10 % of items held out, content edges vs popularity (~6 min; needs text-encoder); figures in docs/benchmarks/cold_start_quality.json
	@$(PY) -m bench.cold_start_quality --registry $(BENCH_COLD_START_REGISTRY)

.PHONY: bench-own-data bench-interaction-store bench-kb
bench-own-data: install  ## MovieLens 100k replayed through ingest, recommender trained from the interaction store vs the offline pipeline on the same split (~15 min); docs/benchmarks/own_data_quality.json
	@LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m bench.own_data_quality

bench-interaction-store: install  ## the interaction store's choice: plain collection in the transaction vs time-series vs replaying events.raw, and the updater's throughput with and without it; docs/benchmarks/interaction_store.json
	@LUMEN_TEST_KEEP_PLATFORM=1 $(PY) -m bench.interaction_store

BENCH_KB_REGISTRY ?= $(or $(LUMEN_TEST_SMALL_REGISTRY),var/models)
bench-kb: install  ## the support assistant's retrieval on the demo knowledge base: recall@3 on held-out questions; docs/benchmarks/kb_retrieval.json
	@$(PY) -m bench.kb_retrieval_quality --registry $(BENCH_KB_REGISTRY)

bench-intent-few-shot: install  ## few-shot intents on Banking77: frozen MiniLM + logistic regression vs fine-tuned top layer at 10 and 5 examples per intent, three samples each (~30 min); docs/benchmarks/intent_few_shot.json
	@$(PY) -m bench.intent_few_shot

bench-intent-distill: install  ## Banking77: MPNet teacher, plain MiniLM, distilled MiniLM (LUMEN_INTENT_DISTILL=1 build) and its int8 copy, accuracy and texts/s; docs/benchmarks/intent_distill.json
	@$(PY) -m bench.intent_distill
