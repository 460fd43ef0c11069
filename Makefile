# The two commands of the README. Both set everything up first (idempotent).
.PHONY: demo test bootstrap bench clean-demo

VENV := .venv
PYTEST_ARGS ?=

demo:
	bash scripts/bootstrap.sh demo
	$(VENV)/bin/gisgrid demo --no-serve

test:
	bash scripts/bootstrap.sh test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bootstrap:
	bash scripts/bootstrap.sh test
