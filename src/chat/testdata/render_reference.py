#!/usr/bin/python3
"""Renders chat conversations with the official Jinja chat templates, the way Hugging Face
transformers does (transformers/utils/chat_template_utils.py: _compile_jinja_template and
render_jinja_template), so the C++ renderer can be compared with it byte for byte.

Usage: render_reference.py CASES.json OUT.json
  CASES.json: {"templates": {NAME: PATH_OR_{"tokenizer_config": PATH}}, "cases": [CASE, ...]}
  CASE: {"template": NAME, "messages": [...], "tools": [...]|null,
         "add_generation_prompt": bool, "bos_token": str, "enable_thinking": bool (optional)}
  OUT.json: one entry per case, {"ok": true, "text": RENDERED} or {"ok": false, "error": MESSAGE}.

Only Debian's python3-jinja2 is needed (no transformers): the environment below mirrors the one
transformers builds: ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks, loopcontrols), its own
`tojson` filter (ensure_ascii=False), and the `raise_exception` and `strftime_now` globals.
"""
import json
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def load_template(spec):
    if isinstance(spec, dict):
        with open(spec["tokenizer_config"], encoding="utf-8") as f:
            return json.load(f)["chat_template"]
    with open(spec, encoding="utf-8") as f:
        return f.read()


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    env = make_env()
    templates = {name: env.from_string(load_template(path)) for name, path in spec["templates"].items()}
    out = []
    for case in spec["cases"]:
        kwargs = {
            "messages": case["messages"],
            "tools": case.get("tools"),
            "documents": None,
            "add_generation_prompt": case.get("add_generation_prompt", True),
            "bos_token": case.get("bos_token", "<bos>"),
        }
        if "enable_thinking" in case:
            kwargs["enable_thinking"] = case["enable_thinking"]
        try:
            out.append({"ok": True, "text": templates[case["template"]].render(**kwargs)})
        except Exception as e:  # the C++ renderer must reject the same conversations
            out.append({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True)


if __name__ == "__main__":
    main()
