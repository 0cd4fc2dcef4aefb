#!/bin/bash
# Prepares what a bare, offline GPU machine needs to build and check ddps
# (scripts/gpu-check.sh there), on a Debian 12 machine with apt and network:
#
#   build-device/debs/     the Debian 12 packages the build needs (oneDNN, jansson, SQLite,
#                          libpng, libjpeg-turbo, libwebp, libtiff, pkg-config, cmake and
#                          everything they depend on, except the C library and the compiler's
#                          own runtime, which a machine with nvcc has), as .deb files
#   build-device/shared/   golden/ (without the two models only the CPU tests read), then as
#                          the size limit allows data/imagewoof-mini/ (whole, or its first
#                          N images per class)
#   build-device-anchor/shared/anchors/   the PyTorch anchor on its own (it needs no build):
#                          carried alone for `scripts/gpu-check.sh anchor`
#   build-device/MANIFEST.txt   packages, sizes, sha256 and what was left out
#
# build-device/ is ignored by git (build-*/): pass it to the device as a carried path.
# The whole carry (the working tree's tracked and untracked-but-not-ignored files, which
# travel too, plus build-device) must stay under 64 MiB: LIMIT_MIB (default 63, a margin
# of 1) bounds that whole carry, shared files are added only while it fits, and the script
# fails if the total is over it.
#
#   scripts/gpu-prep.sh      # SHARED=../shared OUTDIR=build-device LIMIT_MIB=63 WEBP_TIFF=auto
#
# WEBP_TIFF=auto ships libwebp and libtiff only when CMakeLists.txt uses them (1: always, 0: never).
#
# Sizes (Debian 12, December 2026): packages 44 MiB with libwebp/libtiff (28 of them cmake and
# its libraries: the device has no cmake), golden/ 15.5 MiB, imagewoof-mini 8.6 MiB, anchors
# 4.6 MiB: not everything fits in one carry, hence the anchor's own folder.
set -euo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUTDIR:-build-device}
SHARED=${SHARED:-../shared}
LIMIT_MIB=${LIMIT_MIB:-63}
[ -d "$SHARED/golden" ] || { echo "gpu-prep: no $SHARED/golden (set SHARED)"; exit 1; }
command -v apt-get >/dev/null || { echo "gpu-prep: needs apt-get (Debian 12)"; exit 1; }

# What the build links and runs: the roots; apt resolves the rest.
ROOTS="libdnnl-dev ocl-icd-opencl-dev libjansson-dev libsqlite3-dev libpng-dev libjpeg62-turbo-dev
       pkgconf cmake libgomp1 libstdc++6"
WEBP_TIFF=${WEBP_TIFF:-auto}
if [ "$WEBP_TIFF" = 1 ] || { [ "$WEBP_TIFF" = auto ] && grep -qiE 'webp|tiff' CMakeLists.txt; }; then
  ROOTS="$ROOTS libwebp-dev libtiff-dev"
  echo "gpu-prep: with libwebp and libtiff"
else
  echo "gpu-prep: without libwebp and libtiff (CMakeLists.txt does not use them; WEBP_TIFF=1 adds them)"
fi
# Left out: the C library and its headers (the device's compiler brings its own; a second
# libc cannot be used through LD_LIBRARY_PATH anyway), and packages that only matter to a
# Debian installation (package tools, init, perl for maintainer scripts, shells' terminfo).
EXCLUDE_RE='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc[a-z0-9-]*|rpcsvc-proto|gcc-[0-9]+-base|libgcc-s1|perl|perl-base|perl-modules-[0-9.]+|libperl[0-9.]+|lib[a-z0-9-]+-perl|dpkg|tar|procps|libproc2-0|usrmerge|usr-is-merged|init-system-helpers|libsystemd0|libelogind0|libselinux1|libpcre2-8-0|libncursesw6|libtinfo6|libcap2|libmd0|libgdbm6|libgdbm-compat4|debconf|sensible-utils)$'

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR/debs" "$OUTDIR/shared"
DEBS=$(cd "$OUTDIR/debs" && pwd)

echo "== resolving the packages"
# shellcheck disable=SC2086
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances $ROOTS 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u >"$OUTDIR/closure.txt"
grep -Ev "$EXCLUDE_RE" "$OUTDIR/closure.txt" >"$OUTDIR/packages.txt"
grep -E "$EXCLUDE_RE" "$OUTDIR/closure.txt" >"$OUTDIR/excluded.txt" || true
echo "$(wc -l <"$OUTDIR/packages.txt") packages ($(wc -l <"$OUTDIR/excluded.txt") left out: $(tr '\n' ' ' <"$OUTDIR/excluded.txt"))"

