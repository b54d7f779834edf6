#!/usr/bin/env bash
# The Raspberry Pi install, proven on linux aarch64 under emulation: a Debian bookworm arm64 root (what 64-bit
# Raspberry Pi OS is built on) run by qemu-user through binfmt, the install of docs/raspberry-pi.md inside it, then
# `mnist-edge serve` there and scripts/aarch64_compare.py: every model must answer the drawings as the x86 server does.
#
#   sudo scripts/aarch64_check.sh                   # a fresh root in /var/tmp, removed at the end (what CI runs)
#   sudo scripts/aarch64_check.sh --root DIR        # keep the bookworm root in DIR and reuse it next time
#   options: --mirror URL (default: the Debian archive apt uses here), --count N (drawn digits, default 200)
#
# Needs root, `apt-get install qemu-user-static binfmt-support debootstrap`, MNIST ($MNIST_DATA) and the project's
# venv ($PYTHON, default .venv/bin/python). Emulated timings say nothing about a Pi: only each phase's wall time
# is shown.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
ROOT="" MIRROR="" COUNT=200 FRESH=0 SERVER_PID="" WORK="" STEP_PID=""
PLATFORMS=(manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)

die() { echo "aarch64 check: error: $*" >&2; exit 1; }

# A long step runs in the background and is waited for: bash runs a trap only between commands, and `wait` is one,
# so an interrupt stops the run at once instead of after the step.
# The first argument is its log file, or - to print as it goes.
step() {
  local log=$1 rc=0
  shift
  if [ "$log" = - ]; then "$@" & else "$@" >"$log" 2>&1 & fi
  STEP_PID=$!
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  return "$rc"
}

while [ $# -gt 0 ]; do
  case $1 in
    --root) ROOT=${2:?--root needs a folder}; shift 2 ;;
    --mirror) MIRROR=${2:?--mirror needs a URL}; shift 2 ;;
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    *) die "unknown argument $1 (see the top of $0)" ;;
  esac
done

# The first archive apt uses here for a release itself (a suite without a dash: not -security, not -updates).
apt_mirror() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }  # skip [options]
                       if ($(i + 1) !~ /-/) { print $i; exit } }' "$file"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    awk 'BEGIN { RS = "" } /(^|\n)Types:[^\n]*deb( |\n|$)/ {
           uris = ""; suites = ""; n = split($0, lines, "\n")
           for (k = 1; k <= n; k++) {
             if (lines[k] ~ /^URIs:/) uris = lines[k]
             if (lines[k] ~ /^Suites:/) suites = lines[k]
           }
           split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
           for (k = 2; k <= m; k++) if (s[k] != "" && s[k] !~ /-/) { print u[2]; exit }
         }' "$file"
  done
}

# Stop what this script started in the root, unmount, and remove a fresh root; on success and failure alike.
cleanup() {
  local rc=$? pid mounted=0
  [ -z "$STEP_PID" ] || kill -TERM "$STEP_PID" 2>/dev/null || true
  if [ -n "$SERVER_PID" ]; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 -- "-$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$ROOT" ] && [ -d "$ROOT" ]; then
    for pid in /proc/[0-9]*; do  # anything left running in the root would keep its mounts busy
      [ "$(readlink "$pid/root" 2>/dev/null)" = "$ROOT" ] && kill -KILL "${pid#/proc/}" 2>/dev/null || true
    done
    for point in "$ROOT/dev" "$ROOT/proc"; do
      if mountpoint -q "$point"; then
        umount -R "$point" 2>/dev/null || umount -R -l "$point" \
          || { echo "aarch64 check: $point stays mounted" >&2; mounted=1; }
      fi
    done
    # Never remove a root that still has the host's /dev or /proc mounted in it.
    if [ "$FRESH" = 1 ] && [ "$mounted" = 0 ]; then rm -rf --one-file-system "$ROOT"; fi
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts): run it with sudo"
for tool in debootstrap update-binfmts chroot; do
  command -v "$tool" >/dev/null || die "no $tool: apt-get install qemu-user-static binfmt-support debootstrap"
done
[ -x "$PY" ] || die "no project venv at $PY: set PYTHON to a python with mnist-edge installed"
[ -n "${MNIST_DATA:-}" ] || die "set MNIST_DATA to the MNIST folder (the drawings are made from its test digits)"

# binfmt: the kernel hands every aarch64 program to qemu-user (F: qemu is opened now, so the root needs no copy of it).
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 || die "cannot enable qemu-aarch64 in binfmt: apt-get install qemu-user-static"
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "binfmt has qemu-aarch64 registered but not enabled"

# Only what the server needs from the host goes in: no /sys (with it, cpuinfo makes ONNX Runtime and LiteRT die
# with SIGSEGV under qemu), and no host environment (pip settings, MNIST_EDGE_* variables).
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$ROOT" "$@"; }
now() { date +%s; }

WORK=$(mktemp -d /var/tmp/mnist-edge-aarch64-work.XXXXXX)
if [ -z "$ROOT" ]; then
  ROOT=$(mktemp -d /var/tmp/mnist-edge-aarch64-root.XXXXXX) FRESH=1
fi
mkdir -p "$ROOT" && ROOT=$(realpath "$ROOT")
[ "$ROOT" != / ] || die "--root / would debootstrap over this machine"
MARK="$ROOT/.mnist-edge-bookworm-arm64"  # written once debootstrap has finished: a root worth reusing

