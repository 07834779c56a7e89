# tmux, for the test that drives the CLI's live view on a real terminal (tests/engine/test_live_view.py).
tmux_ready() { command -v tmux >/dev/null 2>&1; }
install_tmux() { apt_install tmux; }
if ! tmux_ready; then
    install_tmux || warn "tmux is missing and could not be installed: the live view's terminal test skips (fails under CI=true)"
fi
