# shellcheck shell=bash
# Where the database's data directory lives (PG_FS), and the two faults that need a file
# system of their own: the power cut (LazyFS drops every write not fsynced) and the full
# disk (a small ext4 image filled by a ballast file). Single layout only.

pg_data() { if [ "${1:-db}" != db ]; then echo "$DIR/pgdata-$1"; elif [ "$PG_FS" = disk ]; then echo "$DIR/pgdata"; else echo "$DIR/pgfs/pgdata"; fi; }
lazyfs_mount() { "${here:?}/lazyfs" mount "$DIR/lazyfs" "$DIR/pgfs" "$DIR/pgfs-disk" "$(cat "$DIR/lazyfs-cache-mb")" >/dev/null; }

pg_fs_up() {
  case "$PG_FS" in
    disk) return 0 ;;
    lazyfs)
      [ "$STACK_LAYOUT" = single ] || die "PG_FS=lazyfs needs STACK_LAYOUT=single"
      echo "${LAZYFS_CACHE_MB:-1024}" > "$DIR/lazyfs-cache-mb"
      # LazyFS creates files as the user it runs as and checks no permission: the data
      # directory is made on the backing side, owned by PostgreSQL's user, mode 700.
      mkdir -p "$DIR/pgfs-disk/pgdata"
      [ -z "${PG_USER:-}" ] || chown "$PG_USER" "$DIR/pgfs-disk/pgdata"
      chmod 700 "$DIR/pgfs-disk/pgdata"
      lazyfs_mount ;;
    small)
      [ "$STACK_LAYOUT" = single ] || die "PG_FS=small needs STACK_LAYOUT=single"
      [ "$(id -u)" -eq 0 ] || die "PG_FS=small mounts a file system image: run as root"
      truncate -s "${PG_FS_MB:-160}M" "$DIR/pgfs.img"
      mkfs.ext4 -q -F -m 0 "$DIR/pgfs.img" || die "mkfs.ext4 failed (sudo apt-get install e2fsprogs)"
      mkdir -p "$DIR/pgfs"
      mount -o loop "$DIR/pgfs.img" "$DIR/pgfs" || die "could not loop-mount $DIR/pgfs.img"
      mkdir -p "$DIR/pgfs/pgdata"
      [ -z "${PG_USER:-}" ] || chown "$PG_USER" "$DIR/pgfs/pgdata" ;;
  esac
}

pg_fs_down() {
  if [ -d "$DIR/lazyfs" ]; then "${here:?}/lazyfs" unmount "$DIR/lazyfs" "$DIR/pgfs" || true; fi
  if [ -f "$DIR/pgfs.img" ] && mountpoint -q "$DIR/pgfs"; then umount "$DIR/pgfs" || umount -l "$DIR/pgfs" || true; fi
}

# What setup wrote (initdb without sync, the schema, the seed) made durable before the load:
# a power cut then takes only what the load wrote and the server did not fsync.
pg_fs_barrier() {
  [ "$PG_FS" = lazyfs ] || return 0
  node_psql db -d "$DB_NAME" -qc "CHECKPOINT" >/dev/null
  find "$(pg_data db)" -type f -print0 | xargs -0 sync --
}

# The power cut: the supervisor is held, every PostgreSQL process frozen (so none writes
# after the cut) then killed, LazyFS drops what was not fsynced, and the file system is
# mounted again as after a reboot; lifting the hold lets the supervisor start PostgreSQL,
# which recovers from what reached the "disk".
power_cut() {
  [ -d "$DIR/lazyfs" ] || die "power-cut needs the database on LazyFS (PG_FS=lazyfs when the stack came up)"
  local procs _
  procs=$(cg_procs db)
  mkdir -p "$DIR/hold"; touch "$DIR/hold/db"
  kill -STOP "$(cat "$DIR/pid/db")" 2>/dev/null || true
  signal_svc db STOP all
  for _ in $(seq 200); do
    [ -n "$(cat "$procs")" ] || break
    # shellcheck disable=SC2046 # the pids are words
    kill -KILL $(cat "$procs") 2>/dev/null || true; sleep 0.05
  done
  [ -z "$(cat "$procs")" ] || die "PostgreSQL's processes outlived SIGKILL for 10 s"
  "${here:?}/lazyfs" clear-cache "$DIR/lazyfs"
  "${here:?}/lazyfs" unmount "$DIR/lazyfs" "$DIR/pgfs"
  lazyfs_mount
  rm -f "$DIR/hold/db"
}

# A full disk: a ballast file takes every free block of the database's file system.
disk_fill() {
  [ -f "$DIR/pgfs.img" ] || die "disk-fill needs the database on a small file system (PG_FS=small when the stack came up)"
  local free
  free=$(df --output=avail -B1 "$DIR/pgfs" | tail -n1)
  fallocate -l "$free" "$DIR/pgfs/ballast" 2>/dev/null || true
  # Blocks fallocate could not take (metadata, rounding): filled by writing.
  dd if=/dev/zero of="$DIR/pgfs/ballast" bs=64k oflag=append conv=notrunc status=none 2>/dev/null || true
  df --output=avail -B1 "$DIR/pgfs" | tail -n1
}
disk_free() { rm -f "$DIR/pgfs/ballast"; }
