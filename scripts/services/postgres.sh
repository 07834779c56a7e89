# PostgreSQL on 127.0.0.1:5432 (the machine's cluster), for the sql plugin and the PostgreSQL backend.
postgres_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432 -t 2
    else
        port_open 5432
    fi
}

start_postgres() {
    command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] || return 1
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "PostgreSQL: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
}

ensure_service PostgreSQL TIERCEL_TEST_POSTGRES_URL postgres_ready start_postgres
