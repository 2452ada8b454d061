#!/usr/bin/env bash
# The system programs the test suite starts itself, installed where they are missing (make test
# runs this first): Debian's OpenSSH sshd (the SSH remote tests, tests/support/servers.py),
# Chromium with its driver (the review page's browser test, tests/test_review_browser.py) and
# QEMU's user-mode emulator (other CPUs, tests/test_other_cpus.py).
# As root with apt-get it installs them; otherwise it stops, naming the one command to run.
set -euo pipefail
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/qemu-x86_64 ] || missing+=(qemu-user)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "make test: installing the servers and browser the tests start: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "make test: the tests start programs this machine lacks; install them, then run make test again:" >&2
    echo "    sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
