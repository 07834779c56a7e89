# Debian's chromium for the web UI's browser tests (tests/ui drive it through Playwright's
# executable_path: Playwright never downloads a browser), and the built UI those tests serve.
apt_install chromium || warn "chromium is not installed: the web UI tests skip (fail under CI=true)"
scripts/build-ui || warn "the web UI could not be built: the web UI tests skip (fail under CI=true)"
