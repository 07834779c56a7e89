# OpenSSH's sshd for the ssh runner's tests, which start a private one on a free loopback port as
# the dedicated user `tiercel-test` (login shell /bin/sh: root's .bashrc would add ~180 ms a command).
sshd_ready() {
    [ -x /usr/sbin/sshd ] && id tiercel-test >/dev/null 2>&1
}

install_sshd() {
    apt_install openssh-server || return 1
    id tiercel-test >/dev/null 2>&1 || useradd --create-home --shell /bin/sh tiercel-test || return 1
    usermod -p '*' tiercel-test # not "locked": sshd refuses locked accounts under UsePAM no
}

ensure_service SSH TIERCEL_TEST_SSH_HOST sshd_ready install_sshd
