# NATS with JetStream on 127.0.0.1:4222, for the nats plugin.
nats_ready() { port_open 4222; }

start_nats() {
    command -v nats-server >/dev/null 2>&1 || apt_install nats-server || return 1
    say "NATS: starting on 127.0.0.1:4222 (JetStream)"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
}

ensure_service NATS TIERCEL_TEST_NATS_URL nats_ready start_nats
