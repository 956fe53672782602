#!/usr/bin/env python3
"""Checks tool definitions with the `jsonschema` package: every schema is a valid JSON Schema
(draft 2020-12, the metaschema its checker names) and every sample call validates against its
tool's schema, and every bad call does not.

    validate.py CASES.json

CASES.json: {"openai": [...], "anthropic": [...], "samples": {NAME: ARGS}, "bad": {NAME: ARGS}}.
Prints one line per problem and exits 1 when there is any; prints "ok N" otherwise.
"""

import json
import sys

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def main(path):
    cases = json.load(open(path))
    problems = []
    schemas = {}
    for tool in cases["openai"]:
        if tool.get("type") != "function" or set(tool["function"]) != {"name", "description", "parameters"}:
            problems.append(f"openai: not a function tool: {tool}")
            continue
        schemas.setdefault(tool["function"]["name"], []).append(("openai", tool["function"]["parameters"]))
    for tool in cases["anthropic"]:
        if set(tool) != {"name", "description", "input_schema"}:
            problems.append(f"anthropic: unexpected keys: {sorted(tool)}")
            continue
        schemas.setdefault(tool["name"], []).append(("anthropic", tool["input_schema"]))
    checked = 0
    for name, found in schemas.items():
        for fmt, schema in found:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as e:
                problems.append(f"{fmt} {name}: not a valid JSON Schema: {e.message}")
                continue
            if schema.get("type") != "object":
                problems.append(f"{fmt} {name}: the parameters are not an object schema")
            validator = Draft202012Validator(schema)
            if name not in cases["samples"]:
                problems.append(f"{name}: no sample call")
            else:
                for error in validator.iter_errors(cases["samples"][name]):
                    problems.append(f"{fmt} {name}: the sample call does not validate: {error.message}")
            if name in cases["bad"] and validator.is_valid(cases["bad"][name]):
                problems.append(f"{fmt} {name}: the bad call {cases['bad'][name]} validates")
            checked += 1
    for name in cases["samples"]:
        if name not in schemas:
            problems.append(f"{name}: a sample for a tool that is not defined")
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"ok {checked}")


if __name__ == "__main__":
    main(sys.argv[1])
