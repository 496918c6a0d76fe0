#!/usr/bin/env bash
# The Debian package, proven on a fresh Debian 12 root, as a new admin would
# use it. Run it there with the shared tool (it clones the committed HEAD):
#
#   ../shared/tools/fresh-debian --repo . -- tests/package/prove-fresh.sh
#
# Installs the build packages (dev.sh's list), builds the .deb with CPack,
# installs it with `apt install ./build/cliqhost_*.deb`, and checks: the
# cliqhost system user, /var/lib/cliqhost owned by it, the config as a
# conffile, the unit installed but neither enabled nor started. Then it
# follows the README's "try it" path (a development key pair, its public
# half where the config looks for Cliq's key), runs what the unit's
# ExecStart runs as the unit's User, in its WorkingDirectory, with its
# Environment and EnvironmentFile, and checks that `cliqhost invoke` (signed
# with the development key) gets the example command's answer, that the host
# runs as cliqhost and wrote its state in /var/lib/cliqhost, and that it
# stops cleanly. Last, `apt-get purge` removes it all. Exit 0: proven.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# One list of build packages: dev.sh's. `file` is what CPack's DEB generator
# reads the binary with to find its library dependencies.
eval "$(sed -n '/^BUILD_PKGS=(/,/)/p' dev.sh)"
step "installing the build packages"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${BUILD_PKGS[@]}" file >/dev/null

step "building the package: cmake, then the package target (CPack's DEB generator)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)" --target package >/dev/null
deb=$(ls build/cliqhost_*.deb)
echo "$deb"
dpkg-deb --field "$deb" Package Version Depends

step "apt install ./$deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb" >/dev/null
dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' cliqhost

step "the system user, its state folder, the conffile, the unit"
getent passwd cliqhost || fail "no cliqhost user"
uid=$(id -u cliqhost)
[ "$uid" -lt 1000 ] || fail "cliqhost is not a system user (uid $uid)"
stat -c '%U:%G %a %n' /var/lib/cliqhost
[ "$(stat -c %U:%G /var/lib/cliqhost)" = cliqhost:cliqhost ] || fail "/var/lib/cliqhost is not cliqhost's"
dpkg-query -W -f='${Conffiles}\n' cliqhost
dpkg-query -W -f='${Conffiles}\n' cliqhost | grep -q '^ /etc/cliqhost/cliqhost.lua ' \
  || fail "the config is not a conffile"
unit=/lib/systemd/system/cliqhost.service
[ -f "$unit" ] || fail "no $unit"
ls /etc/systemd/system/*.wants/cliqhost.service 2>/dev/null && fail "the unit was enabled"
# Processes running the installed binary (this root's /proc may show the
# machine's other processes too: compare the file, not the name).
installed_hosts() {
  for p in /proc/[0-9]*; do
    [ "$p/exe" -ef /usr/bin/cliqhost ] 2>/dev/null && basename "$p"
  done
  return 0
}
[ -z "$(installed_hosts)" ] || fail "a cliqhost process runs after install"
echo "unit installed, not enabled, nothing started"
grep -E '^(scripts|data_dir|keys|listen) ' /etc/cliqhost/cliqhost.lua

step "a development key where the config looks for Cliq's key (the README's try-it path)"
cliqhost keygen /root/dev-keys
install -m 0644 /root/dev-keys/cliq-dev.pub /etc/cliqhost/keys/cliq.pub
# A webhook token in the service's environment file, as an admin adds one.
echo 'CLIQ_WEBHOOK_TOKEN=1001.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef' \
  >>/etc/default/cliqhost

step "what the unit runs, as its user, with its environment"
# The [Service] section's key=value lines, as systemd reads them.
service_key() { sed -n '/^\[Service\]/,/^\[/p' "$unit" | sed -n "s/^$1=//p"; }
user=$(service_key User)
workdir=$(service_key WorkingDirectory)
exec_start=$(service_key ExecStart)
envs=()
for assignment in $(service_key Environment); do envs+=("$assignment"); done
while read -r envfile; do
  optional=0
  [[ $envfile == -* ]] && { optional=1; envfile=${envfile#-}; }
  [ -f "$envfile" ] || { [ $optional -eq 1 ] && continue; fail "no $envfile"; }
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    envs+=("$line")
  done <"$envfile"
done < <(service_key EnvironmentFile)
echo "User=$user WorkingDirectory=$workdir"
echo "ExecStart=$exec_start"
echo "environment: ${envs[*]%%=*}"
log=$(mktemp)
cd "$workdir"
# shellcheck disable=SC2086 # ExecStart's words, as systemd splits this one
runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" $exec_start \
  >"$log" 2>&1 &
host=$!
cd - >/dev/null
stop_host() { kill "$host" 2>/dev/null || true; }
trap stop_host EXIT
for _ in $(seq 1 300); do
  grep -q "listening on" "$log" && break
  kill -0 "$host" 2>/dev/null || { cat "$log"; fail "the host stopped"; }
  sleep 0.1
done
grep -q "listening on" "$log" || { cat "$log"; fail "the host did not start"; }

step "cliqhost invoke command hello"
reply=$(cliqhost invoke command hello --key /root/dev-keys/cliq-dev.pem)
echo "$reply"
grep -q "cliqhost is answering" <<<"$reply" || fail "no answer from the example command"
hostpid=$(installed_hosts)
[ "$(wc -w <<<"$hostpid")" -eq 1 ] || fail "expected one host process, found: $hostpid"
echo "host process $hostpid runs as $(stat -c %U "/proc/$hostpid")"
[ "$(stat -c %U "/proc/$hostpid")" = cliqhost ] || fail "the host does not run as cliqhost"
ls -l /var/lib/cliqhost
[ -n "$(find /var/lib/cliqhost -user cliqhost -name 'outbox*')" ] || fail "no state in /var/lib/cliqhost"

step "the operator's commands, as the service's user (the README's way)"
runuser -u cliqhost -- cliqhost outbox list --config /etc/cliqhost/cliqhost.lua
runuser -u cliqhost -- env "${envs[@]}" cliqhost tokens --config /etc/cliqhost/cliqhost.lua

step "SIGTERM (what systemctl stop sends)"
kill -TERM "$hostpid"
wait "$host" && rc=0 || rc=$?
trap - EXIT
cat "$log"
[ "$rc" -eq 0 ] || fail "the host exited $rc"

step "an upgrade (the same package again): the user, its folder and the outbox stay"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "./$deb" >/dev/null
[ -f /var/lib/cliqhost/outbox.db ] || fail "the upgrade lost /var/lib/cliqhost/outbox.db"
[ "$(stat -c %U /var/lib/cliqhost)" = cliqhost ] || fail "the upgrade changed the folder's owner"
echo "upgraded; outbox kept"

step "apt-get purge cliqhost (after \`systemctl enable cliqhost\`: its link goes too)"
mkdir -p /etc/systemd/system/multi-user.target.wants
ln -sf /lib/systemd/system/cliqhost.service /etc/systemd/system/multi-user.target.wants/cliqhost.service
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q cliqhost >/dev/null
for f in /usr/bin/cliqhost /var/lib/cliqhost /etc/cliqhost/cliqhost.lua \
         /etc/systemd/system/multi-user.target.wants/cliqhost.service; do
  [ ! -e "$f" ] || fail "purge left $f behind"
done
echo "purged"
echo "PROVEN: the package installs, runs as cliqhost with the unit's command and environment, and answers"
