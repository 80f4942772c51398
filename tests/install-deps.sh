#!/usr/bin/env bash
# Install what building, testing and the demo need on Debian 12, as root.
# Installs only when something is missing, so repeated runs cost nothing.
set -euo pipefail

pkgs=(
	build-essential pkg-config libssl-dev ca-certificates	# the daemon
	libnetfilter-queue-dev libmnl-dev			# its NFQUEUE front-end
	check clang libclang-rt-14-dev			# unit tests, libFuzzer (its runtime is only recommended by clang)
	iproute2 iptables nftables procps kmod			# the netns lab and the rules
	unbound openssl dnsutils knot-dnsutils dnsperf curl python3	# DoT server, CA, clients
	# benchmark peers (make bench): other DoT forwarders, and the chart
	dnsdist stubby gnuplot-nox
	# the Vagrant lab's check (tests/e2e/test_vagrant.sh): ruby -c and evaluating vagrant/Vagrantfile,
	# dnsmasq (only the binary, no service) for the dry run of the gateway VM's DHCP
	ruby dnsmasq-base
	# packaging (tests/e2e/test_packaging.sh): systemd-analyze verify of the unit, the man
	# page rendered (groff, man, col), the Kubernetes manifests parsed, keepalived -t
	systemd groff-base man-db bsdextrautils python3-yaml keepalived
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make ...)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
