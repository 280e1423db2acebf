# shellcheck shell=bash
# Fetching the Kafka jars from Maven Central (pom.xml beside this file), shared by kafka.sh
# and kafka-cluster.sh; sourced after _common.sh, never run.
#
# Maven Central is reachable from every machine of this project, download sites are not.

KAFKA_VERSION=4.4.0 # keep in sync with pom.xml
POM="$SCRIPT_DIR/pom.xml"
# Jars are keyed by the pom's hash, so editing the pom fetches a fresh set.
POM_HASH="$(sha256sum "$POM" | cut -c1-12)"
LIBS_DIR="$ORCHESTRATOR_LOCAL_DIR/kafka-libs-$POM_HASH"
M2_REPO="${M2_REPO:-$HOME/.m2/repository}"

# Runs mvn quietly; its output (Debian's Maven 3.8 prints stray ANSI resets even
# with -q -B) is kept in a file and shown only when it fails.
run_mvn() {
    local out="$ORCHESTRATOR_LOCAL_DIR/mvn.log"
    if mvn -q -B -f "$POM" "$@" >"$out" 2>&1; then
        return 0
    fi
    log "--- mvn $* failed; tail of $out"
    tail -n 40 "$out" >&2
    return 1
}

resolve_jars() {
    if compgen -G "$LIBS_DIR/*.jar" >/dev/null; then
        return 0
    fi
    ensure_apt java openjdk-17-jre-headless
    ensure_apt mvn maven
    local tmp="$LIBS_DIR.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Offline when the broker jar is already cached: no network, and a few
    # seconds instead of a full resolution. Fall back to online if the cache
    # turns out to be incomplete.
    local goal=(dependency:copy-dependencies "-DoutputDirectory=$tmp")
    if [[ -f "$M2_REPO/org/apache/kafka/kafka_2.13/$KAFKA_VERSION/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
        log "copying jars from the local Maven cache"
        run_mvn -o "${goal[@]}" || {
            log "offline resolution failed, retrying online"
            run_mvn "${goal[@]}" || die "could not resolve Kafka jars"
        }
    else
        log "resolving Kafka $KAFKA_VERSION from Maven Central (first run only)"
        run_mvn "${goal[@]}" || die "could not resolve Kafka jars"
    fi
    # Renamed into place only when complete, so an interrupted download is
    # never mistaken for a usable libs dir.
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
}
