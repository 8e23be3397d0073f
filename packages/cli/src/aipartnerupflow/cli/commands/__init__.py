"""The built-in sub-commands, one module each (imported only when used)."""
