#!/usr/bin/env bash
# Installs what internal/kafkatest needs on a fresh Debian machine:
#   java (17+)  runs the Kafka broker
#   mvn         fetches the Kafka jars on the first run (fetch-kafka.sh)
#   kcat        an independent Kafka client used by ProduceWithKcat
# Only what is missing is installed, so a second run prints nothing.
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
	aptlog="$(mktemp)"
	if ! { "${sudo[@]}" apt-get update -qq &&
		"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$aptlog" 2>&1; then
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
	bash "$here/fetch-kafka.sh"
fi
