#!/usr/bin/env python3
"""Validate JSON documents against a JSON Schema (draft 2020-12) with the `jsonschema`
package: `validate.py SCHEMA FILE...`, each FILE one JSON document, or JSON lines when its name
ends in .jsonl. Prints one line per error and exits 1 if there was any; prints the number of
documents checked otherwise."""

import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    checked, errors = 0, 0
    for path in sys.argv[2:]:
        with open(path) as f:
            docs = [json.loads(l) for l in f if l.strip()] if path.endswith(".jsonl") else [json.load(f)]
        for i, doc in enumerate(docs):
            checked += 1
            for e in validator.iter_errors(doc):
                errors += 1
                where = "/".join(str(p) for p in e.absolute_path)
                print(f"{path}:{i + 1}: /{where}: {e.message}")
    if errors:
        sys.exit(1)
    print(checked)


if __name__ == "__main__":
    main()
