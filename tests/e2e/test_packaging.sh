#!/usr/bin/env bash
# tests/e2e/test_packaging.sh: what someone installing dotproxy gets. `make install` into a
# DESTDIR (every file, its mode, the unit's paths following PREFIX/SYSCONFDIR, a changed
# config kept) and for real in a private mount namespace (the dotproxy user, root:dotproxy
# 0640); the man page renders without warnings and documents every flag; the sample config
# names every key (and passes --check-config once the daemon has it); `systemd-analyze
# verify` finds nothing in the unit, whose rules commands really install and remove the
# rules in a private network namespace; the Dockerfile's build steps run (without docker)
# and produce what the runtime stage copies (tests/e2e/dockerfile_check.py, also shown to
# fail on a broken Dockerfile); the entrypoint installs the rules, runs the daemon and
# cleans up; the Kubernetes manifests parse and have what they need; keepalived accepts its
# config; `make uninstall` removes what install added.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$PWD
. tests/lab.sh                 # TAP helpers (ok, fail, diag, lab_finish); no lab is built
DOTPROXY=$REPO/build/dotproxy
PY=/usr/bin/python3            # Debian's, which has python3-yaml
[[ $(id -u) == 0 ]] || lab_bail "needs root (network and mount namespaces)"
[[ -x $DOTPROXY ]] || lab_bail "build/dotproxy is missing (run make)"

