#!/usr/bin/env bash
# shellcheck disable=SC2317 # the cleanup functions run from the EXIT trap
# Fresh-machine check (issue 7): does a new user's Debian 12 machine pass the README's two
# commands?
#
# Builds a clean Debian 12 (bookworm) root with mmdebstrap from Debian's packages, holding only
# what a new user has: Debian's own nodejs and npm, git and ca-certificates. The mirrors are this
# machine's apt sources (/etc/apt/sources.list.d/*.sources|*.list and /etc/apt/sources.list), never
# a host name of our own. Into that root it copies this machine's trust store and settings, nothing
# else:
#   - the local CA certificates (/usr/local/share/ca-certificates), then runs update-ca-certificates
#     inside;
#   - the files that the CA environment variables name (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE,
#     REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO, DENO_CERT, ...), to /etc/rkhil-host-ca/
#     inside; the same variables are set inside to the copied paths;
#   - /etc/apt/sources.list.d (the *.sources and *.list files) and /etc/apt/sources.list, and the
#     machine's own apt settings: the files in /etc/apt/apt.conf.d that no Debian package owns (a
#     machine of this kind has them from its image; one sets Acquire::Check-Valid-Until "false",
#     without which apt refuses the mirror's expired sid Release file);
#   - ~/.npmrc (to /root/.npmrc);
#   - /etc/resolv.conf, so names resolve as on this machine.
# It clones the COMMITTED `main` of this repository (git clone of the repository, not the work
# tree) to /root/rkhil inside, makes the root a mount point (a bind of itself, as / is on a
# machine), mounts /proc, /sys, /dev, /dev/pts (and a tmpfs on /dev/shm),
# and runs, as root in a chroot with CI=true and stdin from /dev/null:
#     ./rkhil run      then      ./rkhil test
# Their output is printed and kept in the log directory (build.log, run.log, test.log,
# summary.txt). The script ends with the test command's `N passed, N failed, N skipped` line and
# the wall times (mmdebstrap build, each command); it exits 0 only when every command it ran
# succeeded. Mounts are undone on every exit path (trap), and processes left inside the root
# are ended first. Needs root.
#
# Usage: scripts/fresh_machine.sh [options]
#   --dir DIR          where to build (default /var/tmp/rkhil-fresh; not inside the repository).
#                      The root is DIR/root, the logs DIR/logs/<UTC time>/.
#   --keep             keep DIR/root afterwards (default: remove it; the logs are always kept)
#   --reuse            use an existing DIR/root (from an earlier --keep) instead of building one;
#                      the repository is cloned afresh, caches inside the root stay (development)
#   --only PART        build | run | test: build the root only, or run only that command
#                      (development; the default is both commands)
#   --test-args ARGS   arguments for `./rkhil test` (e.g. "unit"; default none: the whole suite)
#   --variant V        mmdebstrap variant: minbase (default: the smallest Debian, as in a
#                      container), important (a debootstrap'd system) or standard
#   --branch B         the committed branch to clone (default main)
#   -h, --help         this text
# Exit status: 0 all commands passed; 1 a command failed; 2 bad usage; 3 the root could not be
# built or prepared.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir=/var/tmp/rkhil-fresh
keep=0
reuse=0
only=""
test_args=""
variant=minbase
branch=main

