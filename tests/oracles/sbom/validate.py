"""Validates an SBOM with the reference validators; exit 0 when valid, 1 with the reasons.

    validate.py spdx FILE       pyspdxtools -i FILE, then the SPDX 2.3 JSON Schema
    validate.py cyclonedx FILE  cyclonedx-python-lib's strict JSON validator for 1.6
"""
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def spdx(path):
    import jsonschema

    tools = pathlib.Path(sys.executable).with_name("pyspdxtools")
    run = subprocess.run([str(tools), "-i", path], capture_output=True, text=True)
    problems = []
    if run.returncode != 0 or run.stdout.strip() or run.stderr.strip():
        problems.append(f"pyspdxtools (exit {run.returncode}): {run.stdout}{run.stderr}")
    schema = json.loads((HERE / "spdx-2.3.schema.json").read_text())
    document = json.loads(pathlib.Path(path).read_text())
    for error in jsonschema.Draft7Validator(schema).iter_errors(document):
        problems.append(f"schema: {error.json_path}: {error.message}")
    if document.get("spdxVersion") != "SPDX-2.3":
        problems.append(f"spdxVersion is {document.get('spdxVersion')!r}, not 'SPDX-2.3'")
    return problems


def cyclonedx(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = pathlib.Path(path).read_text()
    problems = []
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        problems.append(f"cyclonedx strict 1.6: {error}")
    # The strict validator does not check the version string itself.
    if json.loads(text).get("specVersion") != "1.6":
        problems.append("specVersion is not '1.6'")
    return problems


def main():
    kind, path = sys.argv[1], sys.argv[2]
    problems = {"spdx": spdx, "cyclonedx": cyclonedx}[kind](path)
    for problem in problems:
        print(problem)
    sys.exit(1 if problems else 0)


main()
