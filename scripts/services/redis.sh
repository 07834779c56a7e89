# Redis on 127.0.0.1:6379, for the redis plugin (private instances also use the redis-server binary).
redis_ready() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
    else
        port_open 6379
    fi
}

start_redis() {
    command -v redis-server >/dev/null 2>&1 || return 1
    say "Redis: starting on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

ensure_service Redis TIERCEL_TEST_REDIS_URL redis_ready start_redis
