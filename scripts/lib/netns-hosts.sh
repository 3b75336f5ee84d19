# Sourced by tests/integration/netns_test.sh and bench/scaling.sh: emulated hosts on one machine.
#
#   netns_hosts_up PREFIX NET COUNT    bridge PREFIXbr; namespaces PREFIXn0..; in namespace i the
#                                      veth end PREFIXp<i> with address NET.(i+1)/24, the other
#                                      end PREFIXv<i> on the bridge
#   netns_hosts_down PREFIX COUNT      removes all of it (never fails)
# PREFIX keeps interface names under 16 characters (e.g. "ddt$$"). Needs root and iproute2.

netns_hosts_up() {
  local p=$1 net=$2 count=$3 i ns
  ip link add "${p}br" type bridge
  ip link set "${p}br" up
  for ((i = 0; i < count; i++)); do
    ns="${p}n$i"
    ip netns add "$ns"
    ip link add "${p}v$i" type veth peer name "${p}p$i"
    ip link set "${p}p$i" netns "$ns"
    ip link set "${p}v$i" master "${p}br" up
    ip netns exec "$ns" ip addr add "$net.$((i + 1))/24" dev "${p}p$i"
    ip netns exec "$ns" ip link set "${p}p$i" up
    ip netns exec "$ns" ip link set lo up
  done
}

netns_hosts_down() {
  local p=$1 count=$2 i
  for ((i = 0; i < count; i++)); do
    ip netns del "${p}n$i" 2>/dev/null || true
    ip link del "${p}v$i" 2>/dev/null || true
  done
  ip link del "${p}br" 2>/dev/null || true
}
