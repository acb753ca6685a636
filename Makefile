# Affidavit: every target installs what it needs first, so each works on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# mypy's cache outlives the clone (it is keyed by each file's hash): a fresh clone of known code
# checks in seconds, not a minute
MYPY_CACHE ?= $(or $(AFFIDAVIT_CACHE_DIR),$(HOME)/.cache/affidavit)/mypy

.PHONY: demo test deps debs venv binaries sigstore-binaries lint unit integration e2e bench fuzz clean image cluster cluster-stop node-binaries

demo: deps binaries
	$(VENV)/bin/affidavit demo

# The node's and the private Sigstore's binaries are built by the test session itself, in the
# background, while the tests that need neither run (tests/binary_builds.py). The suite runs as
# two pytest sessions side by side, one per core (tests/lanes.py; scripts/test-lanes).
test: deps binaries lint
	AFFIDAVIT_BUILD_BINARIES=1 $(PY) scripts/test-lanes --durations=30

deps: debs venv

debs:
	@bash scripts/install-debs

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The container image, built without a daemon (operator/build-image). With REGISTRY=HOST:PORT
# it is pushed to REGISTRY/IMAGE_REPO:IMAGE_TAG and Affidavit's own provenance attestation is
# signed with SIGN_KEY (made with `affidavit keygen` on first use) against the pushed digest.
REGISTRY ?=
IMAGE_REPO ?= affidavit
IMAGE_TAG ?= dev
SIGN_KEY ?= $(HOME)/.cache/affidavit/image/signing.key
image: deps
	@if [ -z "$(REGISTRY)" ]; then \
	  operator/build-image; \
	else \
	  test -f "$(SIGN_KEY)" || $(VENV)/bin/affidavit keygen --output "$(basename $(SIGN_KEY))"; \
	  operator/build-image --push "$(REGISTRY)/$(IMAGE_REPO):$(IMAGE_TAG)" --sign-key "$(SIGN_KEY)"; \
	fi

# What the tests need: the control plane's binaries, cosign, and (node-binaries) the real node's
# parts (kubelet, containerd, CoreDNS, ...) for tests/e2e/node and `make cluster`.
binaries:
	@bash scripts/k8s-binaries k8s >/dev/null
	@bash scripts/k8s-binaries cosign >/dev/null

node-binaries:
	@bash scripts/k8s-binaries node >/dev/null

# A private Sigstore for the keyless tests (and air-gapped sites): Fulcio, Rekor v2
# (rekor-tiles, POSIX files), a timestamp authority and TesseraCT, from the Go module proxy.
sigstore-binaries:
	@bash scripts/sigstore-binaries

# A control plane and a real node (in namespaces of their own) with the chart installed from a
# freshly built image; prints the kubeconfig. `make cluster-stop` removes it all.
cluster: deps binaries node-binaries
	@bash scripts/cluster

cluster-stop:
	@bash scripts/cluster stop

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy --cache-dir $(MYPY_CACHE)
	MYPY_CACHE=$(MYPY_CACHE) bash scripts/typecheck-tests
	$(VENV)/bin/lint-imports

unit: venv
	$(PY) -m pytest tests/unit

integration: deps
	$(PY) -m pytest tests/integration

e2e: deps binaries node-binaries sigstore-binaries
	$(PY) -m pytest tests/e2e

# The seeded fuzz runs at length (make test runs 300 cases of each): AdmissionReviews against a
# real webhook, then signed attestations through the verifier. Each prints its seed and figures
# (reviews: statuses, 5xx, fail-opens, uid mismatches, RSS start and end, every 5,000 cases too;
# attestations: verified, rejected, crashed, forged).
FUZZ_CASES ?= 100000
fuzz: deps
	AFFIDAVIT_FUZZ_CASES=$(FUZZ_CASES) $(PY) -m pytest -s -q -o timeout=0 \
	  tests/integration/admission/test_admission_fuzz.py tests/unit/signing/test_signing_fuzz.py

bench: deps binaries
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
