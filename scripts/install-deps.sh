#!/usr/bin/env bash
# Installs what testutil/kafkatest needs on a fresh Debian machine:
#   java (17+)  runs the Kafka broker
#   mvn         fetches the Kafka jars on the first run (fetch-kafka.sh)
#   kcat        an independent Kafka client used by ProduceWithKcat
# Only what is missing is installed, so a second run prints nothing. When another
# apt-get or dpkg holds the package lock (a fresh machine often upgrades itself at
# boot), it says so and waits for it, up to 5 minutes, instead of failing.
#
# Usage: install-deps.sh [--fetch-kafka]
#   --fetch-kafka  also fetch the Kafka jars now rather than in the first test
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fetch=false
for arg in "$@"; do
	case "$arg" in
	--fetch-kafka) fetch=true ;;
	*)
		echo "usage: $0 [--fetch-kafka]" >&2
		exit 2
		;;
	esac
done

die() {
	printf 'install-deps: error: %s\n' "$*" >&2
	exit 1
}

# lock_timeout bounds the wait for the package lock, in seconds.
lock_timeout=300

# lock_holder prints the process that holds one of dpkg's or apt's locks, if one does.
# They are fcntl locks, which /proc/locks lists by inode, and any user may read it.
lock_holder() {
	local f ino
	for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
		ino="$(stat -c %i "$f" 2>/dev/null)" || continue
		# "1: POSIX  ADVISORY  WRITE 1234 08:01:131090 0 EOF"; waiters have "->" in $2.
		awk -v ino="$ino" '$2 != "->" { n = split($6, id, ":"); if (id[n] == ino) { print $5; exit } }' /proc/locks 2>/dev/null
	done | head -n 1
}

# describe names a lock holder: "process 1234 (unattended-upgr)". Open file
# description locks have no process (-1).
describe() {
	if [[ "$1" == -1 ]]; then
		echo "another process"
		return
	fi
	echo "process $1 ($(cat "/proc/$1/comm" 2>/dev/null || echo gone))"
}

wait_for_lock() {
	local pid waited=0
	while pid="$(lock_holder)" && [[ -n "$pid" ]]; do
		if ((waited == 0)); then
			echo "install-deps: waiting for the package lock, held by $(describe "$pid"), for up to ${lock_timeout}s"
		fi
		((waited < lock_timeout)) || die "the package lock is still held by $(describe "$pid") after ${lock_timeout}s"
		sleep 2
		waited=$((waited + 2))
	done
	if ((waited > 0)); then
		echo "install-deps: the package lock is free after ${waited}s"
	fi
}

packages=()
command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
command -v kcat >/dev/null 2>&1 || packages+=(kcat)

if ((${#packages[@]} > 0)); then
	command -v apt-get >/dev/null 2>&1 ||
		die "missing ${packages[*]} and no apt-get to install them with"
	sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		command -v sudo >/dev/null 2>&1 || die "installing ${packages[*]} needs root"
		sudo=(sudo)
	fi
	echo "install-deps: installing ${packages[*]}"
	export DEBIAN_FRONTEND=noninteractive
	wait_for_lock
	# Lock::Timeout covers a lock taken between the check above and apt-get itself.
	apt=("${sudo[@]}" apt-get -o "DPkg::Lock::Timeout=$lock_timeout")
	aptlog="$(mktemp)"
	# apt-get update may leave the lock to an upgrade that waited for it: check again.
	if ! "${apt[@]}" update -qq >"$aptlog" 2>&1 || ! wait_for_lock ||
		! "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" >>"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		rm -f "$aptlog"
		die "apt-get could not install ${packages[*]}"
	fi
	rm -f "$aptlog"
fi

for tool in java mvn kcat; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is still not on PATH"
done

# Kafka 4 brokers need Java 17. `java -version` prints e.g.
# openjdk version "17.0.15" 2025-04-15   (or "1.8.0_392" for Java 8).
version_line="$(java -version 2>&1 | head -n 1)"
major="$(sed -E 's/^[^"]*"([0-9]+)(\.([0-9]+))?.*$/\1 \3/' <<<"$version_line")"
read -r first second <<<"$major"
[[ "$first" == 1 ]] && first="$second"
[[ "$first" =~ ^[0-9]+$ ]] || die "cannot tell the Java version from: $version_line"
((first >= 17)) || die "java is version $first; the Kafka broker needs 17 or newer (apt-get install -y openjdk-17-jre-headless)"

if $fetch; then
	bash "$here/../testutil/kafkatest/fetch-kafka.sh"
fi
