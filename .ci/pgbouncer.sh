#!/usr/bin/env bash
# Start pgbouncer in transaction mode in front of the PostgreSQL at 127.0.0.1:5432, as a
# Supabase user's pooled connection would be. Prints the directory holding its pid file.
set -euo pipefail
if ! command -v pgbouncer >/dev/null 2>&1; then
    (apt-get install -y -q pgbouncer || (apt-get update -q && apt-get install -y -q pgbouncer)) >/dev/null 2>&1
fi
dir="$(mktemp -d)"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
echo '"postgres" ""' > "$dir/userlist.txt"
chmod -R a+rwx "$dir"
# pgbouncer will not run as root.
pgbouncer -d -u postgres "$dir/pgbouncer.ini"
for _ in $(seq 50); do [ -s "$dir/pgbouncer.pid" ] && break; sleep 0.1; done
echo "$dir"
