#!/usr/bin/env bash
# A firewalled multi-host consortium on one Linux machine (see README.md beside this file).
#
# The coordinator, three hospital hosts, an "outside" host and (with --mode proxy) a hospital HTTP CONNECT
# proxy each get their own network namespace, all wired by veth pairs to one bridge (in a namespace of
# its own). Every hospital runs nftables that drop every inbound connection and allow outbound only to
# the coordinator's port (--mode direct) or only to the proxy's port (--mode proxy). The firewall is
# probed first, then the real product runs a full study through it: coordinator init/start, site token,
# site enroll/start in each hospital, study create/start/status, model export, sample. At the end each
# hospital's nft counters and conntrack events must show zero inbound connections accepted.
#
# usage: firewalled-study.sh [--mode direct|proxy] [--workdir DIR] [--study-timeout SECONDS]
#        firewalled-study.sh --check     exit 0 if this machine can run it, else print why and exit 3
#
# Progress goes to stderr; the last line on stdout is a one-line JSON summary (also on failure, with
# "ok": false and the failed step). Exits non-zero on any failure, naming the step. Needs root, iproute2,
# nftables (nft), node and a built tree (dist/); conntrack (conntrack-tools) is used when present.
set -Eeuo pipefail

usage() { sed -n '2,/^set -Eeuo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; }

MODE=direct
WORKDIR=""
CHECK_ONLY=0
STUDY_TIMEOUT=600
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE=${2:?--mode needs direct or proxy}; shift 2 ;;
    --workdir) WORKDIR=${2:?--workdir needs a directory}; shift 2 ;;
    --study-timeout) STUDY_TIMEOUT=${2:?--study-timeout needs seconds}; shift 2 ;;
    --check) CHECK_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "firewalled-study: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$MODE" in direct|proxy) ;; *) echo "firewalled-study: --mode must be direct or proxy, not '$MODE'" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLI=${FEDSYNTH_CLI:-$ROOT/dist/cli/main.js}
EXAMPLES=$ROOT/examples/heart-disease
NODE=$(command -v node || true)

# A prefix unique to this run: parallel runs (and other tests) never share a namespace name. Every
# interface is created inside this run's own namespaces, so interface names cannot clash either.
RUN_ID="$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
P="fsfw-${MODE:0:1}-$RUN_ID"

log() { printf '[firewalled-study %s %s] %s\n' "$MODE" "$(date +%H:%M:%S)" "$*" >&2; }

# ---- can this machine run it? -------------------------------------------------------------------------------
machine_check() {
  [ "$(id -u)" = 0 ] || { echo "not root (network namespaces and nftables need root)"; return 1; }
  command -v ip >/dev/null || { echo "ip (iproute2) is not installed"; return 1; }
  command -v nft >/dev/null || { echo "nft (nftables) is not installed: apt-get install nftables"; return 1; }
  [ -n "$NODE" ] || { echo "node is not on PATH"; return 1; }
  local ns="$P-check" out
  if ! out=$(ip netns add "$ns" 2>&1); then echo "ip netns add fails here: $out"; return 1; fi
  if ! out=$(ip netns exec "$ns" nft add table inet fsfw_check 2>&1); then
    ip netns del "$ns" 2>/dev/null || true
    echo "nft does not work inside a network namespace: $out"; return 1
  fi
  if ! out=$(ip -n "$ns" link add fsfw-br type bridge 2>&1); then
    ip netns del "$ns" 2>/dev/null || true
    echo "cannot create a bridge inside a network namespace: $out"; return 1
  fi
  ip netns del "$ns"
}
if [ "$CHECK_ONLY" = 1 ]; then
  if reason=$(machine_check); then echo "ok: this machine can run the firewalled study"; exit 0; fi
  echo "cannot run the firewalled study here: $reason"; exit 3
fi
if ! reason=$(machine_check); then echo "firewalled-study: cannot run here: $reason" >&2; exit 3; fi
[ -f "$CLI" ] || { echo "firewalled-study: $CLI is missing: build first (npx tsc -p tsconfig.json && node scripts/finish-build.mjs)" >&2; exit 2; }