started=$(now)
if [ -e "$MARK" ]; then
  echo "bookworm arm64 root: reusing $ROOT"
else
  [ -z "$(ls -A "$ROOT")" ] || die "$ROOT is neither empty nor a root this script finished: remove it or pick another"
  MIRROR=${MIRROR:-$(apt_mirror | head -n 1)}
  [ -n "$MIRROR" ] || die "no Debian archive found in /etc/apt/sources.list*: pass --mirror URL"
  echo "bookworm arm64 root: debootstrap from $MIRROR into $ROOT"
  step "$WORK/debootstrap.log" debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv bookworm \
    "$ROOT" "$MIRROR" || die "debootstrap failed: $(tail -n 1 "$WORK/debootstrap.log")"
  touch "$MARK"
fi
t_root=$(( $(now) - started ))

# On "your laptop": the project's wheel and the Pi's wheels of .[serve,ui], as docs/raspberry-pi.md says.
started=$(now)
cd "$REPO"
step "$WORK/wheel.log" "$PY" -m pip wheel --quiet --no-deps . -w "$WORK/wheels" \
  || die "pip wheel failed: $(tail -n 1 "$WORK/wheel.log")"
platforms=(); for tag in "${PLATFORMS[@]}"; do platforms+=(--platform "$tag"); done
step "$WORK/download.log" "$PY" -m pip download --quiet --dest "$WORK/wheels" --only-binary=:all: --implementation cp \
  --python-version 3.11 "${platforms[@]}" "$(ls "$WORK"/wheels/mnist_edge-*.whl)[serve,ui]" \
  || die "pip download of the aarch64 wheels failed: $(tail -n 1 "$WORK/download.log")"
echo "wheels: $(ls "$WORK/wheels" | wc -l) for linux aarch64, $(du -sm "$WORK/wheels" | cut -f1) MB"

# What the user copies to the Pi: the wheels and the models folder, as /opt/mnist-edge/{wheels,releases/shipped}.
rm -rf "$ROOT/opt/mnist-edge"
mkdir -p "$ROOT/opt/mnist-edge/releases"
cp -r "$WORK/wheels" "$ROOT/opt/mnist-edge/wheels"
cp -r "$REPO/models" "$ROOT/opt/mnist-edge/releases/shipped"
rm -rf "$ROOT/opt/mnist-edge/releases/shipped/.previous"  # the guide's rsync --exclude .previous
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"  # unmounting the root's /dev later must not reach the host's
t_wheels=$(( $(now) - started ))

# On "the Pi": docs/raspberry-pi.md's install, word for word.
started=$(now)
step "$WORK/install.log" in_root /bin/sh -euc '
python3 -m venv /opt/mnist-edge/venv
/opt/mnist-edge/venv/bin/pip install --no-index --find-links /opt/mnist-edge/wheels "mnist-edge[serve,ui]"
ln -sfn releases/shipped /opt/mnist-edge/models
ln -sfn /opt/mnist-edge/venv/lib/python3.*/site-packages/mnist_edge/webui/app.py /opt/mnist-edge/canvas.py
' || die "install in the root failed: $(tail -n 1 "$WORK/install.log")"
in_root /opt/mnist-edge/venv/bin/python - >"$WORK/platform.txt" 2>&1 <<'EOF' \
  || die "the root's venv does not run: $(tail -n 1 "$WORK/platform.txt")"
import platform
from importlib.metadata import version
print(f"{platform.machine()}: Python {platform.python_version()}, onnxruntime {version('onnxruntime')}, "
      f"ai-edge-litert {version('ai-edge-litert')}, numpy {version('numpy')}")
EOF
echo "installed in the root: $(cat "$WORK/platform.txt")"
in_root test -f /opt/mnist-edge/canvas.py || die "/opt/mnist-edge/canvas.py (the canvas unit's app) links to no file"
grep -q '^aarch64:' "$WORK/platform.txt" || die "the root does not run as aarch64"
t_install=$(( $(now) - started ))

# Two workers, as on a Pi's service, rather than one per host core: each loads every model under emulation.
started=$(now)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 setsid chroot "$ROOT" \
  /opt/mnist-edge/venv/bin/mnist-edge serve --models-dir /opt/mnist-edge/models --port 0 --workers 2 \
  >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
url=""
for _ in $(seq 600); do
  url=$(grep -o 'serving on http://[^ ]*' "$WORK/serve.log" | head -n 1 | cut -d' ' -f3) || true
  [ -n "$url" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the aarch64 server exited: $(tail -n 1 "$WORK/serve.log")"
  sleep 1
done
[ -n "$url" ] || die "the aarch64 server did not start in 600 s: $(tail -n 1 "$WORK/serve.log")"
t_start=$(( $(now) - started ))
echo "aarch64 server: $url (ready after ${t_start} s)"

started=$(now)
step - "$PY" "$REPO/scripts/aarch64_compare.py" --guest "$url" --models-dir "$REPO/models" --count "$COUNT" \
  || { echo "aarch64 server log (last lines):" >&2; tail -n 5 "$WORK/serve.log" >&2; exit 1; }
t_compare=$(( $(now) - started ))
echo "wall time (emulated, not Pi figures): root ${t_root} s, wheels ${t_wheels} s, install ${t_install} s," \
  "start ${t_start} s, compare ${t_compare} s"
