"""Refuse a plugin id that cannot be a package name, before anything is written."""

import re
import sys

NAME = "{{ cookiecutter.plugin_name }}"

if not re.fullmatch(r"[a-z][a-z0-9]*", NAME):
    sys.exit(f"plugin name {NAME!r} is not valid: use lowercase letters and digits, starting with a letter "
             f"(e.g. `weather`); the distribution becomes tiercel-<name>, the package tiercel_<name>")
