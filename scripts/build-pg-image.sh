#!/usr/bin/env bash
# Builds a registry-free PostgreSQL 15 image for podman from the host's Debian postgresql-15 binaries
# (these machines reach no container registry). The cluster is pre-initialised inside the image with
# trust auth and durability off: it is a throwaway test database, never expose it.
# Idempotent: re-running replaces the image (about a minute).
set -euo pipefail

IMAGE="${IMAGE:-localhost/pg-local:15}"
PGVER="${PGVER:-15}"
PGLIB="/usr/lib/postgresql/$PGVER"
PGSHARE="/usr/share/postgresql/$PGVER"
PGUID=999
PGGID=999

[ -x "$PGLIB/bin/postgres" ] || { echo "build-pg-image: $PGLIB/bin/postgres not found; apt-get install postgresql-$PGVER" >&2; exit 1; }

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
chmod 755 "$ROOTFS"

mkdir -p "$ROOTFS"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,tmp,var/run/postgresql,var/lib/postgresql/data,dev,proc,sys}
ln -s usr/bin "$ROOTFS/bin"; ln -s usr/sbin "$ROOTFS/sbin"
ln -s usr/lib "$ROOTFS/lib"; ln -s usr/lib64 "$ROOTFS/lib64"
chmod 1777 "$ROOTFS/tmp"

# The server tree without the LLVM JIT provider, which would drag in 110 MB of libLLVM.
mkdir -p "$ROOTFS$PGLIB" "$ROOTFS/usr/share/postgresql"
tar -C / -c --exclude="${PGLIB#/}/lib/bitcode" --exclude="${PGLIB#/}/lib/llvmjit*" "${PGLIB#/}" | tar -C "$ROOTFS" -x
cp -a "$PGSHARE" "$ROOTFS/usr/share/postgresql/"
cp -a /usr/share/zoneinfo "$ROOTFS/usr/share/"
cp -L /bin/dash "$ROOTFS/usr/bin/sh"

copy_lib() {
  local src="$1" dst
  case "$src" in
    /lib64/*|/lib/*) dst="/usr$src" ;;
    *) dst="$src" ;;
  esac
  [ -e "$ROOTFS$dst" ] || { mkdir -p "$(dirname "$ROOTFS$dst")"; cp -L "$src" "$ROOTFS$dst"; }
}
find "$ROOTFS$PGLIB" "$ROOTFS/usr/bin/sh" -type f \( -perm -u+x -o -name '*.so' \) -print0 |
  while IFS= read -r -d '' f; do
    orig="${f#"$ROOTFS"}"; [ "$orig" = /usr/bin/sh ] && orig=/bin/dash
    ldd "$orig" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib64/{print $1}' || true
  done | sort -u | while read -r lib; do copy_lib "$lib"; done
copy_lib /lib64/ld-linux-x86-64.so.2
ldconfig -r "$ROOTFS" 2>/dev/null || true

cat > "$ROOTFS/etc/passwd" <<PASSWD
root:x:0:0:root:/:/bin/sh
postgres:x:$PGUID:$PGGID:PostgreSQL:/var/lib/postgresql:/bin/sh
PASSWD
cat > "$ROOTFS/etc/group" <<GROUP
root:x:0:
postgres:x:$PGGID:
GROUP
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$ROOTFS/etc/nsswitch.conf"
chown -R $PGUID:$PGGID "$ROOTFS/var/lib/postgresql" "$ROOTFS/var/run/postgresql"

mknod -m 666 "$ROOTFS/dev/null" c 1 3; mknod -m 666 "$ROOTFS/dev/zero" c 1 5
mknod -m 666 "$ROOTFS/dev/urandom" c 1 9; mkdir -m 1777 "$ROOTFS/dev/shm"
chroot --userspec=$PGUID:$PGGID "$ROOTFS" "$PGLIB/bin/initdb" \
  -D /var/lib/postgresql/data -U postgres --auth=trust --encoding=UTF8 --locale=C -N >/dev/null 2>&1
echo "host all all 0.0.0.0/0 trust" >> "$ROOTFS/var/lib/postgresql/data/pg_hba.conf"
echo "host all all ::/0 trust"      >> "$ROOTFS/var/lib/postgresql/data/pg_hba.conf"
rm -rf "${ROOTFS:?}/dev"/*

podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
tar --numeric-owner -C "$ROOTFS" -c . | podman import \
  --change "USER=$PGUID:$PGGID" \
  --change "ENV=PATH=$PGLIB/bin:/usr/bin" \
  --change "ENV=PGDATA=/var/lib/postgresql/data" \
  --change "EXPOSE=5432" \
  --change "STOPSIGNAL=SIGINT" \
  --change 'CMD=["postgres","-D","/var/lib/postgresql/data","-c","listen_addresses=*","-c","fsync=off","-c","synchronous_commit=off","-c","full_page_writes=off","-c","jit=off","-c","max_connections=300"]' \
  - "$IMAGE" >/dev/null
echo "build-pg-image: built $IMAGE"
