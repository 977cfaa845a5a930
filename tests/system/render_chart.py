"""Renders charts/faas with the official Helm SDK (helm-python-sdk) for the whole-system test:
values as JSON in argv[1], release `faas` in namespace `faas-system`; prints every rendered
object as one JSON list on stdout, CRDs first (charts/faas/crds/), NOTES.txt left out."""

import json
import pathlib
import sys

import helm_python as helm
import yaml

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "faas"

values = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
objects = []
for crd in sorted((CHART / "crds").glob("*.yaml")):
    objects.extend(doc for doc in yaml.safe_load_all(crd.read_text()) if doc)
rendered = helm.Chart.load(str(CHART)).render(values, name="faas", namespace="faas-system", is_install=True)
for path, text in sorted(rendered.items()):
    if not path.endswith("NOTES.txt"):
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
json.dump(objects, sys.stdout)
