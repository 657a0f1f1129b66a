# Two commands: `make dev` runs the system locally, `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# The local runner and every function's bootstrap, from the test build (`make build`).
RUNNER := $(TARGET_DIR)/debug/local-runner
LAMBDAS := webhook inbound media bots bot-timers campaign-scheduler campaign-sender directory notifications staff-api template-sync

comma := ,

.PHONY: dev build invoke coldstart opt-levels test venv lint unit-and-integration package package-release browser bench bench-scale bench-notify fuzz send token crm-event clean

## make dev: moto + every function wired as in template.yaml; webhook on http://127.0.0.1:3000.
## MOTO_HOST=0.0.0.0 lets `sam local invoke` containers reach the local AWS (events/README.md).
dev: $(STAMP) build
	EMF_METRICS=1 MOTO_PORT=$${MOTO_PORT:-5005} infra/with-moto.sh $(RUNNER) up --fakes --addr 127.0.0.1:$${PORT:-3000}

## make build: the test build (`cargo test --no-run`): the local runner and every function's
## bootstrap for this machine, with the same features as `make test`, so after it nothing is
## compiled again.
build:
	cargo test --workspace --no-run -q 2>&1 | { grep -v '^  Executable' || true; } >&2

## make invoke FN=webhook EVENT=events/webhook-post.json  (with `make dev` running): the function's
## bootstrap under the Lambda Runtime Interface Emulator, as `sam local invoke` runs it
invoke: $(STAMP) build
	$(RUNNER) invoke $(FN) $(EVENT)

## make test: lint + template checks + unit and integration tests (moto) + Lambda packaging.
## The arm64 packaging runs at idle priority beside the tests, which mostly wait on moto: it
## takes the CPU they leave (CI has two cores), and its log follows theirs.
test: $(STAMP) lint browser build
	@mkdir -p .local
	@nice -n 19 $(MAKE) --no-print-directory package > .local/package.log 2>&1 & pkg=$$!; \
	infra/with-moto.sh cargo test --workspace 2>&1 | tee .local/test-output.log; tests=$$?; \
	echo "== arm64 packaging (beside the tests; .local/package.log)"; \
	wait $$pkg; packaged=$$?; cat .local/package.log; \
	[ $$tests -eq 0 ] && [ $$packaged -eq 0 ]
	@awk '/^test result:/ {p+=$$4; f+=$$6} END {printf "tests: %d passed, %d failed\n", p, f}' .local/test-output.log

$(STAMP): infra/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $(STAMP)

venv: $(STAMP)

## make browser: Debian's headless Chromium for the widget's browser test (once; apt-get)
browser:
	infra/install-chromium.sh

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PY) infra/derive_resources.py --check
	$(PY) infra/ops.py --check
	$(PY) infra/moto_server_check.py
	sam validate --lint
	cfn-lint template.yaml

unit-and-integration: $(STAMP) browser
	mkdir -p .local
	infra/with-moto.sh cargo test --workspace 2>&1 | tee .local/test-output.log

## Proves every function still builds and links for Lambda (arm64, provided.al2023) with the
## release settings minus optimisation (profile lambda-check: quick on CI; the sizes it prints
## are not the deployed ones); `make package-release` builds exactly what `sam build` deploys.
package: $(STAMP)
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --profile lambda-check --arm64 $(addprefix -p ,$(LAMBDAS))
	@for f in $(LAMBDAS); do ls -l target/lambda/$$f/bootstrap | awk -v f=$$f '{printf "bootstrap %-18s %6.1f MB (unoptimised)\n", f, $$5/1048576}'; done

package-release: $(STAMP)
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 $(addprefix -p ,$(LAMBDAS))
	@for f in $(LAMBDAS); do ls -l target/lambda/$$f/bootstrap | awk -v f=$$f '{printf "bootstrap %-18s %6.1f MB\n", f, $$5/1048576}'; done

## make coldstart [RUNS=9] [FN="inbound staff-api"]: every function's (or FN's) release bootstrap
## (this machine's architecture), started cold under the Lambda Runtime Interface Emulator against
## a local stack: medians of init, first invoke and peak RSS
coldstart: $(STAMP) build
	cargo build --release $(addprefix -p ,$(or $(FN),$(LAMBDAS)))
	infra/with-moto.sh $(RUNNER) coldstart --dir $(TARGET_DIR)/release --runs $${RUNS:-9} $(if $(FN),--only $(subst $() ,$(comma),$(strip $(FN))))

bench:
	cargo bench -p shared

## make opt-levels [LEVELS="3 s z"] [FN="webhook inbound staff-api"]: the release profile at each
## opt-level side by side (sizes, cold start, benchmark medians): how the README's choice was made
opt-levels: $(STAMP) build
	RUNNER=$(RUNNER) infra/opt-levels.sh

## make bench-scale [SCALE_RECIPIENTS=100000 SCALE_FAST=10000 SCALE_SLOW=2000]: campaign fan-out and
## sender rates against moto and the fake Graph API (AWS requests counted by the moto server;
## built with the test build: the figures are bound by moto, not by our code)
bench-scale: $(STAMP)
	infra/with-moto.sh cargo bench --profile dev -p integration-tests --bench scale

## make bench-notify [NOTIFY_EVENTS=50]: PutEvents on the CRM bus → the Graph API call of the mapped
## template, through the local stack (median, p90, max)
bench-notify: $(STAMP)
	infra/with-moto.sh cargo bench --profile dev -p integration-tests --bench notify_latency

## make fuzz [FUZZ_SECONDS=60]: cargo-fuzz on webhook parsing and on the inbound envelope (installs cargo-fuzz under .local/tools)
fuzz:
	infra/fuzz.sh

## make send EVENT=events/webhook-text.json  (signs with the dev app secret and posts to the local webhook)
send: build
	$(RUNNER) send $(EVENT)

## make token PERMS="whatsapp_chat:view" [ADMIN=1]
token: build
	@$(RUNNER) mint-token $(if $(ADMIN),--admin) $(foreach p,$(PERMS),--perm $(p))

## make crm-event TYPE=contact_created DETAIL=events/crm-contact-created-detail.json
crm-event: build
	$(RUNNER) crm-event $(TYPE) $(DETAIL)

clean:
	cargo clean
	rm -rf .local .aws-sam
