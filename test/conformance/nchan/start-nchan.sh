#!/bin/sh
# Start a private real Nchan with the conformance route set (see start-nchan.ts); Ctrl-C stops it.
# Usage: test/conformance/nchan/start-nchan.sh [hook-port]
cd "$(dirname "$0")/../../.." && exec npx tsx test/conformance/nchan/start-nchan.ts "$@"
