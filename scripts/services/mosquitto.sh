# Mosquitto (MQTT) on 127.0.0.1:1883, for the mqtt plugin.
mosquitto_ready() { port_open 1883; }

start_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 || apt_install mosquitto || return 1
    say "Mosquitto: starting on 127.0.0.1:1883"
    if [ -f /etc/mosquitto/mosquitto.conf ]; then
        mosquitto -d -c /etc/mosquitto/mosquitto.conf
    else
        mosquitto -d -p 1883
    fi
}

ensure_service Mosquitto TIERCEL_TEST_MQTT_URL mosquitto_ready start_mosquitto