if [ -z "$WORKDIR" ]; then WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/fedsynth-firewalled-$MODE-XXXXXX"); fi
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
LOGS=$WORKDIR/logs
mkdir -p "$LOGS"

# ---- addresses --------------------------------------------------------------------------------------------------
# Private to this run's bridge; parallel runs each have their own bridge, so they may reuse them.
NET=10.77.0
COORD_IP=$NET.2
PROXY_IP=$NET.3
OUTSIDE_IP=$NET.4
COORD_PORT=7070
COORD_OTHER_PORT=7071 # a second listener on the coordinator's host that hospitals must not reach
PROXY_PORT=3128
OUTSIDE_PORT=8080
PROBE_PORT=9000       # a listener inside each hospital that nobody outside may reach
PROBE_TIMEOUT_MS=3000
COORD="$COORD_IP:$COORD_PORT"
HOSPITALS=(hospital-1 hospital-2 hospital-3)
declare -A SITE=([hospital-1]=cleveland [hospital-2]=hungary [hospital-3]=va)
declare -A HIP=([hospital-1]=$NET.11 [hospital-2]=$NET.12 [hospital-3]=$NET.13)
if [ "$MODE" = direct ]; then ALLOW_IP=$COORD_IP ALLOW_PORT=$COORD_PORT; else ALLOW_IP=$PROXY_IP ALLOW_PORT=$PROXY_PORT; fi
HAVE_CONNTRACK=false
if command -v conntrack >/dev/null; then HAVE_CONNTRACK=true; fi

ns() { echo "$P-$1"; }
BR_NS=$(ns bridge)

# ---- bookkeeping, failure and cleanup ------------------------------------------------------------------------
STEP="setup"
NAMESPACES=()
declare -A PID=()
SUMMARY_PRINTED=0

step() { STEP=$1; log "== $STEP"; }

fail_summary() {
  [ "$SUMMARY_PRINTED" = 1 ] && return
  SUMMARY_PRINTED=1
  printf '{"mode":"%s","ok":false,"failed_step":%s,"workdir":"%s"}\n' "$MODE" "$(json_str "$STEP")" "$WORKDIR"
}
json_str() { "$NODE" -e 'process.stdout.write(JSON.stringify(process.argv[1]))' "$1"; }

