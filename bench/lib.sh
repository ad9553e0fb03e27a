# Shared by the benchmark scripts (bench/run.sh, bench/suite.sh): timing with peak memory, and
# seed 001's backup and restore scripts. Expects $WORK (a scratch directory) and now().
now() { date +%s.%N; }

# run_timed TAG CMD...: wall seconds -> $WALL, /usr/bin/time's max RSS (KiB, the largest process of
# the tree, nodetool's JVM included) -> $TREE_RSS, and the largest VmHWM (KiB) of the command's own
# processes, sampled every 50 ms over its whole process tree but JVMs (nodetool) -> $OWN_RSS.
# CMD may be a shell function (exported with `export -f`): it then runs under `bash -c`.
run_timed() {
  local tag=$1; shift
  local tfile="$WORK/$tag.time" t0 t1 tpid hwm=0 pids p v
  if [ "$(type -t "$1")" = function ]; then set -- bash -c '"$@"' _ "$@"; fi
  t0=$(now); RUN_T0=$t0
  /usr/bin/time -v -o "$tfile" "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" &
  tpid=$!
  while kill -0 "$tpid" 2>/dev/null; do
    pids=$(ps -e -o pid=,ppid=,comm= | awk -v root="$tpid" '
      { parent[$1] = $2; comm[$1] = $3 }
      END { for (p in parent) { q = p; while (q in parent && q != root && q > 1) q = parent[q];
            if (q == root && p != root && comm[p] != "java") print p } }')
    for p in $pids; do
      v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
      [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
    done
    sleep 0.05
  done
  local rc=0; wait "$tpid" || rc=$?
  t1=$(now)
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  TREE_RSS=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tfile")
  OWN_RSS=$hwm
  if [ "$rc" != 0 ]; then echo "!! $tag failed (rc $rc):" >&2; tail -20 "$WORK/$tag.err" >&2; tail -5 "$tfile" >&2; return "$rc"; fi
}

# The seed 001 script, verbatim apart from its four settings (and two timestamps around the copy loop).
write_seed_script() {
  cat >"$WORK/seed001-copy.sh" <<'EOF'
#!/bin/bash
################################################################################
# Sample Cassandra snapshot backup script                                      #
# NOTE: This MUST be adapted for and validated in your environment before use! #
################################################################################
set -e
trap '[ "$?" -eq 0 ] || echo \*\*\* FATAL ERROR \*\*\*' EXIT $?
CASSANDRA_DATA_DIR="$1"
KEYSPACE_NAME="$2"
SNAPSHOT_NAME="$3"
BACKUP_ROOT_DIR="$4"
##### Do NOT change anything below this line #####
backupdir="${BACKUP_ROOT_DIR}/${SNAPSHOT_NAME}"
if [ -d "${backupdir}" ]; then echo -e "\nERROR: Snapshot '${SNAPSHOT_NAME}' already exists in the backup dir";exit 1; fi
mkdir -p ${backupdir}
keyspace_path="${CASSANDRA_DATA_DIR}/${KEYSPACE_NAME}"
if ! [ -d "${keyspace_path}" ]; then echo -e "\nERROR: Keyspace path '${keyspace_path}' is not valid";exit 1; fi
snapshot_dirs=()
find "${keyspace_path}/" -maxdepth 1 -mindepth 1 -type d ! -name "$(printf "*\n*")" > backup.tmp
echo "COPY_START $(date +%s.%N)" >&2
while IFS= read -r table_dir
do
  str=${table_dir##*/}
  table_uuid=${str##*-}
  len=$((${#str} - ${#table_uuid} - 1))
  table_name=${str:0:${len}}
  echo "Copy table, $table_name"
  current_backup_dir="${backupdir}/${table_name}"
  mkdir -p "${current_backup_dir}"
  current_snapshot="${table_dir}/snapshots/${SNAPSHOT_NAME}"
  snapshot_dirs+=("${current_snapshot}")
  cp -r -a "${current_snapshot}"/* "${current_backup_dir}/"
done < backup.tmp
echo "COPY_END $(date +%s.%N)" >&2
rm backup.tmp
echo -e "\nRemoving snapshot files from Cassandra data directory"
for dir in "${snapshot_dirs[@]}"
do
  rm -rf "${dir}"
done
EOF
  chmod +x "$WORK/seed001-copy.sh"
}
# Seed 001's restore script, online variant: its table matching verbatim; instead of "drain, stop
# the node, rm -r the table dir, cp, start" it does per table TRUNCATE, the same `cp -r -a` into the
# live table directory, then `nodetool refresh` (deprecated in 5.0 but present). No y/n prompt.
# Prints "STAGE <name> <time>" on stderr for the split.
write_seed_restore_script() {
  cat >"$WORK/seed001-restore.sh" <<'EOF'
#!/bin/bash
################################################################################
# Sample Cassandra restore snapshot script (seed 001), online variant          #
################################################################################
CASSANDRA_DATA_DIR="$1"
KEYSPACE_NAME="$2"
SNAPSHOT_NAME="$3"
BACKUP_ROOT_DIR="$4"
CQL="$5"
NODETOOL="$6"
##### Do NOT change anything below this line #####
backupdir="${BACKUP_ROOT_DIR}/${SNAPSHOT_NAME}"
keyspace_path="${CASSANDRA_DATA_DIR}/${KEYSPACE_NAME}"
set -e
trap '[ "$?" -eq 0 ] || echo \*\*\* FATAL ERROR \*\*\*' EXIT $?
if ! [ -d "${backupdir}" ]; then echo -e "\nERROR: Backup not found at '${backupdir}'";exit 1; fi
if ! [ -d "${keyspace_path}" ]; then echo -e "\nERROR: Keyspace path '${keyspace_path}' is not valid";exit 1; fi
keyspace_tables=$(mktemp)
find "${keyspace_path}/" -maxdepth 1 -mindepth 1 -type d -fprintf ${keyspace_tables} "%f\n"
sort -o ${keyspace_tables} ${keyspace_tables}
backup_tablenames=$(mktemp)
find "${backupdir}/" -maxdepth 1 -mindepth 1 -type d -fprintf ${backup_tablenames} "%f\n"
sort -o ${backup_tablenames} ${backup_tablenames}
keyspace_tablenames=$(mktemp)
table_names=()
table_uuids=()
while IFS= read -r table
do
  str=${table##*/}
  uuid=${str##*-}
  len=$((${#str} - ${#uuid} - 1))
  name=${str:0:${len}}
  echo "${name}" >> ${keyspace_tablenames}
  table_names+=(${name})
  table_uuids+=(${uuid})
done < ${keyspace_tables}
set +e
diff -a -q ${keyspace_tablenames} ${backup_tablenames}
if [ $? -ne 0 ]; then
  echo -e "\nERROR: The tables on the keyspace at, '${keyspace_path}', are not the same as the ones from the backup at,
'${backupdir}'"
  exit 1
fi
set -e
for ((i=0; i<${#table_names[*]}; i++));
do
  echo "Restoring table, '${table_names[i]}'"
  table_dir="${keyspace_path}/${table_names[i]}-${table_uuids[i]}"
  echo "STAGE truncate $(date +%s.%N)" >&2
  "$CQL" exec "TRUNCATE ${KEYSPACE_NAME}.${table_names[i]}"
  src="${backupdir}/${table_names[i]}"
  echo "STAGE cp $(date +%s.%N)" >&2
  cp -r -a "${src}"/* "${table_dir}/"
  echo "STAGE refresh $(date +%s.%N)" >&2
  "$NODETOOL" refresh "${KEYSPACE_NAME}" "${table_names[i]}"
done
echo "STAGE end $(date +%s.%N)" >&2
EOF
  chmod +x "$WORK/seed001-restore.sh"
}
