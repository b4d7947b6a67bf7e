# console-sessions — `make run` serves the app on a SQLite file; `make test` runs every test.
# Both install what is missing first (only what is missing: a second run skips every install).
# Nothing is downloaded except from package registries (crates.io, npm, PyPI, Debian).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
# cargo-leptos 0.3.11 is the release that builds with `--features no_downloads` (so it never fetches
# sass, tailwind or wasm-opt from outside the registries). Its locked dependencies need rustc 1.96+,
# newer than the stable 1.95 here, so it is built with the nightly toolchain; the project itself
# builds on stable.
CARGO_LEPTOS_VERSION := 0.3.11
CARGO_LEPTOS_TOOLCHAIN ?= +nightly
# wasm-bindgen-cli must equal the wasm-bindgen of Cargo.lock (pinned with "=" in app/Cargo.toml).
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/[" ]/, "", $$0); sub("version=", "", $$0); print; exit}' Cargo.lock)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AS_POSTGRES := $(if $(SUDO),sudo -u postgres,runuser -u postgres --)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends

# The PostgreSQL the tests use: a local cluster from Debian's package, a role that may create the
# per-test databases, and this URL exported to `cargo test`.
PG_USER := console_sessions
PG_PASSWORD := console_sessions
PG_PORT ?= 5432
TEST_POSTGRES_URL ?= postgres://$(PG_USER):$(PG_PASSWORD)@127.0.0.1:$(PG_PORT)/postgres
export TEST_POSTGRES_URL

.PHONY: help run test tools rust-tools node-tools chromium postgres-server postgres smtp-server \
        fmt-check clippy features cargo-test example site api-contract schemathesis e2e fuzz-tools fuzz fuzz-smoke fuzz-cmin bench bench-verify bench-revoke-matching bench-verify-instructions clean nginx

help:
	@echo "make run    install what is missing, build, and serve http://127.0.0.1:3000 on data/console-sessions.db"
	@echo "make test   install what is missing, then fmt, clippy (server + wasm), cargo test (SQLite + PostgreSQL), fuzzing, the API contract, Playwright"
	@echo "make fuzz   run every fuzz target for FUZZ_SECONDS (600) each, growing its corpus in fuzz/corpus"
	@echo "make bench  criterion benchmarks"
	@echo "make bench-verify  wrk load bench of /auth/verify"
	@echo "make bench-revoke-matching  revoke by search on 1 M sessions, /auth/verify p99 meanwhile"
	@echo "make bench-verify-instructions  instructions per request of /auth/verify, under callgrind"

## ---- installs (each step checks first) ----

tools: rust-tools node-tools chromium

rust-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
	  || rustup target add wasm32-unknown-unknown
	@if ! cargo leptos --version 2>/dev/null | grep -q "$(CARGO_LEPTOS_VERSION)"; then \
	  echo "installing cargo-leptos $(CARGO_LEPTOS_VERSION)"; \
	  $(CARGO) $(CARGO_LEPTOS_TOOLCHAIN) install cargo-leptos --version $(CARGO_LEPTOS_VERSION) \
	    --locked --features no_downloads; \
	fi
	@# Without --locked: the locked build wants a webpki-roots release the registry does not serve.
	@if ! wasm-bindgen --version 2>/dev/null | grep -q "$(WASM_BINDGEN_VERSION)"; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

node-tools:
	@if [ ! -d end2end/node_modules/@playwright/test ] \
	    || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then \
	  cd end2end && npm ci --no-audit --no-fund; \
	fi

# Debian's Chromium, and a colour emoji font so country flags show in screenshots as they do for users.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) chromium; }
	@test -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { $(SUDO) apt-get update -qq && $(APT_INSTALL) fonts-noto-color-emoji; }

# Debian's nginx (auth_request is built into nginx-core): the forward-authentication tests put it in
# front of the app. Only the binary is used; the tests start it with a configuration of their own.
nginx:
	@test -x /usr/sbin/nginx || { $(SUDO) apt-get update -qq && $(APT_INSTALL) nginx-core; }

# aiosmtpd from PyPI, the real SMTP server the mail tests deliver to (tests/support/smtp.rs runs
# `python3 -m aiosmtpd` with PYTHONPATH set to this folder). pip's --target puts it in the ignored
# target/ folder: no virtualenv (which Debian's python3 cannot make without python3-venv), nothing
# written to the system's or the user's site-packages, the same as root or not.
SMTP_SERVER_DIR := target/smtp-server
AIOSMTPD_VERSION := 1.4.6
smtp-server:
	@command -v python3 >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) python3; }
	@PYTHONPATH=$(SMTP_SERVER_DIR) python3 -c 'import aiosmtpd' 2>/dev/null || { \
	  python3 -m pip --version >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(APT_INSTALL) python3-pip; }; \
	  echo "installing aiosmtpd $(AIOSMTPD_VERSION) into $(SMTP_SERVER_DIR)"; \
	  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
	    --target $(SMTP_SERVER_DIR) aiosmtpd==$(AIOSMTPD_VERSION); \
	}