fail() {
  log "FAILED at step '$STEP': $*"
  for f in "$LOGS"/*.log; do
    [ -s "$f" ] || continue
    log "--- last lines of $f"
    tail -n 15 "$f" >&2 || true
  done
  fail_summary
  exit 1
}
trap 'fail "command failed (exit $?, line $LINENO): $BASH_COMMAND"' ERR

cleanup() {
  local rc=$?
  set +e
  trap - ERR
  # Every process this run started, by its id; then anything left inside this run's own namespaces.
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for name in "${!PID[@]}"; do kill -9 "${PID[$name]}" 2>/dev/null; done
  for n in "${NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  for n in "${NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null; done
  local left
  left=$(ip netns list 2>/dev/null | grep -c "^$P-" || true)
  [ "$left" = 0 ] || log "warning: $left namespaces of this run could not be removed"
  log "work dir (every process's log is in $LOGS): $WORKDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'STEP="interrupted"; fail "interrupted by a signal"' INT TERM

# run NS CMD...: run CMD in a namespace, without any proxy variables from our own environment.
run() {
  local n=$1; shift
  ip netns exec "$n" env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u grpc_proxy \
    -u no_proxy -u NO_PROXY -u no_grpc_proxy "$@"
}
# fedsynth NS ARGS...: the real CLI in a namespace.
fedsynth() { local n=$1; shift; run "$n" "$NODE" "$CLI" "$@"; }
# bg NAME NS CMD...: start CMD in a namespace in the background, its output in logs/NAME.log.
bg() {
  local name=$1 n=$2; shift 2
  run "$n" "$@" >"$LOGS/$name.log" 2>&1 &
  PID[$name]=$!
}
# wait_log NAME REGEX SECONDS: until logs/NAME.log matches, while its process runs.
wait_log() {
  local name=$1 re=$2 secs=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qE "$re" "$LOGS/$name.log" 2>/dev/null && return 0
    kill -0 "${PID[$name]}" 2>/dev/null || fail "$name exited before its log showed /$re/ (see $LOGS/$name.log)"
    sleep 0.1
  done
  fail "$name: no /$re/ in its log within $secs s (see $LOGS/$name.log)"
}
# jget KEY.PATH < JSON: one value of a JSON document.
jget() {
  "$NODE" -e 'let v = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const k of process.argv[1].split(".")) v = v?.[k];
    process.stdout.write(v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));' "$1"
}

# ---- the network -----------------------------------------------------------------------------------------------
add_ns() {
  ip netns add "$1"
  NAMESPACES+=("$1")
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}
# add_host NAME IP: a namespace with eth0 = IP, its veth peer on the bridge.
add_host() {
  local n
  n=$(ns "$1")
  add_ns "$n"
  ip -n "$BR_NS" link add "v-$1" type veth peer name eth0 netns "$n"
  ip -n "$BR_NS" link set "v-$1" master br0 up
  ip -n "$n" addr add "$2/24" dev eth0
  ip -n "$n" link set eth0 up
}

step "network: namespaces, veth pairs and a bridge (prefix $P)"
add_ns "$BR_NS"
if [ "$HAVE_CONNTRACK" = true ] && ! ip netns exec "$BR_NS" conntrack -L >/dev/null 2>&1; then
  log "conntrack is installed but cannot read this kernel's connection table: using the nft counters alone"
  HAVE_CONNTRACK=false
fi
ip -n "$BR_NS" link add br0 type bridge
ip -n "$BR_NS" link set br0 up
add_host coord "$COORD_IP"
add_host outside "$OUTSIDE_IP"
[ "$MODE" = proxy ] && add_host proxy "$PROXY_IP"
for h in "${HOSPITALS[@]}"; do add_host "$h" "${HIP[$h]}"; done

# ---- the hospitals' firewalls ----------------------------------------------------------------------------------
# in_new_seen counts new inbound attempts before the filter, in_new_accepted new inbound packets that
# got through it (a chain after the filter): the latter must stay 0.
firewall() {
  cat <<EOF
table inet fsfw {
  counter in_new_seen {}
  counter in_new_dropped {}
  counter in_dropped_other {}
  counter in_new_accepted {}
  counter out_new_allowed {}
  counter out_dropped {}
  chain in_before_filter {
    type filter hook input priority -10; policy accept;
    iif != "lo" ct state new counter name "in_new_seen"
  }
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
    ct state new counter name "in_new_dropped" drop
    counter name "in_dropped_other" drop
  }
  chain in_after_filter {
    type filter hook input priority 10; policy accept;
    iif != "lo" ct state new counter name "in_new_accepted"
  }
  chain output {
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    ct state established,related accept
    ip daddr $ALLOW_IP tcp dport $ALLOW_PORT ct state new counter name "out_new_allowed" accept
    counter name "out_dropped" drop
  }
}
EOF
}
counter() { # NS NAME -> packets
  ip netns exec "$1" nft list counter inet fsfw "$2" | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

step "firewall: nftables on each hospital (inbound: drop all new; outbound: only $ALLOW_IP:$ALLOW_PORT)"
for h in "${HOSPITALS[@]}"; do
  firewall | ip netns exec "$(ns "$h")" nft -f -
  ip netns exec "$(ns "$h")" nft list ruleset >"$LOGS/$h-nft-ruleset.txt"
  if [ "$HAVE_CONNTRACK" = true ]; then
    # Every connection the hospital's kernel confirmed (accepted), in either direction, from now on.
    bg "$h-conntrack-events" "$(ns "$h")" stdbuf -oL conntrack -E -e NEW -o timestamp
  fi
done

# ---- listeners for the probes ----------------------------------------------------------------------------------
step "probe listeners: one inside each hospital, one on the outside host, one on a second coordinator port"
for h in "${HOSPITALS[@]}"; do bg "$h-listener" "$(ns "$h")" "$NODE" "$HERE/probe.mjs" listen "${HIP[$h]}" "$PROBE_PORT"; done
bg outside-listener "$(ns outside)" "$NODE" "$HERE/probe.mjs" listen "$OUTSIDE_IP" "$OUTSIDE_PORT"
bg coord-other-listener "$(ns coord)" "$NODE" "$HERE/probe.mjs" listen "$COORD_IP" "$COORD_OTHER_PORT"
for h in "${HOSPITALS[@]}"; do wait_log "$h-listener" "^listening on" 30; done
wait_log outside-listener "^listening on" 30
wait_log coord-other-listener "^listening on" 30

# ---- the coordinator (and the proxy) ---------------------------------------------------------------------------
step "coordinator init (--ip $COORD_IP)"
fedsynth "$(ns coord)" coordinator init --data-dir "$WORKDIR/coordinator" --ip "$COORD_IP" >"$LOGS/coordinator-init.log" 2>&1 \
  || fail "coordinator init failed (see $LOGS/coordinator-init.log)"
OPERATOR=$WORKDIR/coordinator/operator
op() { fedsynth "$(ns coord)" "$@" --coordinator "$COORD" --credentials "$OPERATOR"; }

step "coordinator start --listen $COORD"
bg coordinator "$(ns coord)" "$NODE" "$CLI" coordinator start --data-dir "$WORKDIR/coordinator" --listen "$COORD"
wait_log coordinator "listening on $COORD_IP:$COORD_PORT" 60

PROXY_ARGS=()
if [ "$MODE" = proxy ]; then
  step "HTTP CONNECT proxy on $PROXY_IP:$PROXY_PORT (may dial only $COORD)"
  bg proxy "$(ns proxy)" "$NODE" "$HERE/connect-proxy.mjs" --listen "$PROXY_IP:$PROXY_PORT" --allow "$COORD"
  wait_log proxy "listening on" 30
  PROXY_ARGS=(--proxy "http://$PROXY_IP:$PROXY_PORT")
fi

# ---- probe the firewall ----------------------------------------------------------------------------------------
# PROBES holds "FROM|FROM_NS|HOST|PORT|EXPECT" (EXPECT: open or blocked).
PROBES=()
probe() { PROBES+=("$1|$(ns "$2")|$3|$4|$5"); }
probe outside outside "$COORD_IP" "$COORD_OTHER_PORT" open            # control: that listener answers
probe coordinator coord "$OUTSIDE_IP" "$OUTSIDE_PORT" open              # control: the outside host answers
for h in "${HOSPITALS[@]}"; do
  probe "$h" "$h" "${HIP[$h]}" "$PROBE_PORT" open                          # control: its own listener answers locally
  probe coordinator coord "${HIP[$h]}" "$PROBE_PORT" blocked              # inbound from the coordinator
  probe outside outside "${HIP[$h]}" "$PROBE_PORT" blocked                # inbound from the outside host
  probe "$h" "$h" "$OUTSIDE_IP" "$OUTSIDE_PORT" blocked                   # egress anywhere else
  probe "$h" "$h" "$COORD_IP" "$COORD_OTHER_PORT" blocked                 # another port on the coordinator's host
  if [ "$MODE" = direct ]; then
    probe "$h" "$h" "$COORD_IP" "$COORD_PORT" open                        # the one allowed destination
  else
    probe "$h" "$h" "$COORD_IP" "$COORD_PORT" blocked                     # the coordinator only through the proxy
    probe "$h" "$h" "$PROXY_IP" "$PROXY_PORT" open                        # the one allowed destination
  fi
done
[ "$MODE" = proxy ] && probe proxy proxy "$COORD_IP" "$COORD_PORT" open  # the proxy may dial the coordinator

step "probes: ${#PROBES[@]} TCP connections (inbound to hospitals and egress elsewhere must fail)"
mkdir -p "$WORKDIR/probes"
probe_pids=()
for i in "${!PROBES[@]}"; do
  IFS='|' read -r _ from_ns host port _ <<<"${PROBES[$i]}"
  run "$from_ns" "$NODE" "$HERE/probe.mjs" connect "$host" "$port" "$PROBE_TIMEOUT_MS" >"$WORKDIR/probes/$i.txt" 2>&1 &
  probe_pids+=($!)
done
for pid in "${probe_pids[@]}"; do wait "$pid" || true; done
PROBE_JSON=()
PROBE_FAILURES=()
for i in "${!PROBES[@]}"; do
  IFS='|' read -r from _ host port expect <<<"${PROBES[$i]}"
  result=$(cat "$WORKDIR/probes/$i.txt")
  verdict=${result%% *}
  printf '%s -> %s:%s expect %s: %s\n' "$from" "$host" "$port" "$expect" "$result" >>"$LOGS/probes.log"
  log "probe $from -> $host:$port: $result (expected $expect)"
  PROBE_JSON+=("{\"from\":\"$from\",\"to\":\"$host:$port\",\"expect\":\"$expect\",\"result\":$(json_str "$result")}")
  [ "$verdict" = "$expect" ] || PROBE_FAILURES+=("$from -> $host:$port: $result, expected $expect")
done
[ ${#PROBE_FAILURES[@]} = 0 ] || fail "the firewall does not behave as intended: ${PROBE_FAILURES[*]}"
if [ "$HAVE_CONNTRACK" = true ]; then
  # The local control connection must have shown up as an event: the event logger is really listening.
  for h in "${HOSPITALS[@]}"; do wait_log "$h-conntrack-events" "\[NEW\] tcp .*src=${HIP[$h]//./\\.} dst=${HIP[$h]//./\\.} .*dport=$PROBE_PORT" 15; done
fi

# ---- the study -------------------------------------------------------------------------------------------------
step "site token for each hospital (operator credentials, on the coordinator's host)"
for h in "${HOSPITALS[@]}"; do
  op site token --site "${SITE[$h]}" --json >"$WORKDIR/token-${SITE[$h]}.json" 2>"$LOGS/token-${SITE[$h]}.log" \
    || fail "site token --site ${SITE[$h]} failed (see $LOGS/token-${SITE[$h]}.log)"
done

step "site enroll in each hospital"
for h in "${HOSPITALS[@]}"; do
  s=${SITE[$h]}
  mkdir -p "$WORKDIR/$h/data"
  cp "$EXAMPLES/$s.csv" "$WORKDIR/$h/data/$s.csv"
  fedsynth "$(ns "$h")" site enroll --coordinator "$COORD" --name "$s" \
    --token "$(jget token <"$WORKDIR/token-$s.json")" --ca-fingerprint "$(jget caFingerprint <"$WORKDIR/token-$s.json")" \
    --data-dir "$WORKDIR/$h/site" "${PROXY_ARGS[@]}" >"$LOGS/$h-enroll.log" 2>&1 \
    || fail "site enroll --name $s in $h failed (see $LOGS/$h-enroll.log)"
done

step "site start in each hospital"
for h in "${HOSPITALS[@]}"; do
  s=${SITE[$h]}
  bg "$h-agent" "$(ns "$h")" "$NODE" "$CLI" site start --coordinator "$COORD" --name "$s" --data "$WORKDIR/$h/data/$s.csv" \
    --data-dir "$WORKDIR/$h/site" --epsilon-cap 3 --delta-cap 1e-5 --reconnect-max-seconds 2 "${PROXY_ARGS[@]}"
done
for h in "${HOSPITALS[@]}"; do wait_log "$h-agent" "connected to the coordinator" 90; done

step "study create and start (sites: ${SITE[hospital-1]}, ${SITE[hospital-2]}, ${SITE[hospital-3]})"
op study create --name "firewalled-$MODE" --schema "$EXAMPLES/schema.json" \
  --site "${SITE[hospital-1]}" --site "${SITE[hospital-2]}" --site "${SITE[hospital-3]}" --epsilon 1 --json \
  >"$WORKDIR/study.json" 2>"$LOGS/study-create.log" || fail "study create failed (see $LOGS/study-create.log)"
STUDY_ID=$(jget studyId <"$WORKDIR/study.json")
[ -n "$STUDY_ID" ] || fail "study create printed no studyId (see $WORKDIR/study.json)"
op study start "$STUDY_ID" >"$LOGS/study-start.log" 2>&1 || fail "study start $STUDY_ID failed (see $LOGS/study-start.log)"

step "study $STUDY_ID: waiting for it to end (study status, at most $STUDY_TIMEOUT s)"
STATE=""
deadline=$((SECONDS + STUDY_TIMEOUT))
while :; do
  if op study status "$STUDY_ID" --json >"$WORKDIR/status.json" 2>"$LOGS/study-status.log"; then
    STATE=$(jget state <"$WORKDIR/status.json")
    case "$STATE" in created|running|"") ;; *) break ;; esac
  fi
  [ $SECONDS -lt $deadline ] || fail "study $STUDY_ID still '$STATE' after $STUDY_TIMEOUT s"
  sleep 2
done
log "study $STUDY_ID ended: $STATE"
[ "$STATE" = completed ] || fail "study $STUDY_ID ended '$STATE': $(jget statusMessage <"$WORKDIR/status.json")"

step "model export and sample"
op model export --study "$STUDY_ID" --out "$WORKDIR/model.fsm" >"$LOGS/model-export.log" 2>&1 \
  || fail "model export failed (see $LOGS/model-export.log)"
fedsynth "$(ns coord)" sample --model "$WORKDIR/model.fsm" --rows 5 --out "$WORKDIR/sample.csv" --seed 1 >"$LOGS/sample.log" 2>&1 \
  || fail "sample failed (see $LOGS/sample.log)"
ROWS=$(($(wc -l <"$WORKDIR/sample.csv") - 1))
[ "$ROWS" -gt 0 ] || fail "sample wrote no rows (see $WORKDIR/sample.csv)"

# ---- what each hospital's kernel saw ---------------------------------------------------------------------------
step "inbound accounting: nft counters and conntrack on each hospital"
if [ "$HAVE_CONNTRACK" = true ]; then
  for h in "${HOSPITALS[@]}"; do
    ip netns exec "$(ns "$h")" conntrack -L >"$LOGS/$h-conntrack-table.txt" 2>&1 || true
    kill "${PID[$h-conntrack-events]}" 2>/dev/null || true
  done
  for h in "${HOSPITALS[@]}"; do wait "${PID[$h-conntrack-events]}" 2>/dev/null || true; done
fi
# flows FILE MY_IP: "inbound outbound other": confirmed flows by their originator (first src=, dst=).
flows() {
  awk -v me="$2" -v allow="$ALLOW_IP" -v aport="$ALLOW_PORT" '
    /src=/ && ($0 ~ /\[NEW\]/ || FILENAME ~ /table/) {
      s = ""; d = ""; dp = ""
      for (i = 1; i <= NF; i++) {
        if (s == "" && $i ~ /^src=/) s = substr($i, 5)
        else if (d == "" && $i ~ /^dst=/) d = substr($i, 5)
        else if (dp == "" && $i ~ /^dport=/) dp = substr($i, 7)
      }
      if (s == me && d == me) next                      # the host talking to itself
      if (d == me) inbound++
      else if (s == me && d == allow && dp == aport) outbound++
      else other++
    }
    END { printf "%d %d %d\n", inbound, outbound, other }' "$1"
}
HOSP_JSON=()
INBOUND_JSON=()
INBOUND_FAILURES=()
for h in "${HOSPITALS[@]}"; do
  n=$(ns "$h")
  ip netns exec "$n" nft list ruleset >"$LOGS/$h-nft-counters.txt"
  seen=$(counter "$n" in_new_seen)
  dropped=$(counter "$n" in_new_dropped)
  passed=$(counter "$n" in_new_accepted)
  out_allowed=$(counter "$n" out_new_allowed)
  out_dropped=$(counter "$n" out_dropped)
  remote_hits=$(grep -c "accepted" "$LOGS/$h-listener.log" | tr -d ' ' || true)
  remote_hits=$((remote_hits - $(grep -c "accepted ${HIP[$h]}:" "$LOGS/$h-listener.log" || true)))
  if [ "$HAVE_CONNTRACK" = true ]; then
    read -r ct_in ct_out ct_other < <(flows "$LOGS/$h-conntrack-events.log" "${HIP[$h]}")
    read -r tab_in _ _ < <(flows "$LOGS/$h-conntrack-table.txt" "${HIP[$h]}")
    accepted=$((ct_in > tab_in ? ct_in : tab_in))
    [ "$ct_out" -gt 0 ] || INBOUND_FAILURES+=("$h: conntrack recorded no outbound connection to $ALLOW_IP:$ALLOW_PORT, so its record cannot be trusted")
    [ "$ct_other" = 0 ] || INBOUND_FAILURES+=("$h: conntrack recorded $ct_other connections to other destinations")
    ct_json="\"conntrack_inbound_connections\":$ct_in,\"conntrack_outbound_connections\":$ct_out,\"conntrack_other_connections\":$ct_other,"
  else
    accepted=$passed
    ct_json=""
  fi
  [ "$accepted" = 0 ] || INBOUND_FAILURES+=("$h accepted $accepted inbound connections")
  [ "$passed" = 0 ] || INBOUND_FAILURES+=("$h: $passed new inbound packets got past the filter")
  [ "$remote_hits" = 0 ] || INBOUND_FAILURES+=("$h: its listener accepted $remote_hits connections from other hosts")
  [ "$dropped" -gt 0 ] || INBOUND_FAILURES+=("$h: the inbound probes left no trace in the drop counter")
  log "$h (${SITE[$h]}, ${HIP[$h]}): inbound accepted $accepted; new inbound packets seen $seen, dropped $dropped, past the filter $passed; outbound new allowed $out_allowed, dropped packets $out_dropped"
  INBOUND_JSON+=("\"$h\":$accepted")
  HOSP_JSON+=("\"$h\":{\"site\":\"${SITE[$h]}\",\"ip\":\"${HIP[$h]}\",\"inbound_accepted\":$accepted,${ct_json}\"nft_inbound_new_seen_packets\":$seen,\"nft_inbound_new_dropped_packets\":$dropped,\"nft_inbound_new_past_filter_packets\":$passed,\"nft_outbound_new_allowed\":$out_allowed,\"nft_outbound_dropped_packets\":$out_dropped,\"listener_remote_accepted\":$remote_hits}")
done
[ ${#INBOUND_FAILURES[@]} = 0 ] || fail "inbound accounting: ${INBOUND_FAILURES[*]}"

PROXY_JSON=""
if [ "$MODE" = proxy ]; then
  tunnels=$(grep -c " tunnel .* -> $COORD\$" "$LOGS/proxy.log" || true)
  refused=$(grep -c " refused " "$LOGS/proxy.log" || true)
  [ "$tunnels" -ge ${#HOSPITALS[@]} ] || fail "the proxy opened only $tunnels tunnels to $COORD (see $LOGS/proxy.log)"
  PROXY_JSON=",\"proxy\":\"$PROXY_IP:$PROXY_PORT\",\"proxy_tunnels_to_coordinator\":$tunnels,\"proxy_refused\":$refused"
fi

STEP="summary"
join_comma() { local IFS=,; echo "$*"; }
SUMMARY_PRINTED=1
printf '{"mode":"%s","ok":true,"study_id":"%s","study_state":"%s","sites":["%s","%s","%s"],"coordinator":"%s","allowed_egress":"%s:%s","conntrack":%s,"inbound_accepted":{%s},"probes_as_expected":true,"probes":[%s],"hospitals":{%s}%s,"rows_sampled":%d,"workdir":"%s"}\n' \
  "$MODE" "$STUDY_ID" "$STATE" "${SITE[hospital-1]}" "${SITE[hospital-2]}" "${SITE[hospital-3]}" "$COORD" "$ALLOW_IP" "$ALLOW_PORT" \
  "$HAVE_CONNTRACK" "$(join_comma "${INBOUND_JSON[@]}")" "$(join_comma "${PROBE_JSON[@]}")" "$(join_comma "${HOSP_JSON[@]}")" "$PROXY_JSON" "$ROWS" "$WORKDIR"
log "done: study $STUDY_ID $STATE through the firewall, zero inbound connections accepted at every hospital"
