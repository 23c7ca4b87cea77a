"""The built-in plugins. Each subpackage is declared as an entry point of group
``security_agent`` in ``pyproject.toml`` and is found exactly like a third-party plugin."""
