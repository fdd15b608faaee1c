#!/usr/bin/python3
"""Makes the recipe's data: King James Bible prose (Debian's bible-kjv, public domain) and synthetic
conversations rendered with the official Gemma 4 chat template (chat_template.jinja, rendered the way
transformers renders it), with thinking, tool declarations, tool calls, tool responses and
multi-turn dialogue. Writes, under OUT:
  prose_train.txt, prose_heldout.txt        plain text (every 25th chapter is held out)
  chat_train.jsonl, chat_heldout.jsonl      {"text": ...} rendered conversations (whole samples)
  tool_eval.jsonl                           held-out tool questions: {"prompt", "name", "arguments"}
Usage: gen_data.py OUT [--n-train N] [--n-heldout N] [--n-eval N]"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


def make_template():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, **k: json.dumps(x, ensure_ascii=False)

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)
    env.globals["raise_exception"] = raise_exception
    with open(os.path.join(HERE, "chat_template.jinja"), encoding="utf-8") as f:
        return env.from_string(f.read())


TEMPLATE = make_template()


def render(messages, tools=None, gen=True, thinking=False):
    return TEMPLATE.render(messages=messages, tools=tools, add_generation_prompt=gen, bos_token="<bos>",
                           enable_thinking=thinking, documents=None)


# ---------------------------------------------------------------------------------------------------
# Prose.

def kjv_chapters():
    out = subprocess.run(["bible", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    chapters, title, verses = [], None, []
    for line in out.split("\n"):
        if re.fullmatch(r"[1-3]?\s?[A-Z][A-Za-z ]+ \d+", line.strip()) and not line.startswith(" "):
            if title:
                chapters.append((title, verses))
            title, verses = line.strip(), []
        elif re.match(r"\s+\d+ ", line):
            verses.append(re.sub(r"^\s+\d+ ", "", line).strip())
        elif line.strip() and verses:
            verses[-1] += " " + line.strip()
    if title:
        chapters.append((title, verses))
    return chapters


# ---------------------------------------------------------------------------------------------------
# Tools.

# Short declarations: each costs tokens in every training sample.
TOOLS = {
    "calculator": {"type": "function", "function": {
        "name": "calculator", "description": "Evaluates an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                       "required": ["expression"]}}},
    "convert_units": {"type": "function", "function": {
        "name": "convert_units", "description": "Converts a value between units.",
        "parameters": {"type": "object", "properties": {
            "value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
            "required": ["value", "from_unit", "to_unit"]}}},
    "lookup_planet": {"type": "function", "function": {
        "name": "lookup_planet", "description": "Looks up facts about a planet.",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}},
}

PLANETS = {
    "Mercury": {"moons": 0, "radius_km": 2440, "day_hours": 4223},
    "Venus": {"moons": 0, "radius_km": 6052, "day_hours": 2802},
    "Earth": {"moons": 1, "radius_km": 6371, "day_hours": 24},
    "Mars": {"moons": 2, "radius_km": 3390, "day_hours": 25},
    "Jupiter": {"moons": 95, "radius_km": 69911, "day_hours": 10},
    "Saturn": {"moons": 146, "radius_km": 58232, "day_hours": 11},
    "Uranus": {"moons": 28, "radius_km": 25362, "day_hours": 17},
    "Neptune": {"moons": 16, "radius_km": 24622, "day_hours": 16},
}

# (from, to, function)
UNITS = [
    ("kilometers", "miles", lambda v: v * 0.621371), ("miles", "kilometers", lambda v: v * 1.609344),
    ("kilograms", "pounds", lambda v: v * 2.204623), ("pounds", "kilograms", lambda v: v * 0.453592),
    ("celsius", "fahrenheit", lambda v: v * 9 / 5 + 32), ("fahrenheit", "celsius", lambda v: (v - 32) * 5 / 9),
    ("meters", "feet", lambda v: v * 3.28084), ("feet", "meters", lambda v: v * 0.3048),
    ("liters", "gallons", lambda v: v * 0.264172), ("gallons", "liters", lambda v: v * 3.785412),
]

CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
            "Egypt": "Cairo", "Canada": "Ottawa", "Peru": "Lima", "Kenya": "Nairobi", "Norway": "Oslo",
            "Greece": "Athens", "Chile": "Santiago", "China": "Beijing", "India": "New Delhi",
            "Brazil": "Brasilia", "Mexico": "Mexico City", "Poland": "Warsaw", "Ireland": "Dublin"}

SYSTEMS = ["", "", "You are a helpful assistant.", "You are a concise assistant. Use the tools when they help.",
           "Answer briefly."]


def num(v):
    """A result as a tool returns it: an int when whole, else 4 decimals at most."""
    v = round(v, 4)
    return int(v) if v == int(v) else v


def calc_case(rng):
    op = rng.choice(["+", "-", "*", "/"])
    a = rng.randint(2, 999)
    b = rng.randint(2, 99 if op in "*/" else 999)
    expr = f"{a} {op} {b}"
    res = num(eval(expr))
    q = rng.choice(["What is {e}?", "Compute {e}.", "Can you calculate {e} for me?", "How much is {e}?",
                    "Please work out {e}.", "What do you get for {e}?"]).format(e=expr)
    think = rng.choice(["The user wants {e}. I will use the calculator.", "I need to compute {e} with the calculator.",
                        "Let me call the calculator for {e}."]).format(e=expr)
    answer = rng.choice(["{e} = {r}.", "The result is {r}.", "{e} is {r}."]).format(e=expr, r=res)
    return q, think, "calculator", {"expression": expr}, {"result": res}, answer


def convert_case(rng):
    frm, to, fn = rng.choice(UNITS)
    v = rng.randint(1, 500) if rng.random() < 0.7 else round(rng.uniform(0.5, 100), 1)
    res = num(fn(v))
    q = rng.choice(["Convert {v} {f} to {t}.", "How many {t} is {v} {f}?", "What is {v} {f} in {t}?",
                    "Please convert {v} {f} into {t}."]).format(v=v, f=frm, t=to)
    think = rng.choice(["The user wants {v} {f} in {t}. I will use convert_units.",
                        "I should convert {v} {f} to {t} with the unit converter."]).format(v=v, f=frm, t=to)
    answer = rng.choice(["{v} {f} is {r} {t}.", "That is {r} {t}."]).format(v=v, f=frm, t=to, r=res)
    return q, think, "convert_units", {"value": v, "from_unit": frm, "to_unit": to}, {"result": res}, answer


def planet_case(rng):
    name = rng.choice(list(PLANETS))
    facts = PLANETS[name]
    kind = rng.choice(["moons", "radius_km", "day_hours"])
    q = {"moons": ["How many moons does {p} have?", "Does {p} have moons?"],
         "radius_km": ["What is the radius of {p}?", "How big is {p}?"],
         "day_hours": ["How long is a day on {p}?", "How many hours is a day on {p}?"]}[kind]
    q = rng.choice(q).format(p=name)
    think = rng.choice(["I will look up {p} in the planet table.", "The user asks about {p}. I will use lookup_planet."]).format(p=name)
    answer = {"moons": "{p} has {v} moons.", "radius_km": "The radius of {p} is {v} km.",
              "day_hours": "A day on {p} lasts about {v} hours."}[kind].format(p=name, v=facts[kind])
    return q, think, "lookup_planet", {"name": name}, dict(facts), answer


TOOL_CASES = [calc_case, convert_case, planet_case]


def plain_case(rng):
    """A question answered without tools: (question, thinking, answer)."""
    k = rng.randrange(5)
    if k == 0:
        c = rng.choice(list(CAPITALS))
        return (rng.choice(["What is the capital of {c}?", "Which city is the capital of {c}?"]).format(c=c),
                f"The capital of {c} is {CAPITALS[c]}.", f"The capital of {c} is {CAPITALS[c]}.")
    if k == 1:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return (f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.", f"{a} plus {b} is {a + b}.")
    if k == 2:
        g = rng.choice(["Hello!", "Hi there.", "Good morning!", "Hey, how are you?"])
        return (g, "The user greets me. I will greet back.",
                rng.choice(["Hello! How can I help you today?", "Hi! What can I do for you?"]))
    if k == 3:
        w = rng.choice(["apple", "river", "garden", "light", "stone", "water", "house", "music", "bread", "cloud"])
        return (f"Spell the word {w} backwards.", f"The letters of {w} reversed are {w[::-1]}.", f"{w[::-1]}")
    n = rng.randint(3, 8)
    return (f"Count from 1 to {n}.", f"I list the numbers from 1 to {n}.", ", ".join(str(i) for i in range(1, n + 1)) + ".")


def thought(t):
    return "<|channel>thought\n" + t + "\n<channel|>"


def call_text(name, args):
    """The call as the template renders it (keys sorted, strings in <|"|>)."""
    def fmt(v):
        if isinstance(v, str):
            return '<|"|>' + v + '<|"|>'
        return str(v)
    return "<|tool_call>call:" + name + "{" + ",".join(k + ":" + fmt(args[k]) for k in sorted(args)) + "}<tool_call|>"


def conversation(rng, want_tool=None):
    """One training sample (text), or for evaluation (prompt, name, args) when want_tool is set."""
    thinking = rng.random() < 0.5
    has_tools = want_tool is not None or rng.random() < 0.75
    tools = None
    if has_tools:
        names = list(TOOLS)
        rng.shuffle(names)
        names = names[:rng.randint(1, 3)]
        tools = [TOOLS[n] for n in names]
    msgs = []
    sysmsg = rng.choice(SYSTEMS)
    if sysmsg:
        msgs.append({"role": "system", "content": sysmsg})
    tool_names = [t["function"]["name"] for t in tools] if tools else []
    case_of = {"calculator": calc_case, "convert_units": convert_case, "lookup_planet": planet_case}
    n_turns = 1 if want_tool is not None else rng.choice([1, 1, 1, 2, 2, 3])
    text = None
    for turn in range(n_turns):
        use_tool = bool(tool_names) and (want_tool is not None or rng.random() < 0.7)
        if use_tool:
            name = rng.choice(tool_names)
            q, think, name, args, resp, answer = case_of[name](rng)
            msgs.append({"role": "user", "content": q})
            prompt = render(msgs, tools, gen=True, thinking=thinking)
            if want_tool is not None:
                return prompt, name, args
            out1 = (thought(think) if thinking else "") + call_text(name, args) + "<|tool_response>"
            call_msg = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                        "function": {"name": name, "arguments": args}}], "content": ""}
            if thinking:
                call_msg["reasoning_content"] = think
            # The response as a mapping on the call message (the template's native form), which it
            # renders as response:NAME{key:value,...}.
            call_msg["tool_responses"] = [{"name": name, "response": resp}]
            msgs.append(call_msg)
            full = render(msgs, tools, gen=True, thinking=thinking)
            if thinking:
                # The template keeps the reasoning of a tool call after the last user turn, so the
                # rendered history continues exactly what the model wrote.
                assert full.startswith(prompt + out1[:-len("<|tool_response>")]), (prompt, out1, full)
                sample = full + answer + "<turn|>\n"
            else:
                # With thinking off the generation prompt pre-seeds an empty thought channel that the
                # rendered history does not keep: train on both, the live prompt and the re-rendered one.
                sample = full + answer + "<turn|>\n"
                if rng.random() < 0.5:
                    tail = full[len(render(msgs[:-1], tools, gen=False, thinking=thinking)):]
                    sample = prompt + out1 + tail[tail.index("<|tool_response>") + len("<|tool_response>"):] + answer + "<turn|>\n"
            msgs.append({"role": "assistant", "content": answer})
        else:
            q, think, answer = plain_case(rng)
            msgs.append({"role": "user", "content": q})
            prompt = render(msgs, tools, gen=True, thinking=thinking)
            sample = prompt + (thought(think) if thinking else "") + answer + "<turn|>\n"
            msgs.append({"role": "assistant", "content": answer})
        text = sample
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-heldout", type=int, default=500)
    ap.add_argument("--n-eval", type=int, default=60)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    chapters = kjv_chapters()
    assert len(chapters) == 1189, len(chapters)
    with open(os.path.join(a.out, "prose_train.txt"), "w") as tr, open(os.path.join(a.out, "prose_heldout.txt"), "w") as ho:
        for i, (title, verses) in enumerate(chapters):
            (ho if i % 25 == 12 else tr).write(title + "\n\n" + " ".join(verses) + "\n\n")
    for name, n, seed in [("chat_train.jsonl", a.n_train, 1), ("chat_heldout.jsonl", a.n_heldout, 2)]:
        rng = random.Random(seed)
        with open(os.path.join(a.out, name), "w") as f:
            for _ in range(n):
                f.write(json.dumps({"text": conversation(rng)}, ensure_ascii=False) + "\n")
    rng = random.Random(3)
    with open(os.path.join(a.out, "tool_eval.jsonl"), "w") as f:
        for i in range(a.n_eval):
            prompt, name, args = conversation(rng, want_tool=TOOL_CASES[i % 3])
            f.write(json.dumps({"prompt": prompt, "name": name, "arguments": args}, ensure_ascii=False) + "\n")
    print("wrote", a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
