# A Docker engine for the container runners (docker, kubernetes test kubelet), on a private socket
# /run/tiercel-docker/docker.sock (no systemd, no bridge network: containers run with network none),
# and the test image tiercel/busybox:test built from Debian's busybox-static (no registry needed).
TIERCEL_DOCKER_DIR=${TIERCEL_DOCKER_DIR:-/run/tiercel-docker}
TIERCEL_DOCKER_SOCK=unix://$TIERCEL_DOCKER_DIR/docker.sock

docker_ready() {
    [ -S "$TIERCEL_DOCKER_DIR/docker.sock" ] && docker -H "$TIERCEL_DOCKER_SOCK" version >/dev/null 2>&1 \
        && docker_test_image
}

docker_test_image() { # tiercel/busybox:test: busybox and its applet links, 2 MB, made in 0.1 s
    docker -H "$TIERCEL_DOCKER_SOCK" image inspect tiercel/busybox:test >/dev/null 2>&1 && return 0
    [ -x /bin/busybox ] || return 1
    local root
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    tar -C "$root" -c . | docker -H "$TIERCEL_DOCKER_SOCK" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - tiercel/busybox:test >/dev/null
    local status=$?
    rm -rf "$root"
    return $status
}

start_docker() {
    apt_install docker.io busybox-static || return 1
    say "Docker: starting dockerd on $TIERCEL_DOCKER_SOCK"
    mkdir -p "$TIERCEL_DOCKER_DIR" /var/lib/tiercel-docker
    nohup dockerd --host "$TIERCEL_DOCKER_SOCK" --data-root /var/lib/tiercel-docker \
        --exec-root "$TIERCEL_DOCKER_DIR/exec" --pidfile "$TIERCEL_DOCKER_DIR/dockerd.pid" \
        --bridge=none --iptables=false --ip6tables=false >"$TIERCEL_DOCKER_DIR/dockerd.log" 2>&1 &
    wait_ready docker_sock_ready 150 && docker_test_image
}

docker_sock_ready() { docker -H "$TIERCEL_DOCKER_SOCK" version >/dev/null 2>&1; }

ensure_service Docker TIERCEL_TEST_DOCKER_HOST docker_ready start_docker

# tiercel/python:test: Debian's python3 (debootstrap, ~2.5 min once; the rootfs tar is cached
# in /var/cache/tiercel), for scripts.Python in a container.
docker_python_image() {
    docker -H "$TIERCEL_DOCKER_SOCK" image inspect tiercel/python:test >/dev/null 2>&1 && return 0
    local cache=/var/cache/tiercel/python-rootfs.tar
    if [ ! -s "$cache" ]; then
        apt_install debootstrap || return 1
        say "Docker: building the tiercel/python:test rootfs with debootstrap (once, ~2.5 min)"
        local root
        root=$(mktemp -d)
        mkdir -p /var/cache/tiercel
        debootstrap --variant=minbase --include=python3 bookworm "$root" http://deb.debian.org/debian >/dev/null \
            && tar -C "$root" -cf "$cache.part" . && mv "$cache.part" "$cache"
        rm -rf "$root"
        [ -s "$cache" ] || return 1
    fi
    docker -H "$TIERCEL_DOCKER_SOCK" import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' "$cache" tiercel/python:test >/dev/null
}

if [ -z "${TIERCEL_TEST_DOCKER_HOST:-}" ] && docker_sock_ready; then
    docker_python_image || warn "could not build the image tiercel/python:test: tests of scripts.Python in a container fail"
fi