# schemathesis from PyPI, which fuzzes the JSON API from its OpenAPI document (make api-contract):
# into target/schemathesis like aiosmtpd, no virtualenv; pinned, as tests/api-contract/hooks.py
# uses one of its helpers.
SCHEMATHESIS_DIR := target/schemathesis
SCHEMATHESIS_VERSION := 4.32.5
schemathesis:
	@command -v python3 >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) python3; }
	@PYTHONPATH=$(SCHEMATHESIS_DIR) python3 -c 'import schemathesis, sys; sys.exit(schemathesis.__version__ != "$(SCHEMATHESIS_VERSION)")' 2>/dev/null || { \
	  python3 -m pip --version >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(APT_INSTALL) python3-pip; }; \
	  echo "installing schemathesis $(SCHEMATHESIS_VERSION) into $(SCHEMATHESIS_DIR)"; \
	  rm -rf $(SCHEMATHESIS_DIR); \
	  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
	    --target $(SCHEMATHESIS_DIR) schemathesis==$(SCHEMATHESIS_VERSION); \
	}

postgres-server:
	@command -v pg_ctlcluster >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) postgresql; }

# Start the cluster when it is down; make sure the test role exists.
postgres: postgres-server
	@cluster=$$(pg_lsclusters --no-header | awk 'NR==1 {print $$1" "$$2}'); \
	if [ -z "$$cluster" ]; then echo "no PostgreSQL cluster found (pg_lsclusters)"; exit 1; fi; \
	if ! pg_lsclusters --no-header | awk 'NR==1 {print $$4}' | grep -q online; then \
	  $(SUDO) pg_ctlcluster $$cluster start; \
	fi; \
	for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p $(PG_PORT) && break; sleep 1; done; \
	pg_isready -h 127.0.0.1 -p $(PG_PORT)
	@$(AS_POSTGRES) psql -q -v ON_ERROR_STOP=1 -d postgres -c \
	  "DO \$$\$$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$(PG_USER)') THEN \
	   CREATE ROLE $(PG_USER) LOGIN CREATEDB PASSWORD '$(PG_PASSWORD)'; END IF; END \$$\$$;"
	@# Test databases of earlier runs (each test makes its own cs_test_<random>).
	@$(AS_POSTGRES) psql -Atq -d postgres -c \
	  "SELECT datname FROM pg_database WHERE datname LIKE 'cs\_test\_%'" \
	| while read -r name; do $(AS_POSTGRES) dropdb --if-exists "$$name"; done

## ---- the two commands ----

run: rust-tools
	cargo leptos serve

test: tools postgres fmt-check clippy features cargo-test fuzz-smoke example api-contract e2e
	@echo "make test: all green"

## ---- test steps ----

fmt-check:
	$(CARGO) fmt --all --check
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check

clippy:
	$(CARGO) clippy --workspace --all-targets --features console-sessions-app/ssr -- -D warnings
	$(CARGO) clippy -p console-sessions-app --lib --target wasm32-unknown-unknown \
	  --no-default-features --features hydrate -- -D warnings

# The library's cargo features: the account refusals alone (no features: what the browser build
# takes; the wasm clippy above builds it for wasm32), the engine on a store of one's own, the engine
# alone on SQLite, mail without accounts, and two other subsets lint clean; the crate-level adoption
# doctest passes on the engine alone. (Everything on, the default, is what clippy and cargo-test
# above build.)
LIBRARY_FEATURE_SETS := "" "engine" "sqlite" "postgres,accounts,geo" "sqlite,admin,testing" "sqlite,mail"
features:
	@for set in $(LIBRARY_FEATURE_SETS); do \
	  echo "clippy console-sessions --no-default-features --features '$$set'"; \
	  $(CARGO) clippy -p console-sessions --lib --no-default-features --features "$$set" -- -D warnings; \
	done
	$(CARGO) test -p console-sessions --no-default-features --features sqlite --doc

