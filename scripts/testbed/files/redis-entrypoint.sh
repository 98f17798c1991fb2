#!/bin/sh
# Entrypoint of the testbed's Redis image (like the official one: protected mode off
# by default, runs redis-server as user redis, "-..." or "*.conf" args go to redis-server).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  shift
  if [ -n "${1:-}" ] && [ "${1%.conf}" != "$1" ]; then
    conf=$1; shift
    set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
  if [ "$(id -u)" = 0 ]; then
    find /data \! -user redis -exec chown redis '{}' + 2>/dev/null || :
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
