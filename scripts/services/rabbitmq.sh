# RabbitMQ on 127.0.0.1:5672 (guest/guest), for the amqp plugin.
rabbitmq_ready() { port_open 5672; }

start_rabbitmq() {
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server || return 1
    say "RabbitMQ: starting on 127.0.0.1:5672"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
}

ensure_service RabbitMQ TIERCEL_TEST_AMQP_URL rabbitmq_ready start_rabbitmq
