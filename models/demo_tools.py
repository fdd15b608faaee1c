#!/usr/bin/python3
"""The three tools the default model was trained to call (tools.json), for `gemma4 run --tool-exec`:
reads one call {"name", "arguments"} as JSON on stdin and prints the result as JSON. The same tools
and the same fixed planet table as the training data (tools/train/gen_data.py)."""
import ast
import json
import operator
import sys

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
UNITS = {
    ("kilometers", "miles"): lambda v: v * 0.621371, ("miles", "kilometers"): lambda v: v * 1.609344,
    ("kilograms", "pounds"): lambda v: v * 2.204623, ("pounds", "kilograms"): lambda v: v * 0.453592,
    ("celsius", "fahrenheit"): lambda v: v * 9 / 5 + 32, ("fahrenheit", "celsius"): lambda v: (v - 32) * 5 / 9,
    ("meters", "feet"): lambda v: v * 3.28084, ("feet", "meters"): lambda v: v * 0.3048,
    ("liters", "gallons"): lambda v: v * 0.264172, ("gallons", "liters"): lambda v: v * 3.785412,
}
OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
       ast.USub: operator.neg}


def arith(node):
    """Evaluates + - * / on numbers only (no names, no calls)."""
    if isinstance(node, ast.Expression):
        return arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        return OPS[type(node.op)](arith(node.left), arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in OPS:
        return OPS[type(node.op)](arith(node.operand))
    raise ValueError("not an arithmetic expression")


def num(v):
    v = round(v, 4)
    return int(v) if v == int(v) else v


def main():
    call = json.load(sys.stdin)
    name, args = call.get("name"), call.get("arguments") or {}
    try:
        if name == "calculator":
            out = {"result": num(arith(ast.parse(str(args["expression"]), mode="eval")))}
        elif name == "convert_units":
            out = {"result": num(UNITS[(args["from_unit"], args["to_unit"])](float(args["value"])))}
        elif name == "lookup_planet":
            out = dict(PLANETS[args["name"]])
        else:
            out = {"error": "unknown tool " + str(name)}
    except (KeyError, ValueError, ZeroDivisionError, SyntaxError, TypeError) as e:
        out = {"error": type(e).__name__ + ": " + str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
