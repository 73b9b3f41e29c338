#!/usr/bin/env bash
# Side-by-side bench of sdload against wrk (and oha when installed); see bench-peers.py.
exec python3 "$(dirname "$0")/bench-peers.py" "$@"