T=$(mktemp -d /tmp/dotproxy-pack.XXXXXX)
NS=dppack-$$
cleanup() {
	[[ -n ${EP_PID:-} ]] && lab_stop_pid "$EP_PID"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
{ ip netns add "$NS" && ip -n "$NS" link set lo up; } || lab_bail "cannot create a network namespace"
ip -n "$NS" link add eth1 type veth peer name eth1p || lab_bail "cannot add a veth pair"
ip -n "$NS" link set eth1 up

# expect_files ROOT "MODE PATH"...: exactly these regular files under ROOT, with these modes.
expect_files() {
	local root=$1 want got; shift
	want=$(printf '%s\n' "$@" | sort)
	got=$(cd "$root" && find . -type f -printf '%m /%P\n' | sort)
	[[ $got == "$want" ]] && return 0
	diff <(echo "$want") <(echo "$got") | grep '^[<>]' | paste -sd' ' -
	return 1
}

# --- make install into a DESTDIR ------------------------------------------------------------
D=$T/destdir
out=$(make -s install DESTDIR="$D" PREFIX=/usr 2>&1)
rc=$?
files=("755 /usr/sbin/dotproxy" "755 /usr/sbin/dotproxy-rules" "644 /usr/share/man/man8/dotproxy.8"
	"644 /usr/lib/systemd/system/dotproxy.service" "640 /etc/dotproxy/dotproxy.conf" "644 /etc/default/dotproxy")
if ((rc == 0)) && why=$(expect_files "$D" "${files[@]}"); then
	ok "make install DESTDIR PREFIX=/usr: ${#files[@]} files, modes as meant"
else
	fail "make install DESTDIR PREFIX=/usr" "exit $rc: $out; files differ: $why"
fi
if cmp -s "$D/usr/sbin/dotproxy" "$DOTPROXY" && cmp -s "$D/usr/sbin/dotproxy-rules" iptables/dotproxy-rules &&
	cmp -s "$D/etc/dotproxy/dotproxy.conf" deploy/dotproxy.conf && cmp -s "$D/etc/default/dotproxy" deploy/dotproxy.default &&
	cmp -s "$D/usr/lib/systemd/system/dotproxy.service" deploy/dotproxy.service; then
	ok "the installed files are the built daemon, the rules script, the samples and the unit"
else
	fail "installed files are the tree's" "$(cd "$D" && ls -lR)"
fi
if [[ $(stat -c %U:%G "$D/etc/dotproxy/dotproxy.conf") == root:root ]] && ! grep -q useradd <<<"$out"; then
	ok "with DESTDIR: no user created, nothing chowned"
else
	fail "with DESTDIR: no useradd, no chown" "$out; $(stat -c %U:%G "$D/etc/dotproxy/dotproxy.conf")"
fi
echo "upstream = 192.0.2.53@853#changed.example" >>"$D/etc/dotproxy/dotproxy.conf"
echo "RULES_SCOPE=both" >>"$D/etc/default/dotproxy"
out=$(make -s install DESTDIR="$D" PREFIX=/usr 2>&1)
if grep -q changed.example "$D/etc/dotproxy/dotproxy.conf" && grep -q RULES_SCOPE=both "$D/etc/default/dotproxy" &&
	grep -q "kept $D/etc/dotproxy/dotproxy.conf" <<<"$out"; then
	ok "install again: the changed dotproxy.conf and /etc/default/dotproxy are kept, and it says so"
else
	fail "install again keeps changed config files" "$out"
fi

# the unit follows PREFIX and SYSCONFDIR
D2=$T/destdir-local
make -s install DESTDIR="$D2" SYSCONFDIR=/opt/etc >/dev/null 2>&1
u=$D2/usr/local/lib/systemd/system/dotproxy.service
if [[ -x $D2/usr/local/sbin/dotproxy && -f $D2/usr/local/share/man/man8/dotproxy.8 && -f $D2/opt/etc/dotproxy/dotproxy.conf ]] &&
	grep -qx 'ExecStart=/usr/local/sbin/dotproxy --config /opt/etc/dotproxy/dotproxy.conf' "$u" &&
	grep -qx 'EnvironmentFile=/opt/etc/default/dotproxy' "$u" && grep -q 'exec /usr/local/sbin/dotproxy-rules up' "$u" &&
	! grep -qE '/usr/sbin/|[^t]/etc/' "$u"; then
	ok "default PREFIX=/usr/local, SYSCONFDIR=/opt/etc: files there, and the unit names those paths"
else
	fail "PREFIX/SYSCONFDIR reach the unit" "$(grep -E '^(Exec|Environment)' "$u" 2>&1)"
fi

# --- make install for real, in a private mount namespace (its own /etc and /usr/local) --------
real=$(unshare --mount --propagation private bash -c '
	set -e
	cp -a /etc "$1/etc" && mount --bind "$1/etc" /etc
	mount -t tmpfs tmpfs /usr/local
	userdel dotproxy >/dev/null 2>&1 || true        # (only in the copy) so that install creates it
	make -s install >"$1/real.log" 2>&1 || { echo "install failed: $(tail -n 3 "$1/real.log")"; exit 0; }
	make -s install >>"$1/real.log" 2>&1 || { echo "second install failed: $(tail -n 3 "$1/real.log")"; exit 0; }
	echo "user=$(getent passwd dotproxy | cut -d: -f3,7) conf=$(stat -c %a:%U:%G /etc/dotproxy/dotproxy.conf)" \
		"bin=$(stat -c %a:%U /usr/local/sbin/dotproxy) unit=$(stat -c %a /usr/local/lib/systemd/system/dotproxy.service)" \
		"useradds=$(grep -c "^useradd" "$1/real.log")"
' _ "$T" 2>&1)
uid=$(sed -n 's/.*user=\([0-9]*\):.*/\1/p' <<<"$real")
if [[ $real == *"user="*":/usr/sbin/nologin conf=640:root:dotproxy bin=755:root unit=644 useradds=1" && -n $uid ]] && ((uid < 1000)); then
	ok "make install (no DESTDIR): system user dotproxy (uid $uid, nologin) created once, config 0640 root:dotproxy"
else
	fail "make install for real" "$real"
fi

# --- the man page -----------------------------------------------------------------------------
warn=$(groff -man -ww -z deploy/dotproxy.8 2>&1)
rc=$?
rendered=$(MANWIDTH=2000 LC_ALL=C.UTF-8 man -l "$D/usr/share/man/man8/dotproxy.8" 2>"$T/man.err" | col -b)
if ((rc == 0)) && [[ -z $warn && ! -s $T/man.err && $rendered == *"NAME"*"dotproxy - "*"SYNOPSIS"*"EXIT STATUS"*"SEE ALSO"* ]]; then
	ok "the man page renders without warnings (groff -man -ww; man -l)"
else
	fail "man page renders cleanly" "groff: $warn; man: $(cat "$T/man.err")"
fi
# every flag --help shows, and the ones issue 6 adds, are in the man page and (as keys) in the
# sample config
mapfile -t flags < <({ "$DOTPROXY" --help | grep -oE -- '--[a-z][a-z-]+'
	printf -- '--%s\n' config check-config user client-cert client-key log log-level log-format query-log self-test; } | sort -u)
missing_man="" missing_conf=""
for f in "${flags[@]}"; do
	grep -qF -- "$f" <<<"$rendered" || missing_man+=" $f"
	case $f in --config | --check-config | --self-test | --help | --version) continue ;; esac
	grep -qE "^#? ?${f#--} = " deploy/dotproxy.conf || missing_conf+=" ${f#--}"
done
if [[ -z $missing_man ]]; then ok "the man page documents all ${#flags[@]} flags"
else fail "the man page documents every flag" "missing:$missing_man"; fi
if [[ -z $missing_conf ]]; then ok "the sample config lists every key"
else fail "the sample config lists every key" "missing:$missing_conf"; fi
for s in HUP USR1 NOTIFY_SOCKET WATCHDOG_USEC DOTPROXY_ /etc/dotproxy/dotproxy.conf /etc/default/dotproxy; do
	grep -qF -- "$s" <<<"$rendered" || missing_man+=" $s"
done
restart_keys="mode port listen queue queue-len fail-open metrics mark user max-inflight max-tcp-clients"
sighup=$(sed -n '/^SIGNALS/,/^FILES/p' <<<"$rendered" | tr -s ' \n' ' ')
for k in $restart_keys; do grep -qE "[ ,]${k}[ ,]" <<<"$sighup" || missing_man+=" (SIGHUP: $k)"; done
if [[ -z $missing_man ]]; then ok "the man page covers signals (HUP with the keys that need a restart, USR1), environment and files"
else fail "the man page covers signals, environment, files" "missing:$missing_man"; fi

# --- the sample config --------------------------------------------------------------------------
if "$DOTPROXY" --help | grep -q -- --check-config; then
	out=$("$DOTPROXY" --check-config deploy/dotproxy.conf 2>&1)
	rc=$?
	if ((rc == 0)); then ok "dotproxy --check-config deploy/dotproxy.conf: valid"
	else fail "the sample config passes --check-config" "exit $rc: $out"; fi
	# the ConfigMap's dotproxy.conf too
	"$PY" -c 'import sys, yaml; print(next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d["kind"] == "ConfigMap")["data"]["dotproxy.conf"], end="")' \
		deploy/kubernetes/configmap.yaml >"$T/k8s.conf"
	out=$("$DOTPROXY" --check-config "$T/k8s.conf" 2>&1)
	rc=$?
	if ((rc == 0)); then ok "the ConfigMap's dotproxy.conf passes --check-config"
	else fail "the ConfigMap's dotproxy.conf passes --check-config" "exit $rc: $out"; fi
else
	echo "ok - the sample config passes --check-config # SKIP the daemon has no --check-config yet"
fi

# --- the systemd unit ---------------------------------------------------------------------------
unit=$D/usr/lib/systemd/system/dotproxy.service
# verify checks that commands exist: point the packaged paths at the DESTDIR install
mkdir -p "$T/verify"
sed -e "s|/usr/sbin/|$D/usr/sbin/|g" -e "s|/etc/default/dotproxy|$D/etc/default/dotproxy|g" \
	-e "s|/etc/dotproxy/|$D/etc/dotproxy/|g" "$unit" >"$T/verify/dotproxy.service"
if command -v systemd-analyze >/dev/null; then
	vout=$(MANPATH=$D/usr/share/man systemd-analyze verify "$T/verify/dotproxy.service" 2>&1)
	rc=$?
	# only what the test machine lacks (no systemd running, no full unit set) may be said
	bad=$(grep -vE 'sysinit\.target not found|Failed to create dotproxy\.service/start|System has not been booted with systemd' <<<"$vout" | grep .)
	if ((rc == 0)) && [[ -z $bad ]]; then ok "systemd-analyze verify: nothing about the unit${vout:+ (environment only: $vout)}"
	else fail "systemd-analyze verify the unit" "exit $rc: $vout"; fi
	# systemd's own score of the sandbox (9.6 for a unit with none of it)
	sec=$(systemd-analyze security --offline=yes "$T/verify/dotproxy.service" 2>&1 | sed -n 's/.*Overall exposure level for dotproxy.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
	if [[ -n $sec ]] && awk -v s="${sec% *}" 'BEGIN { exit !(s <= 4.5) }'; then ok "systemd-analyze security: exposure $sec"
	else fail "systemd-analyze security: exposure at most 4.5" "${sec:-no score}"; fi
	# and it does complain about a broken one, so the check above can fail
	sed -e 's/^ProtectHome=yes/ProtectHome=perhaps/' "$T/verify/dotproxy.service" >"$T/verify/broken.service"
	vout=$(MANPATH=$D/usr/share/man systemd-analyze verify "$T/verify/broken.service" 2>&1)
	if grep -q 'ProtectHome\|protect home' <<<"$vout"; then ok "systemd-analyze verify reports a bad value (the check can fail)"
	else fail "systemd-analyze verify reports a bad value" "$vout"; fi
else
	fail "systemd-analyze verify" "systemd-analyze not found (tests/install-deps.sh installs systemd)"
fi
missing=""
for kv in Type=notify WatchdogSec= Restart=on-failure "ExecReload=/bin/kill -HUP \$MAINPID" ExecStartPre=+ ExecStopPost=+ \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes PrivateMounts=yes ProtectKernelTunables=yes \
	ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes ProtectHostname=yes \
	RestrictNamespaces=yes RestrictRealtime=yes LockPersonality=yes MemoryDenyWriteExecute=yes NoNewPrivileges=yes \
	SystemCallArchitectures=native "AmbientCapabilities=" \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX" EnvironmentFile=/etc/default/dotproxy \
	"ExecStart=/usr/sbin/dotproxy --config /etc/dotproxy/dotproxy.conf"; do
	awk -v kv="$kv" 'index($0, kv) == 1 { f = 1 } END { exit !f }' deploy/dotproxy.service || missing+=" [$kv]"
done
caps=$(sed -n 's/^CapabilityBoundingSet=//p' deploy/dotproxy.service)
for c in $caps; do [[ $c =~ ^CAP_(NET_ADMIN|NET_RAW|SETUID|SETGID|NET_BIND_SERVICE)$ ]] || missing+=" [extra capability $c]"; done
for c in CAP_NET_ADMIN CAP_NET_RAW CAP_SETUID CAP_SETGID; do [[ " $caps " == *" $c "* ]] || missing+=" [$c]"; done
grep -q '^User=' deploy/dotproxy.service && missing+=" [User= set: the daemon drops privileges itself]"
if [[ -z $missing ]]; then ok "the unit: Type=notify, watchdog, reload, rules around the daemon, the hardening asked for"
else fail "the unit has the settings it needs" "missing:$missing"; fi

# The unit's rules commands, run as systemd would (after its own parsing: lines joined, "+"
# dropped, $$ -> $), with the installed /etc/default/dotproxy, in a private network namespace.
# unit_cmd KEY: the argv of the unit's KEY= line, NUL-separated.
unit_cmd() {
	"$PY" - "$unit" "$1" <<-'EOF'
		import shlex, sys
		text = open(sys.argv[1]).read().replace("\\\n", " ")
		for line in text.splitlines():
		    if line.startswith(sys.argv[2] + "="):
		        value = line.split("=", 1)[1].lstrip("+-@!:")
		        sys.stdout.write("\0".join(w.replace("$$", "$") for w in shlex.split(value)))
	EOF
}
mapfile -d '' pre < <(unit_cmd ExecStartPre)
mapfile -d '' post < <(unit_cmd ExecStopPost)
# run_unit_cmd ENVFILE SERVICE_RESULT ARGV...: with dotproxy-rules from the DESTDIR install
run_unit_cmd() {
	local envf=$1 result=$2; shift 2
	ip netns exec "$NS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SERVICE_RESULT="$result" \
		bash -c 'set -a; . "$1"; set +a; shift; exec "$@"' _ "$envf" \
		"${@//\/usr\/sbin\/dotproxy-rules/$D/usr/sbin/dotproxy-rules}" 2>&1
}
rules_status() { ip netns exec "$NS" "$REPO/iptables/dotproxy-rules" status 2>&1; }
cp deploy/dotproxy.default "$T/default"
o1=$(run_unit_cmd "$T/default" "" "${pre[@]}")
st=$(rules_status)
if [[ $st == *"iptables -t mangle: PREROUTING jumps to DOTPROXY_PRE"* && $st == *"-i lo -p udp -m udp --dport 53 -j TPROXY --on-port 5353 "* &&
	$st == *"-p udp -m udp --dport 53 -j MARK --set-xmark 0x1/"* && $st == *"-m mark --mark 0x444 -j RETURN"* ]]; then
	ok "ExecStartPre with the sample /etc/default/dotproxy: tproxy host rules on port 5353, mark 0x444"
else
	fail "ExecStartPre installs the rules the defaults describe" "$o1 / $st"
fi
o2=$(run_unit_cmd "$T/default" exit-code "${post[@]}")
st2=$(rules_status)
o3=$(run_unit_cmd "$T/default" success "${post[@]}")
st3=$(rules_status)
if [[ $st2 == "$st" && $st3 == *"nothing installed"* ]]; then
	ok "ExecStopPost: rules kept after a failure (fail closed), removed after a clean stop"
else
	fail "ExecStopPost keeps the rules on failure, removes them on success" "$o2 $o3 / after failure: $st2 / after success: $st3"
fi
printf '%s\n' DOTPROXY_MODE=nfqueue DOTPROXY_PORT=5400 DOTPROXY_QUEUE=3 RULES_SCOPE=both \
	'RULES_ARGS="--in-interface eth1 --fail-open"' >"$T/default-nfq"
o1=$(run_unit_cmd "$T/default-nfq" "" "${pre[@]}")
st=$(rules_status)
if [[ $st == *"-i eth1 -p udp -m udp --dport 53 -j NFQUEUE --queue-num 3 --queue-bypass"* && $st == *"--on-port 5400"* ]]; then
	ok "ExecStartPre with nfqueue, queue 3, port 5400, both scopes, RULES_ARGS: the rules follow"
else
	fail "ExecStartPre follows /etc/default/dotproxy" "$o1 / $st"
fi
run_unit_cmd "$T/default-nfq" success "${post[@]}" >/dev/null

# --- the Dockerfile, without docker ------------------------------------------------------------
# apt-cache needs package lists
apt-cache show libc6 >/dev/null 2>&1 || apt-get update -q >/dev/null 2>&1
dout=$("$PY" tests/e2e/dockerfile_check.py Dockerfile "$REPO" "$T/docker" 2>&1)
rc=$?
if ((rc == 0)); then
	ok "Dockerfile: build steps ran in the build context ($(grep -c '^ran:' <<<"$dout") make steps), $(grep -c '^copy:' <<<"$dout") COPY sources exist, $(grep -c '^package:' <<<"$dout") apt packages exist"
else
	fail "Dockerfile build steps and COPY sources" "$(grep '^problem:' <<<"$dout" || tail -n 5 <<<"$dout")"
fi
# the check fails on a missing make target, a file make install does not produce, a package
# Debian does not have
sed -e 's/^RUN make unit$/RUN make unit-tests/' -e 's|/out/usr/sbin/dotproxy-rules|/out/usr/bin/dotproxy-rules|' \
	-e 's/libnetfilter-queue1 /libnetfilter-queue9 /' Dockerfile >"$T/Dockerfile.broken"
bout=$("$PY" tests/e2e/dockerfile_check.py "$T/Dockerfile.broken" "$REPO" "$T/docker" 2>&1)
rc=$?
if ((rc == 1)) && grep -q 'problem: RUN make unit-tests: no make target unit-tests' <<<"$bout" &&
	grep -q 'problem: COPY --from=build /out/usr/bin/dotproxy-rules' <<<"$bout" &&
	grep -q 'problem: apt package libnetfilter-queue9' <<<"$bout"; then
	ok "the Dockerfile check fails on a missing target, a missing file and a missing package"
else
	fail "the Dockerfile check catches a broken Dockerfile" "exit $rc: $(grep problem <<<"$bout")"
fi

# the README shows the same docker run line as the Dockerfile
runline() { sed -n "/^$1docker run -d/,/[^\\]\$/p" "$2" | sed "s/^$1//"; }
rl_readme=$(runline '' README.md)
rl_docker=$(runline '#   ' Dockerfile)
if [[ -n $rl_readme && $rl_readme == "$rl_docker" && $rl_readme == *"--network host --cap-add NET_ADMIN --cap-add NET_RAW"* ]]; then
	ok "README and Dockerfile show the same docker run line (--network host --cap-add NET_ADMIN --cap-add NET_RAW)"
else
	fail "one docker run line" "README: $rl_readme / Dockerfile: $rl_docker"
fi

# the entrypoint, as the image runs it: rules up, the daemon, SIGTERM, rules down
EP=$T/docker/context/deploy/docker/entrypoint.sh
epbin=$T/docker/out/usr/sbin
ip netns exec "$NS" env -i PATH="$epbin:/usr/sbin:/usr/bin:/sbin:/bin" DOTPROXY_MODE=tproxy DOTPROXY_PORT=5353 RULES_SCOPE=host \
	"$EP" --upstream 127.0.0.1@853#dot.example >"$T/ep.log" 2>&1 &
EP_PID=$!
for ((i = 0; i < 100; i++)); do
	[[ -n $(ip netns exec "$NS" ss -Hlnu 'sport = :5353') ]] && break
	sleep 0.05
done
st=$(rules_status)
listening=$(ip netns exec "$NS" ss -Hlnup 'sport = :5353')
lab_stop_pid "$EP_PID"
rc=$?
EP_PID=
st2=$(rules_status)
if [[ $st == *"DOTPROXY_PRE"* && $listening == *dotproxy* && $rc == 0 && $st2 == *"nothing installed"* ]]; then
	ok "entrypoint: rules up, the daemon serving, SIGTERM stops both and removes the rules, exit 0"
else
	fail "entrypoint runs rules and daemon" "exit $rc; rules while running: ${st:0:200}; listening: ${listening:-nothing}; after: $st2; log: $(tail -n 3 "$T/ep.log")"
fi
# SIGINT (docker run -it, Ctrl-C) stops it the same way (PID 1 in a container starts with
# SIGINT not ignored, unlike a background job of this script)
ip netns exec "$NS" env -i --default-signal=INT PATH="$epbin:/usr/sbin:/usr/bin:/sbin:/bin" RULES_SCOPE=host \
	"$EP" --upstream 127.0.0.1@853#dot.example >"$T/ep2.log" 2>&1 &
EP_PID=$!
for ((i = 0; i < 100; i++)); do
	[[ -n $(ip netns exec "$NS" ss -Hlnu 'sport = :5353') ]] && break
	sleep 0.05
done
kill -INT "$EP_PID"
for ((i = 0; i < 100; i++)); do lab_running "$EP_PID" || break; sleep 0.05; done
lab_running "$EP_PID" && kill -KILL "$EP_PID"
wait "$EP_PID"
rc=$?
EP_PID=
st2=$(rules_status)
if [[ $rc == 0 && $st2 == *"nothing installed"* && -z $(ip netns exec "$NS" ss -Hlnu 'sport = :5353') ]]; then
	ok "entrypoint: SIGINT stops the daemon too, rules removed, exit 0"
else
	fail "entrypoint on SIGINT" "exit $rc; rules after: $st2; log: $(tail -n 3 "$T/ep2.log")"
fi

# a daemon that fails: its exit status, and the rules stay (fail closed)
out=$(ip netns exec "$NS" env -i PATH="$epbin:/usr/sbin:/usr/bin:/sbin:/bin" RULES_SCOPE=host timeout 10 "$EP" --port 0 2>&1)
rc=$?
st=$(rules_status)
out2=$(ip netns exec "$NS" env -i PATH="$epbin:/usr/sbin:/usr/bin:/sbin:/bin" "$EP" rules-down 2>&1)
st2=$(rules_status)
if [[ $rc == 2 && $out == *"--port"* && $st == *"DOTPROXY_PRE"* && $st2 == *"nothing installed"* ]]; then
	ok "entrypoint: a failing daemon's exit status (2) is the container's, the rules stay until rules-down"
else
	fail "entrypoint on a failing daemon" "exit $rc: $out; rules: ${st:0:120}; after rules-down: $out2 $st2"
fi

# --- Kubernetes manifests -------------------------------------------------------------------------
kout=$("$PY" - deploy/kubernetes/daemonset.yaml deploy/kubernetes/configmap.yaml Dockerfile <<-'EOF' 2>&1
	import re, sys, yaml
	docs = [d for f in sys.argv[1:3] for d in yaml.safe_load_all(open(f)) if d]
	bad = []
	def need(cond, what):
	    if not cond:
	        bad.append(what)
	kinds = {d.get("kind"): d for d in docs}
	ds, cm = kinds.get("DaemonSet"), kinds.get("ConfigMap")
	need(ds and cm, "a DaemonSet and a ConfigMap")
	if ds and cm:
	    need(ds.get("apiVersion") == "apps/v1", "DaemonSet apiVersion apps/v1")
	    tpl = ds["spec"]["template"]
	    need(ds["spec"]["selector"]["matchLabels"].items() <= tpl["metadata"]["labels"].items(), "selector matches the pod labels")
	    spec = tpl["spec"]
	    need(spec.get("hostNetwork") is True, "hostNetwork: true")
	    need(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "dnsPolicy: ClusterFirstWithHostNet")
	    ann = tpl["metadata"].get("annotations", {})
	    need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics", "prometheus.io scrape/path annotations")
	    port = str(ann.get("prometheus.io/port"))
	    c = spec["containers"][0]
	    caps = c["securityContext"]["capabilities"]
	    need("NET_ADMIN" in caps.get("add", []) and caps.get("drop") == ["ALL"], "container: add NET_ADMIN, drop ALL")
	    # ready while an upstream is usable (/health); alive while it accepts: an upstream
	    # outage must not restart the pod (each restart takes the rules down and up)
	    hg = c.get("readinessProbe", {}).get("httpGet", {})
	    need(hg.get("path") == "/health" and str(hg.get("port")) == port, "readinessProbe on /health at the annotated port " + port)
	    lp = c.get("livenessProbe", {})
	    need("httpGet" not in lp or lp["httpGet"].get("path") != "/health", "livenessProbe not on /health")
	    need(str(lp.get("tcpSocket", lp.get("httpGet", {})).get("port")) == port, "livenessProbe on the annotated port " + port)
	    # what the daemon keeps after its drop must be there to keep (privs.c)
	    mode = cm.get("data", {}).get("DOTPROXY_MODE", "tproxy")
	    need(mode != "tproxy" or "NET_BIND_SERVICE" in caps.get("add", []), "tproxy mode: container adds NET_BIND_SERVICE")
	    env = {e["name"]: e.get("value") for e in c.get("env", [])}
	    need(str(env.get("DOTPROXY_METRICS", "")).endswith(":" + port), "DOTPROXY_METRICS on port " + port)
	    need("rules-down" in c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []), "preStop hook: rules-down")
	    inits = spec.get("initContainers", [])
	    need(len(inits) == 1 and "rules-up" in inits[0].get("args", []), "an initContainer running rules-up")
	    if inits:
	        icaps = inits[0]["securityContext"]["capabilities"]
	        need("NET_ADMIN" in icaps.get("add", []) and icaps.get("drop") == ["ALL"], "initContainer: add NET_ADMIN, drop ALL")
	        need(inits[0]["image"] == c["image"], "one image for both containers")
	    for cont in [c] + inits:
	        need(any(e.get("configMapRef", {}).get("name") == cm["metadata"]["name"] for e in cont.get("envFrom", [])),
	             cont["name"] + ": envFrom the ConfigMap")
	    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
	    vols = {v["name"]: v for v in spec.get("volumes", [])}
	    need(any(p == "/etc/dotproxy" and vols.get(n, {}).get("configMap", {}).get("name") == cm["metadata"]["name"]
	             for n, p in mounts.items()), "the ConfigMap mounted at /etc/dotproxy")
	    for k in ("DOTPROXY_MODE", "DOTPROXY_PORT", "RULES_SCOPE", "dotproxy.conf"):
	        need(k in cm.get("data", {}), "ConfigMap key " + k)
	    # the paths the manifests run exist in the image
	    dests = set()
	    for line in open(sys.argv[3]):
	        m = re.match(r"COPY\s.*\s(\S+)\s*$", line)
	        if m and line.startswith("COPY"):
	            srcs = line.split()[1:-1]
	            dests.update(m.group(1) + s.rsplit("/", 1)[1] if m.group(1).endswith("/") else m.group(1) for s in srcs if not s.startswith("--"))
	    need(c["command"][0] in dests, "the container's command %s is in the image" % c["command"][0])
	    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["?"])[0]
	    need(pre in dests, "the preStop command %s is in the image" % pre)
	print("bad: " + "; ".join(bad) if bad else "good")
EOF
)
if [[ $kout == good ]]; then ok "Kubernetes: the manifests parse; hostNetwork, dnsPolicy, capabilities, probes, annotations, rules init/preStop, ConfigMap wiring"
else fail "Kubernetes manifests" "$kout"; fi

# --- keepalived -------------------------------------------------------------------------------------
if command -v keepalived >/dev/null; then
	# keepalived -t ends itself with SIGTERM either way: what it prints is the verdict
	kout=$(ip netns exec "$NS" keepalived -t -f deploy/keepalived/keepalived.conf 2>&1)
	sed 's/interval 2/intervall 2/' deploy/keepalived/keepalived.conf >"$T/keepalived-typo.conf"
	kbad=$(ip netns exec "$NS" keepalived -t -f "$T/keepalived-typo.conf" 2>&1)
	if [[ -z $kout && $kbad == *"Unknown keyword 'intervall'"* ]]; then
		ok "keepalived -t accepts deploy/keepalived/keepalived.conf (and rejects a typo)"
	else
		fail "keepalived accepts its config" "says: $kout; on a typo: $kbad"
	fi
else
	fail "keepalived config check" "keepalived not installed (tests/install-deps.sh installs it)"
fi
health=$(grep -o 'http://[0-9.:]*/health' deploy/keepalived/keepalived.conf)
metrics=$(sed -n 's/^metrics = //p' deploy/dotproxy.conf)
if [[ $health == "http://$metrics/health" ]] && grep -q 'track_script' deploy/keepalived/keepalived.conf; then
	ok "keepalived tracks /health at the sample config's metrics address ($metrics)"
else
	fail "keepalived's health URL matches the sample config" "keepalived: $health; dotproxy.conf metrics: $metrics"
fi

# --- make uninstall ---------------------------------------------------------------------------------
D3=$T/destdir-clean
make -s install DESTDIR="$D3" PREFIX=/usr >/dev/null 2>&1
out=$(make -s uninstall DESTDIR="$D3" PREFIX=/usr 2>&1)
rc=$?
left=$(find "$D3" -type f)
if ((rc == 0)) && [[ -z $left ]] && [[ ! -d $D3/etc/dotproxy ]]; then
	ok "make uninstall removes every file install added"
else
	fail "make uninstall removes what it installed" "exit $rc: $out; left: $left"
fi
out=$(make -s uninstall DESTDIR="$D" PREFIX=/usr 2>&1)
left=$(cd "$D" && find . -type f | sort | paste -sd' ' -)
if [[ $left == "./etc/default/dotproxy ./etc/dotproxy/dotproxy.conf" && $out == *"kept $D/etc/dotproxy/dotproxy.conf: changed"* ]]; then
	ok "make uninstall keeps config files that were changed, and says so"
else
	fail "make uninstall keeps changed config files" "left: $left; said: $out"
fi

lab_finish