# Server-side rendering in unoptimised test builds nests deep futures: give test threads 8 MiB.
cargo-test: postgres nginx smtp-server
	RUST_MIN_STACK=8388608 $(CARGO) test --workspace --features console-sessions-app/ssr

# The library alone in a plain axum service (examples/counter.rs), built, run and driven with curl.
example:
	examples/check-counter.sh

site: rust-tools
	cargo leptos build

# The JSON API fuzzed from its own OpenAPI document by schemathesis, against the binary `site` builds.
api-contract: site schemathesis
	tests/api-contract/run.sh

e2e: site node-tools chromium
	cd end2end && npx playwright test

## ---- fuzzing: cargo-fuzz (libFuzzer) on the nightly toolchain; the targets are in fuzz/ ----

CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS := cookie forwarded user_agent session_data admin_search redirect
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 15
# No sanitizer: the library forbids unsafe code, so what there is to find is a panic, a hang or a
# broken property, which libFuzzer reports alone (AddressSanitizer would double the build). The
# long runs fuzz an optimised build (16 codegen units, where cargo-fuzz would take one: quicker to
# build, somewhat fewer runs a second); the short run of `make test` an unoptimised one (-D), which
# builds with half the work: about 4 minutes from nothing on two cores instead of 8. The nightly is
# the one this machine has (rustup fetches nothing here), as for cargo-leptos above.
FUZZ := $(CARGO) +nightly fuzz
FUZZ_BUILD_FLAGS := -s none --codegen-units 16 --target-dir target/fuzz
FUZZ_SMOKE_FLAGS := -D -s none --target-dir target/fuzz-smoke

fuzz-tools:
	@if ! cargo fuzz --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)"; then \
	  echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION)"; \
	  $(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; \
	fi

# The short run of `make test`: each target replays its kept corpus (fuzz/corpus/<target>, read
# only) and then fuzzes for FUZZ_SMOKE_SECONDS; new inputs go to target/, not into the repo. A
# failing input is left in fuzz/artifacts/<target>/ (ignored by git).
fuzz-smoke: fuzz-tools
	$(FUZZ) build $(FUZZ_SMOKE_FLAGS)
	@for target in $(FUZZ_TARGETS); do \
	  rm -rf target/fuzz/smoke/$$target fuzz/artifacts/$$target; \
	  mkdir -p target/fuzz/smoke/$$target fuzz/corpus/$$target; \
	  echo "fuzz $$target for $(FUZZ_SMOKE_SECONDS) s"; \
	  log=target/fuzz/smoke/$$target.log; \
	  if ! $(FUZZ) run $(FUZZ_SMOKE_FLAGS) $$target target/fuzz/smoke/$$target fuzz/corpus/$$target -- \
	      -max_total_time=$(FUZZ_SMOKE_SECONDS) -timeout=10 -rss_limit_mb=2048 > $$log 2>&1; then \
	    tail -n 60 $$log; echo "fuzz $$target failed: the input is in fuzz/artifacts/$$target"; exit 1; \
	  fi; \
	  grep -E '^Done [0-9]+ runs' $$log; \
	done

# The long runs: FUZZ_SECONDS per target, new inputs kept in fuzz/corpus/<target>; every target
# runs even when one fails, and the failures are listed at the end. Then `make fuzz-cmin` keeps
# only the inputs that add coverage, before committing the corpus.
fuzz: fuzz-tools
	$(FUZZ) build $(FUZZ_BUILD_FLAGS)
	@failed=""; \
	for target in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/corpus/$$target; \
	  echo "fuzz $$target for $(FUZZ_SECONDS) s"; \
	  $(FUZZ) run $(FUZZ_BUILD_FLAGS) $$target -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 || failed="$$failed $$target"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzzing failed:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi

fuzz-cmin: fuzz-tools
	@for target in $(FUZZ_TARGETS); do $(FUZZ) cmin $(FUZZ_BUILD_FLAGS) $$target; done

bench:
	$(CARGO) bench --bench sessions

# wrk against /auth/verify with a valid cookie, and against the same answer without verifying.
bench-verify:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) wrk; }
	benches/verify.sh

# Revoke by search on 1 M seeded sessions, with /auth/verify's p99 under wrk meanwhile.
bench-revoke-matching:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) wrk; }
	benches/revoke-matching.sh

# The same two routes' instructions per request, counted by callgrind: the machine's load does
# not move this figure, so it shows what a change to the verified path costs.
bench-verify-instructions:
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(APT_INSTALL) valgrind; }
	benches/verify-instructions.sh

clean:
	$(CARGO) clean
	rm -rf end2end/node_modules end2end/test-results