usage() { sed -n '/^# Usage:/,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "fresh_machine: $1" >&2; exit "${2:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a directory, e.g. --dir /var/tmp/rkhil-fresh"; dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --reuse) reuse=1; shift ;;
    --only)
      [ $# -ge 2 ] || die "--only needs build, run or test"
      case "$2" in build | run | test) only="$2" ;; *) die "--only takes build, run or test, not '${2:0:40}'" ;; esac
      shift 2 ;;
    --test-args) [ $# -ge 2 ] || die "--test-args needs a value, e.g. --test-args unit"; test_args="$2"; shift 2 ;;
    --variant)
      [ $# -ge 2 ] || die "--variant needs minbase, important or standard"
      case "$2" in minbase | important | standard) variant="$2" ;; *) die "--variant takes minbase, important or standard, not '${2:0:40}'" ;; esac
      shift 2 ;;
    --branch) [ $# -ge 2 ] || die "--branch needs a branch name, e.g. --branch main"; branch="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '${1:0:40}'; see --help" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap, chroot and mounts): run it with sudo"
[ -n "$dir" ] || die "--dir is empty; give a directory such as /var/tmp/rkhil-fresh"
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
dir="$(realpath -m "$dir")"
[ "$dir" != "/" ] || die "--dir / is not a build directory; give one such as /var/tmp/rkhil-fresh"
case "$dir/" in "$repo"/*) die "--dir $dir is inside the repository; build outside it (default /var/tmp/rkhil-fresh)" ;; esac
git -C "$repo" rev-parse --verify -q "refs/heads/$branch" >/dev/null ||
  die "branch '${branch:0:40}' has no commit in $repo; use --branch main"
root="$dir/root"
if [ "$reuse" -eq 1 ]; then
  [ -x "$root/usr/bin/node" ] || die "--reuse: no built root at $root (build one first with --keep)"
elif [ -e "$root" ]; then
  die "$root already exists (a kept root?); remove it, pass --reuse, or choose another --dir"
fi
mkdir -p "$dir"
logs="$dir/logs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$logs"
summary="$logs/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }

# --- mounts and cleanup ------------------------------------------------------------------------
mounted=()
mount_in() { # mount_in <target under root> <mount args...>
  local target="$root$1"; shift
  mkdir -p "$target"
  mount "$@" "$target"
  mounted+=("$target")
}
kill_inside() { # ends the processes whose root is our chroot (only those this script started)
  local pids=() p r
  for p in /proc/[0-9]*; do
    r="$(readlink "$p/root" 2>/dev/null)" || continue
    if [ "$r" = "$root" ]; then pids+=("${p#/proc/}"); fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  echo "fresh_machine: ending ${#pids[@]} process(es) left inside the root:" >&2
  for p in "${pids[@]}"; do
    echo "  $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)" >&2
  done
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 2
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
unmount_all() {
  local i t
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    t="${mounted[$i]}"
    umount "$t" 2>/dev/null || umount -l "$t" || echo "fresh_machine: could not unmount $t" >&2
  done
  mounted=()
}
still_mounted() { # true when anything is mounted at or below the root
  [ -e "$root" ] || return 1
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -d "$root" ]; then kill_inside; fi
  unmount_all
  if [ "$keep" -eq 0 ] && [ -e "$root" ]; then
    if still_mounted; then
      echo "fresh_machine: something is still mounted under $root; not removing it" >&2
    else
      rm -rf --one-file-system "$root"
    fi
  elif [ -e "$root" ]; then
    echo "fresh_machine: root kept at $root"
  fi
  echo "fresh_machine: logs in $logs"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
hms() { awk -v s="$1" 'BEGIN { printf "%d min %02d s", s / 60, s % 60 }'; }

# --- the CA environment variables and the apt sources of this machine ---------------------------
ca_vars=(NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
  GIT_SSL_CAINFO GIT_SSL_CAPATH DENO_CERT PIP_CERT AWS_CA_BUNDLE NIX_SSL_CERT_FILE)
sources=()
if [ -f /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb' /etc/apt/sources.list; then
  sources+=(/etc/apt/sources.list)
fi
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  if [ -f "$f" ]; then sources+=("$f"); fi
done
[ ${#sources[@]} -gt 0 ] || die "this machine has no apt sources (/etc/apt/sources.list[.d]); nothing to build from" 3

# --- build -------------------------------------------------------------------------------------
build_secs=""
if [ "$reuse" -eq 0 ]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "fresh_machine: installing mmdebstrap with apt-get ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      -o DPkg::Lock::Timeout=600 mmdebstrap >>"$logs/build.log" 2>&1 ||
      die "apt-get install mmdebstrap failed; see $logs/build.log" 3
  fi
  echo "fresh_machine: building a Debian 12 root ($variant + nodejs npm git ca-certificates) in $root"
  echo "fresh_machine: from the apt sources ${sources[*]}"
  t0="$(now)"
  if ! mmdebstrap --mode=root --variant="$variant" --include=nodejs,npm,git,ca-certificates \
    bookworm "$root" "${sources[@]}" >>"$logs/build.log" 2>&1; then
    tail -n 20 "$logs/build.log" >&2
    die "mmdebstrap failed; see $logs/build.log" 3
  fi
  build_secs="$(secs "$t0" "$(now)")"
  note "mmdebstrap build: ${build_secs} s ($(du -sh --one-file-system "$root" | cut -f1))"

  # This machine's trust store and settings, nothing else.
  rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
  for f in "${sources[@]}"; do
    case "$f" in
      /etc/apt/sources.list) cp "$f" "$root/etc/apt/sources.list" ;;
      *) cp "$f" "$root/etc/apt/sources.list.d/" ;;
    esac
  done
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    dpkg -S "$f" >/dev/null 2>&1 || cp "$f" "$root/etc/apt/apt.conf.d/"
  done
  if [ -d /usr/local/share/ca-certificates ]; then
    cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  if [ -f "$HOME/.npmrc" ]; then install -m 600 "$HOME/.npmrc" "$root/root/.npmrc"; fi
  if [ -e /etc/resolv.conf ]; then cp -L /etc/resolv.conf "$root/etc/resolv.conf"; fi
fi

# The files the CA variables name, copied to /etc/rkhil-host-ca inside (every time: the variables
# are this run's environment); directories (SSL_CERT_DIR) are the root's own /etc/ssl/certs.
inside_env=(HOME=/root USER=root LOGNAME=root CI=true
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
mkdir -p "$root/etc/rkhil-host-ca"
for v in "${ca_vars[@]}"; do
  val="${!v:-}"
  [ -n "$val" ] || continue
  if [ -d "$val" ]; then
    inside_env+=("$v=/etc/ssl/certs")
  elif [ -f "$val" ]; then
    name="$v-$(basename "$val")"
    cp -L "$val" "$root/etc/rkhil-host-ca/$name"
    inside_env+=("$v=/etc/rkhil-host-ca/$name")
  else
    echo "fresh_machine: $v names $val, which does not exist; not set inside" >&2
  fi
done

inside() { # inside <command...>: runs in the root with only the environment above, no stdin
  chroot "$root" /usr/bin/env -i "${inside_env[@]}" "$@" </dev/null
}

# The root is made a mount point of its own (a bind of itself), as / is on a real machine:
# `unshare --mount` (the tests' SSH servers) makes / private and fails with EINVAL otherwise.
mount_in "" --bind "$root"
mount_in /proc -t proc proc
mount_in /sys --bind /sys
mount_in /dev --bind /dev
mount_in /dev/pts --bind /dev/pts
mount_in /dev/shm -t tmpfs -o mode=1777,nosuid,nodev tmpfs

if [ "$reuse" -eq 0 ]; then
  inside update-ca-certificates >>"$logs/build.log" 2>&1 ||
    die "update-ca-certificates failed inside the root; see $logs/build.log" 3
fi
note "inside: Debian $(cat "$root/etc/debian_version"), Node.js $(inside node --version), npm $(inside npm --version), $(inside git --version)"

# The committed branch, cloned from the repository (not the work tree).
rm -rf --one-file-system "$root/root/rkhil"
git clone -q --no-hardlinks --branch "$branch" --single-branch "$repo" "$root/root/rkhil" >>"$logs/build.log" 2>&1 ||
  die "git clone of $repo ($branch) failed; see $logs/build.log" 3
note "cloned $branch at $(git -C "$root/root/rkhil" log -1 --format='%h %cI %s' | cut -c1-100)"

if [ "$only" = build ]; then
  note "built; --only build: no command run"
  exit 0
fi

# --- the README's two commands ------------------------------------------------------------------
failed=0
declare -A wall=()
run_cmd() { # run_cmd <name> <args...>: ./rkhil <args> inside, printed and logged to <name>.log
  local name="$1"; shift
  local log="$logs/$name.log" t0 status
  echo "fresh_machine: ./rkhil $* (log $log)"
  t0="$(now)"
  set +e
  inside /bin/sh -c 'cd /root/rkhil && exec ./rkhil "$@"' rkhil "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  wall[$name]="$(secs "$t0" "$(now)")"
  note "./rkhil $*: exit $status, wall $(hms "${wall[$name]}") (${wall[$name]} s)"
  [ "$status" -eq 0 ] || failed=1
}

if [ -z "$only" ] || [ "$only" = run ]; then run_cmd run run; fi
if [ -z "$only" ] || [ "$only" = test ]; then
  # shellcheck disable=SC2086 # --test-args is split into words on purpose
  run_cmd test test $test_args
fi

echo "---- fresh machine summary (also in $summary)"
cat "$summary"
if [ -f "$logs/test.log" ]; then
  line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logs/test.log" | tail -n 1 || true)"
  echo "${line:-./rkhil test printed no 'N passed, N failed' line}" | tee -a "$summary"
fi
exit "$failed"
