#!/usr/bin/env bash
# Java 17+ for the Spark tests (tests/test_spark.py) and a PostgreSQL server for the
# store tests (tests/pg.py). Quick when both are there; installed from Debian's packages
# when missing and we are root; otherwise the tests say what is missing (the Spark tests
# skip, with the reason, only without Java; the PostgreSQL tests fail without the server).
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing for the tests: ${need[*]} (install them: apt-get install -y ${need[*]})" >&2
  # Without the PostgreSQL server the store's tests fail; say so here, before they run.
  case " ${need[*]} " in *" postgresql "*) exit 1;; esac
  exit 0
fi
echo "installing ${need[*]} (Debian packages) for the Spark and PostgreSQL tests..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
