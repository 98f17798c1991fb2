# Testbed: real Docker, Podman, containerd Kind nodes, Kubernetes 1.20, PostgreSQL, Redis.
# See README.md "Testbed". Needs root on Debian 12.
.PHONY: testbed-up testbed-down testbed-check

testbed-up:
	scripts/testbed/up

testbed-down:
	scripts/testbed/down

testbed-check:
	scripts/testbed/check
