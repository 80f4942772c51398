# tests/lab/provision/plan.sh: the lab's plan -- addresses, names and records -- shared by the
# netns lab (tests/lab.sh sources it), the provisioning scripts beside it (upstream.sh serves
# these records) and the Vagrant lab (vagrant/Vagrantfile reads the LAB_*=VALUE assignments
# below, so keep each value literal: no quotes, no expansions). Sourced, never run; defines
# variables and two functions and must not change anything on the system.
#
#   client    192.0.2.2/24  2001:db8:1::2/64        (Vagrant: DHCP from the gateway)
#   gateway   LAN 192.0.2.1/24  2001:db8:1::1/64    WAN 198.51.100.1/24  2001:db8:2::1/64
#   upstream  DoT 198.51.100.2  2001:db8:2::2 (853)  decoy 198.51.100.53  2001:db8:2::53 (53)
# shellcheck shell=bash disable=SC2034  # variables for the scripts that source this file

LAB_C4=192.0.2.2          LAB_C6=2001:db8:1::2
LAB_GL4=192.0.2.1         LAB_GL6=2001:db8:1::1
LAB_GW4=198.51.100.1      LAB_GW6=2001:db8:2::1
LAB_DOT4=198.51.100.2     LAB_DOT6=2001:db8:2::2
LAB_DECOY4=198.51.100.53  LAB_DECOY6=2001:db8:2::53
LAB_LAN4=192.0.2.0/24     LAB_LAN6=2001:db8:1::/64
LAB_WAN4=198.51.100.0/24  LAB_WAN6=2001:db8:2::/64
# more DoT servers a test may add with lab_unbound_extra (same certificate, same zone)
LAB_DOT2_4=198.51.100.3   LAB_DOT2_6=2001:db8:2::3
LAB_DOT3_4=198.51.100.4   LAB_DOT3_6=2001:db8:2::4
# the Vagrant lab's DHCP pool on the LAN (the netns lab's client has LAB_C4 statically)
LAB_DHCP_FIRST=192.0.2.100  LAB_DHCP_LAST=192.0.2.199
LAB_AUTH=dot.dotproxy.test
LAB_PORT=5353                               # dotproxy --port
LAB_METRICS=127.0.0.1:9153                  # dotproxy --metrics on the gateway

LAB_WWW=www.dotproxy.test
LAB_WWW_A=203.0.113.10        LAB_WWW_AAAA=2001:db8:10::10        # from the DoT server
LAB_DECOY_WWW_A=203.0.113.66  LAB_DECOY_WWW_AAAA=2001:db8:66::66  # from the decoy
LAB_MID=mid.dotproxy.test     # TXT answer of 600-700 bytes: > 512, < 1232 (EDNS default)
LAB_BIG=big.dotproxy.test     # TXT answer > 1500 bytes: TC over UDP whatever EDNS says
LAB_SHORT=short.dotproxy.test # an A record with a 2 s TTL: expires during a test
LAB_SHORT_A=203.0.113.20      LAB_DECOY_SHORT_A=203.0.113.67
LAB_SHORT_TTL=2

# lab_txt WHO NAME: the TXT strings (one per line, no quotes) the zone of WHO (dot|decoy) holds.
lab_txt() {
	local who=$1 name=$2 n len i s
	case $name in
	"$LAB_MID") n=3 len=200 ;;
	"$LAB_BIG") n=8 len=240 ;;
	*) return 1 ;;
	esac
	for ((i = 1; i <= n; i++)); do
		s=$(printf '%s-%s-%02d-' "$who" "${name%%.*}" "$i")
		while ((${#s} < len)); do s+="0123456789abcdefghijklmnopqrstuvwxyz"; done
		printf '%s\n' "${s:0:len}"
	done
}

# lab_zone WHO: Unbound local-zone/local-data lines for WHO (dot|decoy).
lab_zone() {
	local who=$1 a aaaa t s short
	if [[ $who == dot ]]; then a=$LAB_WWW_A aaaa=$LAB_WWW_AAAA short=$LAB_SHORT_A
	else a=$LAB_DECOY_WWW_A aaaa=$LAB_DECOY_WWW_AAAA short=$LAB_DECOY_SHORT_A; fi
	printf '%s\n' 'local-zone: "test." nodefault' 'local-zone: "dotproxy.test." static' \
		"local-data: \"dotproxy.test. 3600 IN SOA ns.dotproxy.test. hostmaster.dotproxy.test. 1 3600 600 86400 300\"" \
		"local-data: \"$LAB_WWW. 300 IN A $a\"" \
		"local-data: \"$LAB_WWW. 300 IN AAAA $aaaa\"" \
		"local-data: \"$LAB_SHORT. $LAB_SHORT_TTL IN A $short\""
	for t in "$LAB_MID" "$LAB_BIG"; do
		lab_txt "$who" "$t" | while read -r s; do
			printf "local-data: '%s. 300 IN TXT \"%s\"'\n" "$t" "$s"
		done
	done
}
