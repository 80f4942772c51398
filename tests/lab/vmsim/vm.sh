#!/usr/bin/env bash
# tests/lab/vmsim/vm.sh: runs CMD as if on one VM of the Vagrant lab, for the dry run of its
# provisioning (tests/e2e/test_vagrant.sh). Run it inside the role's network namespace:
#   ip netns exec NS unshare -m --propagation private bash vm.sh ROLE CMD...
# In that private mount namespace /etc, /var/lib, /var/cache and /usr/local/sbin are overlays
# whose writes go to a tmpfs, /run is a fresh tmpfs, and systemctl, apt-get and apparmor_parser
# are the stand-ins beside this file (PATH); so a provisioning script with --vm runs all its
# steps and nothing of the machine changes. Daemons the stand-in systemctl starts keep the
# private view. Needs VMSIM_DIR (logs, PIDs). Must never: write outside VMSIM_DIR and the tmpfs.
set -u
: "${VMSIM_DIR:?}"
role=${1:?role}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rw=$VMSIM_DIR/$role.rw
mkdir -p "$rw" && mount -t tmpfs "vmsim-$role" "$rw" || { echo "vm.sh: no tmpfs at $rw" >&2; exit 1; }
for d in /etc /var/lib /var/cache /usr/local/sbin; do
	n=${d//\//_}
	mkdir -p "$rw/u$n" "$rw/w$n" &&
		mount -t overlay "vmsim$n" -o "lowerdir=$d,upperdir=$rw/u$n,workdir=$rw/w$n" "$d" ||
		{ echo "vm.sh: cannot overlay $d" >&2; exit 1; }
done
mount -t tmpfs "vmsim-run-$role" /run && mkdir -p /run/network /var/lib/dhcp || { echo "vm.sh: no tmpfs on /run" >&2; exit 1; }
export PATH=$here:$PATH
exec "$@"
