#!/usr/bin/env bash
# Collects the jars of an Apache Kafka broker (and a log4j2 backend) into a
# cache directory, using Maven to resolve them from maven/pom.xml. The tests
# in testutil/kafkatest then run the broker as
#   java -cp "$KAFKA_CACHE_DIR/libs/*" kafka.Kafka server.properties
#
# Environment:
#   KAFKA_VERSION    Kafka release to fetch (default below; keep it equal to
#                    KafkaVersion in kafkatest.go and kafka.version in the pom).
#   KAFKA_CACHE_DIR  where libs/ goes (default:
#                    ${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-kafka-cnosdb/kafka-$KAFKA_VERSION).
#   KAFKATEST_POM    the pom to resolve (default: maven/pom.xml next to this script).
#   KAFKATEST_MVN_ARGS  extra arguments for mvn, e.g. -o or -Dmaven.repo.local=…
#
# Running it again once the jars are there does nothing. Several test binaries
# may call it at once on a fresh machine, so the work is done under a lock and
# published with a rename: a reader sees either no libs/ or a complete one.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="${KAFKATEST_POM:-$here/maven/pom.xml}"
cache="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/telegraf-kafka-cnosdb/kafka-$KAFKA_VERSION}"
libs="$cache/libs"
stamp="$cache/.complete"

log() { printf 'fetch-kafka: %s\n' "$*"; }
die() {
	printf 'fetch-kafka: error: %s\n' "$*" >&2
	exit 1
}

is_complete() {
	[[ -f "$stamp" && "$(cat "$stamp")" == "$KAFKA_VERSION" && -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ]]
}

if is_complete; then
	log "Kafka $KAFKA_VERSION jars already in $libs"
	exit 0
fi

# Maven needs a JDK, and the broker a Java 17+ runtime: name whichever is
# missing rather than letting mvn fail with something obscure.
command -v java >/dev/null 2>&1 ||
	die "java not found on PATH: Kafka $KAFKA_VERSION needs a Java 17+ runtime (apt-get install -y openjdk-17-jre-headless)"
command -v mvn >/dev/null 2>&1 ||
	die "mvn (Apache Maven) not found on PATH: it is needed once to fetch the Kafka jars (apt-get install -y maven)"
[[ -f "$pom" ]] || die "pom not found: $pom"

mkdir -p "$cache"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$cache/.lock"
	flock 9
	# Another process may have finished the job while this one waited.
	if is_complete; then
		log "Kafka $KAFKA_VERSION jars already in $libs"
		exit 0
	fi
fi

tmp="$(mktemp -d "$cache/libs.tmp.XXXXXX")"
mvnlog="$cache/mvn.log"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

log "resolving Apache Kafka $KAFKA_VERSION with mvn into $libs (first run only; ~45 MB)"
start=$SECONDS
# shellcheck disable=SC2086 # KAFKATEST_MVN_ARGS is a list of words on purpose.
if ! mvn -q -B -Dstyle.color=never -f "$pom" \
	-Dkafka.version="$KAFKA_VERSION" \
	${KAFKATEST_MVN_ARGS:-} \
	dependency:copy-dependencies \
	-DincludeScope=runtime \
	-DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
	tail -n 40 "$mvnlog" >&2 || true
	die "mvn could not fetch the Kafka $KAFKA_VERSION jars (full log: $mvnlog)"
fi
[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
	die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is not among the fetched jars (log: $mvnlog)"

rm -rf "$libs"
mv "$tmp" "$libs"
printf '%s\n' "$KAFKA_VERSION" >"$stamp"
log "fetched $(find "$libs" -name '*.jar' | wc -l) jars into $libs in $((SECONDS - start))s"
