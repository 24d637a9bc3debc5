"""C code generation: a CProgram (prepared in emit.py) printed by jinja2 templates."""
