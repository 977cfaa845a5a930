"""The Helm chart, linted and rendered with the official Helm SDK (helm-python-sdk) for the
default values and each file in charts/faas/ci/, every rendered object validated against the
Kubernetes schemas (kubernetes-validate), and the chart's contracts with the controller
checked: the environment it reads, the RBAC it needs (and no more), IRSA, node groups.

Run: python3 -m unittest discover -s tests/chart -v   (scripts/test.sh does)
"""

import json
import pathlib
import re
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "faas"
KUBE_VERSION = "1.33.0"
VALUE_FILES = sorted((CHART / "ci").glob("*.yaml"))


class UniqueKeyLoader(yaml.SafeLoader):
    """Refuses duplicate keys, which YAML parsers (and the API server) silently collapse."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def render(values=None):
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="faas", namespace="faas-system", is_install=True)
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=UniqueKeyLoader):
            if doc:
                objects.append(doc)
    return objects


def values_of(path):
    return yaml.safe_load(path.read_text()) if path else None


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if not found:
        raise AssertionError(f"no {kind} {name or ''} rendered")
    return found


def env_of(deployment):
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


class ChartTest(unittest.TestCase):
    def test_lint_is_clean_for_every_values_file(self):
        for path in [None, *VALUE_FILES]:
            with self.subTest(values=path and path.name):
                report = helm.lint(str(CHART), values_of(path), strict=True, kube_version=f"v{KUBE_VERSION}")
                problems = [m for m in report["messages"] if m["severity"] >= 2]
                self.assertEqual(report["errors"], [])
                self.assertEqual(problems, [])

    def test_every_rendered_object_is_valid_kubernetes(self):
        for path in [None, *VALUE_FILES]:
            objects = render(values_of(path))
            for obj in objects:
                with self.subTest(values=path and path.name, kind=obj["kind"], name=obj["metadata"]["name"]):
                    if obj["apiVersion"] == "monitoring.coreos.com/v1":
                        # Not a built-in kind: checked by shape.
                        self.assertEqual(obj["kind"], "ServiceMonitor")
                        self.assertTrue(obj["spec"]["selector"]["matchLabels"])
                        self.assertEqual(obj["spec"]["endpoints"][0]["port"], "metrics")
                        continue
                    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)

    def test_the_crds_are_valid_and_served_with_status(self):
        for crd in yaml.load_all((CHART / "crds" / "faas.dev.yaml").read_text(), Loader=UniqueKeyLoader):
            kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)
            version = crd["spec"]["versions"][0]
            self.assertIn("status", version["subresources"])

    def test_the_controller_runs_as_its_flags_expect(self):
        deployment = find(render(), "Deployment", "faas-controller")[0]
        self.assertEqual(deployment["spec"]["replicas"], 2)
        env = env_of(deployment)
        # Every variable the chart sets is one the controller reads (a typo would be ignored).
        main = (ROOT / "controller" / "src" / "main.rs").read_text()
        known = set(re.findall(r'env = "([A-Z_]+)"', main)) | {"POD_NAME"}
        self.assertEqual(set(env) - known, set())
        self.assertEqual(json.loads(env["FAAS_FUNCTION_TOLERATIONS"]),
                         [{"key": "faas.dev/functions", "operator": "Exists", "effect": "NoSchedule"}])
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        security = container["securityContext"]
        self.assertTrue(security["runAsNonRoot"] and security["readOnlyRootFilesystem"])
        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        # Platform pods stay off spot capacity.
        term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        self.assertEqual(term["matchExpressions"][0]["values"], ["ON_DEMAND"])

    def test_production_values_give_irsa_ecr_images_and_node_groups(self):
        objects = render(values_of(CHART / "ci" / "eks-production.yaml"))
        account = find(objects, "ServiceAccount", "faas-controller")[0]
        annotations = account["metadata"]["annotations"]
        self.assertEqual(annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::123456789012:role/faas-controller")
        self.assertEqual(annotations["eks.amazonaws.com/sts-regional-endpoints"], "true")
        deployment = find(objects, "Deployment", "faas-controller")[0]
        env = env_of(deployment)
        self.assertEqual(env["FAAS_RUNTIME_IMAGE"], "123456789012.dkr.ecr.eu-west-3.amazonaws.com/platform/faas-runtime:0.1.0")
        self.assertEqual(env["FAAS_FUNCTION_NODE_LABELS"], "node-group=functions")
        self.assertEqual(env["FAAS_PUBLIC_URL"], "https://fn.example.com")
        self.assertEqual(len(json.loads(env["FAAS_FUNCTION_TOLERATIONS"])), 2)
        pod = deployment["spec"]["template"]["spec"]
        self.assertEqual(pod["nodeSelector"], {"node-group": "system"})
        self.assertEqual(pod["tolerations"][0]["key"], "CriticalAddonsOnly")
        policies = find(objects, "NetworkPolicy")
        self.assertEqual(sorted(p["metadata"]["namespace"] for p in policies), ["team-catalog", "team-payments"])
        excepts = policies[0]["spec"]["egress"][0]["to"][0]["ipBlock"]["except"]
        self.assertIn("169.254.169.254/32", excepts)
        find(objects, "ServiceMonitor")

    def test_rbac_grants_what_the_controller_does_and_no_wildcards(self):
        objects = render()
        cluster_role = find(objects, "ClusterRole", "faas-controller")[0]
        rules = cluster_role["rules"]
        for rule in rules:
            for field in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", rule[field], rule)
            self.assertNotIn("escalate", rule["verbs"])
            self.assertNotIn("bind", rule["verbs"])

        def allowed(group, resource, verb):
            return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

        for group, resource, verb in [
            ("faas.dev", "functions", "watch"),
            ("faas.dev", "functions/status", "patch"),
            ("faas.dev", "functionruns", "create"),
            ("faas.dev", "functionruns", "watch"),
            ("faas.dev", "functionruns/status", "patch"),
            ("apps", "deployments", "patch"),
            ("rbac.authorization.k8s.io", "roles", "patch"),
            ("", "configmaps", "get"),
            ("", "pods", "list"),
            ("keda.sh", "scaledobjects", "patch"),
            ("events.k8s.io", "events", "create"),
        ]:
            self.assertTrue(allowed(group, resource, verb), (group, resource, verb))
        # Nothing it does not do: no Secrets, no writes to ConfigMaps, no cluster-wide Leases.
        self.assertFalse(allowed("", "secrets", "get"))
        self.assertFalse(allowed("", "configmaps", "patch"))
        self.assertFalse(allowed("coordination.k8s.io", "leases", "get"))
        lease = find(objects, "Role", "faas-controller-lease")[0]
        self.assertEqual(lease["metadata"]["namespace"], "faas-system")
        self.assertEqual(lease["rules"][0]["resources"], ["leases"])
        # The pool pods' Role the controller renders grants a subset of what it holds.
        pool = (ROOT / "controller" / "src" / "render" / "pool.rs").read_text()
        self.assertIn('"functions/status"', pool)
        self.assertTrue(allowed("faas.dev", "functions", "list") and allowed("", "configmaps", "get"))

    def test_wrong_values_fail_at_install_naming_the_key(self):
        chart = helm.Chart.load(str(CHART))
        for values, key in [
            ({"controller": {"replicas": "two"}}, "replicas"),
            ({"controller": {"replica": 2}}, "replica"),
            ({"controller": {"serviceAccount": {"roleArn": "faas-controller"}}}, "roleArn"),
            ({"controller": {"region": "Paris"}}, "region"),
            ({"nodeGroups": {"system": {"capacityType": "spot"}}}, "capacityType"),
            ({"runtime": {"pools": {"memory": "a lot"}}}, "memory"),
        ]:
            with self.subTest(values=values):
                with self.assertRaises(helm.HelmError) as raised:
                    chart.validate_schema(values)
                self.assertIn(key, str(raised.exception))
        chart.validate_schema(values_of(CHART / "ci" / "eks-production.yaml"))


if __name__ == "__main__":
    unittest.main()
