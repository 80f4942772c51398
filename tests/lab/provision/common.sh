# tests/lab/provision/common.sh: helpers for the lab's provisioning scripts (upstream.sh,
# gateway.sh, client.sh): messages, argument checks, packages, addresses and routes, systemd
# units. Sourced by them, never run. Set PROV_NAME before sourcing. Nothing here changes the
# system by itself; the apt and systemd helpers refuse to run without --vm (PROV_VM=1), so the
# netns lab, which runs the same scripts on the test machine, never installs or enables anything.
# shellcheck shell=bash

PROV_VM=0                  # 1 with --vm: a VM of the Vagrant lab
PROV_ETC=/etc/dotproxy-lab # --vm: where the lab's files live on a VM
PROV_APT_UPDATED=0
PROV_CHECK=0               # 1 with --check-args: check the arguments, change nothing, exit

# prov_say MSG: one progress line on stdout, named for the script.
prov_say() { printf '%s: %s\n' "$PROV_NAME" "$*"; }
# prov_usage MSG: a bad argument: one line on stderr, exit 2, before anything changed.
prov_usage() { printf '%s: %s\n' "$PROV_NAME" "$*" >&2; exit 2; }
# prov_die MSG: a failure while provisioning: one line on stderr, exit 1.
prov_die() { printf '%s: %s\n' "$PROV_NAME" "$*" >&2; exit 1; }

# prov_checked: with --check-args, the arguments passed every check that does not look at the
# system (interfaces, files made later): say so and exit 0 before anything changes.
prov_checked() {
	((PROV_CHECK)) || return 0
	prov_say "arguments ok"
	exit 0
}

# prov_need_arg FLAG VALUE: a flag's value is present.
prov_need_arg() { [[ -n ${2:-} && $2 != --* ]] || prov_usage "$1 needs a value"; }

prov_is_ip4() {
	local IFS=. o
	[[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || return 1
	for o in $1; do ((10#$o <= 255)) || return 1; done
}
prov_is_ip6() { [[ $1 == *:* && $1 =~ ^[0-9A-Fa-f:]+$ && $1 != *:::* ]]; }
prov_is_ip() { prov_is_ip4 "$1" || prov_is_ip6 "$1"; }
# prov_is_cidr ADDR/LEN: an IPv4 or IPv6 address with a prefix length.
prov_is_cidr() {
	local a=${1%/*} l=${1##*/}
	[[ $1 == */* && $l =~ ^[0-9]{1,3}$ ]] || return 1
	if prov_is_ip4 "$a"; then ((10#$l <= 32)); else prov_is_ip6 "$a" && ((10#$l <= 128)); fi
}
# prov_is_ifname NAME: a plausible network interface name.
prov_is_ifname() { [[ $1 =~ ^[A-Za-z0-9_.@-]{1,15}$ ]]; }
# prov_fam ADDR: -4 or -6, the ip(8) family flag of ADDR (with or without /LEN).
prov_fam() { if [[ $1 == *:* ]]; then echo -6; else echo -4; fi; }

# prov_iface_of ADDR: the interface that holds ADDR (no prefix), or nothing.
prov_iface_of() {
	ip -o "$(prov_fam "$1")" addr show to "$1" 2>/dev/null | awk '{ sub(/@.*/, "", $2); print $2; exit }'
}
# prov_default_iface: the interface of the IPv4 default route, or nothing.
prov_default_iface() {
	ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }'
}
# prov_iface_exists IF
prov_iface_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# prov_addr IF ADDR/LEN: put ADDR on IF (again: no change); IPv6 without duplicate detection,
# so the address is usable at once.
prov_addr() {
	if [[ $2 == *:* ]]; then
		ip -6 addr replace "$2" dev "$1" nodad
	else
		ip -4 addr replace "$2" dev "$1"
	fi || prov_die "could not add $2 to $1"
}
# prov_route PREFIX VIA: route PREFIX (or default) via the router VIA (again: no change).
prov_route() {
	ip "$(prov_fam "$2")" route replace "$1" via "$2" || prov_die "could not route $1 via $2"
}
# prov_link_up IF
prov_link_up() { ip link set dev "$1" up || prov_die "could not bring $1 up"; }

# prov_packages PKG...: --vm only: install the Debian packages that are missing.
prov_packages() {
	local p missing=()
	((PROV_VM)) || prov_die "internal: package installation outside --vm"
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	prov_say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ((!PROV_APT_UPDATED)); then
		apt-get update -q >/dev/null || prov_die "apt-get update failed"
		PROV_APT_UPDATED=1
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		prov_die "could not install ${missing[*]}"
}

# prov_unit NAME: --vm only: write stdin to /etc/systemd/system/NAME.
prov_unit() {
	((PROV_VM)) || prov_die "internal: systemd unit outside --vm"
	cat >"/etc/systemd/system/$1" || prov_die "could not write unit $1"
}

# prov_boot_unit ROLE SCRIPT ARGS...: --vm only: a oneshot unit dotproxy-lab-net-ROLE.service
# that runs `bash SCRIPT net ARGS...` at every boot, so that what `net` configures (addresses,
# routes, sysctls, chains: nothing the hypervisor set up) survives a reboot of the VM.
prov_boot_unit() {
	local role=$1 script=$2; shift 2
	((PROV_VM)) || prov_die "internal: boot unit outside --vm"
	mkdir -p "$PROV_ETC" || prov_die "cannot create $PROV_ETC"
	{
		echo '#!/bin/bash'
		echo "# written by $PROV_NAME setup --vm: the lab's network settings of the $role, at boot"
		printf 'exec /bin/bash %q net' "$script"
		printf ' %q' "$@"
		echo
	} >"$PROV_ETC/net-$role.sh" && chmod 755 "$PROV_ETC/net-$role.sh" || prov_die "could not write $PROV_ETC/net-$role.sh"
	prov_unit "dotproxy-lab-net-$role.service" <<-EOF
		# written by $PROV_NAME: the dotproxy lab's network settings of the $role, at boot
		[Unit]
		Description=dotproxy lab: network settings of the $role
		After=network-online.target
		Wants=network-online.target
		[Service]
		Type=oneshot
		RemainAfterExit=yes
		ExecStart=$PROV_ETC/net-$role.sh
		[Install]
		WantedBy=multi-user.target
	EOF
	systemctl daemon-reload && systemctl enable --quiet "dotproxy-lab-net-$role.service" ||
		prov_die "could not enable dotproxy-lab-net-$role.service"
}