echo "== apt-get download"
# as root, apt downloads unsandboxed; say so instead of warning about it
sandbox=()
[ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
# shellcheck disable=SC2046
(cd "$DEBS" && apt-get "${sandbox[@]}" download -q $(cat "../packages.txt") >/dev/null)
got=$(ls "$DEBS"/*.deb | wc -l)
[ "$got" -eq "$(wc -l <"$OUTDIR/packages.txt")" ] || { echo "gpu-prep: downloaded $got of $(wc -l <"$OUTDIR/packages.txt") packages"; exit 1; }

# The rest of the carry: every file of the working tree git does not ignore (KiB, rounded up per file).
tree_kib() {
  git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null |
    awk '{s += int(($1 + 1023) / 1024)} END {print s + 0}'
}
TREE_K=$(tree_kib)
echo "== shared files (in order of need, while the whole carry stays under $LIMIT_MIB MiB; the working tree is $((TREE_K / 1024)) MiB)"
skipped=()
mkdir -p "$OUTDIR/shared/golden" "$OUTDIR/shared/data"
kib() { du -sk "$@" | awk '{s += $1} END {print s + 0}'; }
room() { echo $((LIMIT_MIB * 1024 - TREE_K - $(kib "$OUTDIR"))); }
# golden/: everything test_cuda and the probes read; tiny-sd-single (14 MB) and tiny-sd2
# (13 MB) are read only by CPU tests (single-file loading, SD 2.x)
for f in "$SHARED"/golden/*; do
  case "$(basename "$f")" in
    tiny-sd-single.safetensors | tiny-sd2) skipped+=("golden/$(basename "$f") ($(du -sh "$f" | cut -f1), read by CPU tests only)") ;;
    *) cp -a "$f" "$OUTDIR/shared/golden/" ;;
  esac
done
[ "$(room)" -ge 0 ] || { echo "gpu-prep: the working tree, the packages and golden/ alone exceed $LIMIT_MIB MiB"; exit 1; }
# imagewoof-mini: whole if it fits, else the first N images of every class (train/ only)
W=$SHARED/data/imagewoof-mini
add_imagewoof() {
if [ -d "$W" ]; then
  if [ "$(kib "$W")" -lt "$(room)" ]; then
    cp -a "$W" "$OUTDIR/shared/data/"
  else
    for n in 16 8 4 2; do
      rm -rf "$OUTDIR/shared/data/imagewoof-mini"
      for c in "$W"/train/*/; do
        mkdir -p "$OUTDIR/shared/data/imagewoof-mini/train/$(basename "$c")"
        find "$c" -maxdepth 1 -type f | sort | head -n "$n" | xargs -I{} cp -a {} "$OUTDIR/shared/data/imagewoof-mini/train/$(basename "$c")/"
      done
      [ "$(room)" -ge 0 ] && break
    done
    if [ "$(room)" -lt 0 ]; then
      rm -rf "$OUTDIR/shared/data/imagewoof-mini"
      skipped+=("data/imagewoof-mini (does not fit)")
    else
      skipped+=("data/imagewoof-mini: only the first $n images of each class of train/ ($(find "$OUTDIR/shared/data/imagewoof-mini" -type f | wc -l) of $(find "$W" -type f | wc -l) files; $(du -sh "$W" | cut -f1) whole)")
    fi
  fi
else
  skipped+=("data/imagewoof-mini (not in $SHARED)")
fi
}
add_imagewoof
ANCHOR_DIR=${ANCHOR_DIR:-build-device-anchor}
rm -rf "$ANCHOR_DIR"
if [ -d "$SHARED/anchors" ]; then
  mkdir -p "$ANCHOR_DIR/shared" && cp -a "$SHARED/anchors" "$ANCHOR_DIR/shared/"
else
  skipped+=("anchors (not in $SHARED)")
fi

{
  echo "# made by scripts/gpu-prep.sh on $(hostname) at $(date -u +%FT%TZ) ($(. /etc/os-release && echo "$PRETTY_NAME"))"
  echo "# packages (file, bytes, sha256):"
  (cd "$DEBS" && for f in *.deb; do printf '%s %s %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"; done)
  echo "# left out of the packages: $(tr '\n' ' ' <"$OUTDIR/excluded.txt")"
  echo "# left out of shared: ${skipped[*]:-nothing}"
} >"$OUTDIR/MANIFEST.txt"

debs_k=$(du -sk "$OUTDIR/debs" | cut -f1)
shared_k=$(du -sk "$OUTDIR/shared" | cut -f1)
total_k=$(du -sk "$OUTDIR" | cut -f1)
tracked_k=$(tree_kib)
carry_k=$((total_k + tracked_k))
echo "== sizes"
printf '  debs      %6.1f MiB (%d packages)\n' "$(echo "$debs_k / 1024" | bc -l)" "$got"
printf '  shared    %6.1f MiB\n' "$(echo "$shared_k / 1024" | bc -l)"
shopt -s nullglob
for d in "$OUTDIR"/shared/*/ "$OUTDIR"/shared/data/*/; do printf '    %-28s %6.1f MiB\n' "${d#"$OUTDIR"/shared/}" "$(echo "$(du -sk "$d" | cut -f1) / 1024" | bc -l)"; done
printf '  %s total %6.1f MiB; working tree %.1f MiB; carry total %.1f MiB (limit %s, the device takes 64)\n' "$OUTDIR" \
  "$(echo "$total_k / 1024" | bc -l)" "$(echo "$tracked_k / 1024" | bc -l)" "$(echo "$carry_k / 1024" | bc -l)" "$LIMIT_MIB"
[ -d "$ANCHOR_DIR/shared/anchors" ] && printf '  %s (carried alone, for gpu-check.sh anchor) %.1f MiB\n' "$ANCHOR_DIR" \
  "$(echo "$(du -sk "$ANCHOR_DIR" | cut -f1) / 1024" | bc -l)"
for s in "${skipped[@]}"; do echo "  skipped: $s"; done
if [ "$carry_k" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "gpu-prep: the carry (working tree + $OUTDIR) is $((carry_k / 1024)) MiB, over $LIMIT_MIB MiB"
  exit 1
fi
# the anchor's carry: the working tree + its folder
if [ -d "$ANCHOR_DIR" ] && [ $((tracked_k + $(kib "$ANCHOR_DIR"))) -gt $((LIMIT_MIB * 1024)) ]; then
  echo "gpu-prep: the anchor's carry (working tree + $ANCHOR_DIR) is over $LIMIT_MIB MiB"
  exit 1
fi
echo "gpu-prep: done; on the device: scripts/gpu-check.sh build-test, then bench (carry $OUTDIR);"
echo "          DEVDIR=$ANCHOR_DIR scripts/gpu-check.sh anchor (carry $ANCHOR_DIR)"
