#!/usr/bin/env bash
# Builds a registry-free stand-in for the Dockerfile's default runtime base (gcr.io/distroless/cc-debian12) from
# the host's Debian 12 packages, for machines that reach no container registry: the same packages distroless
# assembles (libc6, libgcc-s1, netbase, tzdata, the CA bundle, base-files' os-release), no shell, no package
# manager. Used by scripts/image.sh when RUNTIME_IMAGE is this image. Idempotent: re-running replaces it (seconds).
set -euo pipefail

IMAGE="${IMAGE:-localhost/market-runtime-base:bookworm}"
PACKAGES=(libc6 libgcc-s1 netbase tzdata)

command -v podman >/dev/null || { echo "build-runtime-base: podman not found (bash scripts/setup-podman.sh)" >&2; exit 1; }
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release ||
  echo "build-runtime-base: warning: the host is not Debian 12; the base has its libraries, not bookworm's" >&2
for package in "${PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || { echo "build-runtime-base: package $package is not installed" >&2; exit 1; }
done

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
chmod 755 "$ROOTFS"
# Debian 12's merged /usr: /lib, /lib64, /bin and /sbin are links into /usr.
mkdir -p "$ROOTFS"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc/ssl/certs,tmp,data,dev,proc,sys}
ln -s usr/bin "$ROOTFS/bin"; ln -s usr/sbin "$ROOTFS/sbin"
ln -s usr/lib "$ROOTFS/lib"; ln -s usr/lib64 "$ROOTFS/lib64"
chmod 1777 "$ROOTFS/tmp"

# Every file of the packages, at its canonical path (the packages still list /lib/... from before the merge).
dpkg -L "${PACKAGES[@]}" | sort -u | while read -r path; do
  [ -d "$path" ] && [ ! -L "$path" ] && continue
  [ -e "$path" ] || [ -L "$path" ] || continue
  case "$path" in /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/* | /usr/share/locale/*) continue ;; esac
  dir="$(readlink -f "$(dirname "$path")")"
  mkdir -p "$ROOTFS$dir"
  cp -a "$path" "$ROOTFS$dir/"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
cp -L /etc/os-release "$ROOTFS/etc/os-release"
ldconfig -r "$ROOTFS" 2>/dev/null || true

# As distroless: root, nobody and nonroot (65532); the Dockerfile picks its own numeric user.
cat > "$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
PASSWD
cat > "$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$ROOTFS/etc/nsswitch.conf"

podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
tar --numeric-owner -C "$ROOTFS" -c . | podman import --quiet \
  --change "ENV=PATH=/usr/local/bin:/usr/bin:/bin" \
  --change "ENV=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
  - "$IMAGE" >/dev/null
echo "build-runtime-base: built $IMAGE ($(podman image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=si)B)"
