"""The Helm chart, linted and rendered with the official Helm SDK (helm-python-sdk) for the
default values and each file in charts/faas/ci/, every rendered object validated against the
Kubernetes schemas (kubernetes-validate), and the chart's contracts with the controller and
the gateway checked: the environment each reads, the RBAC each needs (and no more), IRSA, node
groups, the gateway's drain timing and its TargetGroupBinding (checked against the AWS Load
Balancer Controller's documented fields, since kubernetes-validate knows no CRD kinds).

Run: python3 -m unittest discover -s tests/chart -v   (scripts/test.sh does)
"""

import base64
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

# The gateway's cluster-mode settings: its flags' environment variables, plus what it reads
# besides its flags (the downward API, the AWS SDK's region, the log filter). Written out here
# because the chart is the contract: a misspelt name would be silently ignored by the gateway.
GATEWAY_ENV = {
    "FAAS_CLUSTER", "FAAS_LISTEN", "FAAS_ADMIN_LISTEN", "FAAS_NAMESPACES",
    "FAAS_SCALE_FROM_ZERO_TIMEOUT", "FAAS_ASYNC_QUEUE_URL", "FAAS_ASYNC_MAX_ATTEMPTS",
    "FAAS_DRAIN_DELAY", "FAAS_SHUTDOWN_GRACE", "FAAS_JSON_LOGS", "FAAS_ASYNC_INTERNAL_CALLBACKS",
    "AWS_REGION", "POD_NAMESPACE", "POD_NAME", "RUST_LOG",
    "FAAS_PLATFORM_HOSTS", "FAAS_WILDCARD_HOST_SUFFIXES",
    "POD_SERVICE_ACCOUNT", "AWS_EC2_METADATA_DISABLED", "FAAS_PLATFORM_TOKEN",
    "FAAS_POOL_MEMORY",
}
# Set whatever the values; the others only when their value is (an empty FAAS_NAMESPACES or
# FAAS_ASYNC_QUEUE_URL would not mean the same as unset to every flag parser).
GATEWAY_ENV_ALWAYS = GATEWAY_ENV - {
    "FAAS_NAMESPACES", "FAAS_ASYNC_QUEUE_URL", "FAAS_JSON_LOGS", "FAAS_ASYNC_INTERNAL_CALLBACKS",
    "FAAS_PLATFORM_HOSTS", "FAAS_WILDCARD_HOST_SUFFIXES",
}

# Exactly what the gateway may do in the API: (group, resource, verb).
GATEWAY_RBAC = {
    *(("faas.dev", "functions", verb) for verb in ("get", "list", "watch")),
    # Webhooks' requested runs: create, never update or delete.
    *(("faas.dev", "functionruns", verb) for verb in ("get", "list", "create")),
    *(("discovery.k8s.io", "endpointslices", verb) for verb in ("get", "list", "watch")),
    *(("apps", "deployments/scale", verb) for verb in ("get", "update")),
}
# And in its own namespace only: the Leases where gateway replicas publish their last request.
GATEWAY_NAMESPACED_RBAC = {
    *(("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "update")),
}


class Required:
    """A field the CRD requires (in TGB_SPEC)."""

    def __init__(self, shape):
        self.shape = shape


# The TargetGroupBinding elbv2.k8s.aws/v1beta1 spec, written by hand from the AWS Load Balancer
# Controller's documentation
#   https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/targetgroupbinding/
#   https://kubernetes-sigs.github.io/aws-load-balancer-controller/latest/guide/targetgroupbinding/spec/
# and the CRD it installs (config/crd/bases/elbv2.k8s.aws_targetgroupbindings.yaml in
# kubernetes-sigs/aws-load-balancer-controller), which has the fields added since the spec page was
# generated (multiClusterTargetGroup, vpcID, ipAddressType, ...). kubernetes-validate has no CRDs,
# and an unknown field in a custom resource is pruned by the API server without an error, so a typo
# (targetGroupArn, multiClusterTargetGroups) would silently do nothing. How to read it: a dict is an
# object with no other fields, a one-item list an array of that item, a set the allowed strings, a
# type or a tuple of types a scalar (IntOrString is (int, str)).
TGB_SPEC = {
    "targetGroupARN": str,
    "targetGroupName": str,
    "targetType": {"instance", "ip"},
    "serviceRef": Required({"name": Required(str), "port": Required((int, str))}),
    "networking": {
        "ingress": [{
            "from": Required([{"ipBlock": {"cidr": Required(str)}, "securityGroup": {"groupID": Required(str)}}]),
            "ports": Required([{"protocol": {"TCP", "UDP"}, "port": (int, str)}]),
        }],
    },
    "nodeSelector": {"matchLabels": dict, "matchExpressions": [{"key": str, "operator": str, "values": [str]}]},
    "ipAddressType": {"ipv4", "ipv6"},
    "vpcID": str,
    "multiClusterTargetGroup": bool,
    "targetGroupProtocol": {"HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC"},
    "iamRoleArnToAssume": str,
    "assumeRoleExternalId": str,
}


def shape_errors(value, shape, path="spec"):
    """What in `value` does not fit `shape` (see TGB_SPEC), as readable paths."""
    if isinstance(shape, dict):
        if type(value) is not dict:
            return [f"{path}: {type(value).__name__}, not an object"]
        errors = [f"{path}.{key}: not a field of the CRD" for key in value if key not in shape]
        for key, sub in shape.items():
            required = isinstance(sub, Required)
            sub = sub.shape if required else sub
            if key in value:
                errors += shape_errors(value[key], sub, f"{path}.{key}")
            elif required:
                errors.append(f"{path}.{key}: required")
        return errors
    if isinstance(shape, list):
        if type(value) is not list:
            return [f"{path}: {type(value).__name__}, not an array"]
        return [e for i, item in enumerate(value) for e in shape_errors(item, shape[0], f"{path}[{i}]")]
    if isinstance(shape, set):
        return [] if type(value) is str and value in shape else [f"{path}: {value!r} is not one of {sorted(shape)}"]
    types = shape if isinstance(shape, tuple) else (shape,)
    # type(), not isinstance(): YAML's true is not a port.
    return [] if type(value) in types else [f"{path}: {type(value).__name__}, not {'/'.join(t.__name__ for t in types)}"]


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


def every_values_file():
    """(name, rendered objects) for the defaults and each file in ci/."""
    return [(path and path.name, render(values_of(path))) for path in [None, *VALUE_FILES]]


def seconds(duration):
    """A duration the gateway reads ("30s", "2m", "500ms") in seconds."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h)", duration).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def dockerfile(image):
    """The final stage of the Dockerfile that builds `image` (`<registry>/faas-<name>:<tag>` is
    docker/<name>.Dockerfile): USER, WORKDIR, EXPOSE (as `8080/tcp`), ENTRYPOINT. The same
    reading as tests/tests/images.rs, which builds the images and checks them against it."""
    name = image.rsplit("/", 1)[-1].split(":", 1)[0]
    path = ROOT / "docker" / f"{name.removeprefix('faas-')}.Dockerfile"
    if not path.exists():
        raise AssertionError(f"image {image}: no {path.relative_to(ROOT)}")
    stage = {}
    for line in path.read_text().splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            stage = {"path": path.relative_to(ROOT), "EXPOSE": set()}
        elif word == "EXPOSE":
            stage["EXPOSE"] |= {p if "/" in p else f"{p}/tcp" for p in rest.split()}
        elif word == "ENTRYPOINT":
            stage["ENTRYPOINT"] = json.loads(rest)
        elif word in ("USER", "WORKDIR"):
            stage[word] = rest.strip()
    return stage


def container_ports(container):
    return {f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}" for p in container.get("ports", [])}


def exec_handlers(value, path):
    """(path, command) of every `exec` probe or hook under `value`."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "exec":
                yield f"{path}.{key}", child.get("command")
            yield from exec_handlers(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from exec_handlers(child, f"{path}[{i}]")


class ChartTest(unittest.TestCase):
    def test_lint_is_clean_for_every_values_file(self):
        for path in [None, *VALUE_FILES]:
            with self.subTest(values=path and path.name):
                report = helm.lint(str(CHART), values_of(path), strict=True, kube_version=f"v{KUBE_VERSION}")
                problems = [m for m in report["messages"] if m["severity"] >= 2]
                self.assertEqual(report["errors"], [])
                self.assertEqual(problems, [])

    def test_every_rendered_object_is_valid_kubernetes(self):
        for name, objects in every_values_file():
            for obj in objects:
                with self.subTest(values=name, kind=obj["kind"], name=obj["metadata"]["name"]):
                    # Not built-in kinds: checked by shape.
                    if obj["apiVersion"] == "monitoring.coreos.com/v1":
                        self.assertEqual(obj["kind"], "ServiceMonitor")
                        selector = obj["spec"]["selector"]["matchLabels"]
                        self.assertTrue(selector)
                        # It scrapes a named port of the one Service it selects.
                        services = [o for o in objects if o["kind"] == "Service"
                                    and selector.items() <= o["metadata"]["labels"].items()]
                        self.assertEqual(len(services), 1, selector)
                        port_names = {p["name"] for p in services[0]["spec"]["ports"]}
                        self.assertIn(obj["spec"]["endpoints"][0]["port"], port_names)
                        continue
                    if obj["apiVersion"] == "elbv2.k8s.aws/v1beta1":
                        self.assertEqual(obj["kind"], "TargetGroupBinding")
                        self.assertEqual(set(obj), {"apiVersion", "kind", "metadata", "spec"})
                        self.assertEqual(shape_errors(obj["spec"], TGB_SPEC), [])
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
        # AWS_EC2_METADATA_DISABLED is read by the AWS SDKs, not by a flag.
        known = set(re.findall(r'env = "([A-Z_]+)"', main)) | {"POD_NAME", "AWS_EC2_METADATA_DISABLED"}
        self.assertEqual(set(env) - known, set())
        self.assertEqual(json.loads(env["FAAS_FUNCTION_TOLERATIONS"]),
                         [{"key": "faas.dev/functions", "operator": "Exists", "effect": "NoSchedule"}])
        # By default no Function may name a role, a node group or a node label.
        self.assertEqual(json.loads(env["FAAS_ALLOWED_ROLE_ARNS"]), {})
        self.assertEqual((env["FAAS_ALLOWED_NODE_GROUPS"], env["FAAS_ALLOWED_NODE_SELECTOR_KEYS"],
                          env["FAAS_ALLOWED_TOLERATION_KEYS"]), ("", "", ""))
        # Runs go through the gateway's admin Service, with the token both read from one Secret.
        self.assertEqual(env["FAAS_GATEWAY_URL"], "http://faas-gateway.faas-system.svc.cluster.local:9090")
        # Pools autoscale on CPU from 2 to 10 replicas by default.
        self.assertEqual((env["FAAS_POOL_REPLICAS"], env["FAAS_POOL_MAX_REPLICAS"],
                          env["FAAS_POOL_CPU_TARGET_PERCENT"]), ("2", "10", "70"))
        # No registry Secret unless named: pools pull anonymously or log in to ECR.
        self.assertEqual(env["FAAS_POOL_REGISTRY_SECRET"], "")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        security = container["securityContext"]
        self.assertTrue(security["runAsNonRoot"] and security["readOnlyRootFilesystem"])
        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        # Platform pods stay off spot capacity.
        term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        self.assertEqual(term["matchExpressions"][0]["values"], ["ON_DEMAND"])

    def test_run_logs_go_to_the_named_bucket_only(self):
        # Without a bucket nothing about run logs is set: a cluster keeps each run's tail.
        env = env_of(find(render(), "Deployment", "faas-controller")[0])
        self.assertNotIn("FAAS_RUN_LOG_BUCKET", env)
        deployment = find(render({"controller": {"runLogs": {"bucket": "acme-run-logs"}}}),
                          "Deployment", "faas-controller")[0]
        env = env_of(deployment)
        self.assertEqual((env["FAAS_RUN_LOG_BUCKET"], env["FAAS_RUN_LOG_PREFIX"]),
                         ("acme-run-logs", "run-logs/"))
        main = (ROOT / "controller" / "src" / "main.rs").read_text()
        known = set(re.findall(r'env = "([A-Z_]+)"', main)) | {"POD_NAME", "AWS_EC2_METADATA_DISABLED"}
        self.assertEqual(set(env) - known, set())

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
        # What teams may ask for: the platform team's lists, as the controller parses them.
        self.assertEqual(json.loads(env["FAAS_ALLOWED_ROLE_ARNS"]),
                         {"*": ["arn:aws:iam::123456789012:role/faas/{namespace}/*"]})
        self.assertEqual(env["FAAS_ALLOWED_NODE_GROUPS"], "functions-gpu")
        # Pool pods' artifact pulls use the registry Secret the values name.
        self.assertEqual(env["FAAS_POOL_REGISTRY_SECRET"], "function-registry")
        self.assertEqual(env["FAAS_ALLOWED_NODE_SELECTOR_KEYS"], "example.com/disk")
        # The route rules: the same for the controller (status) and the gateway (routing).
        gateway_env = env_of(find(objects, "Deployment", "faas-gateway")[0])
        for e in (env, gateway_env):
            self.assertEqual(e["FAAS_PLATFORM_HOSTS"], "fn.example.com")
            self.assertEqual(e["FAAS_WILDCARD_HOST_SUFFIXES"], "apps.example.com")
        pod = deployment["spec"]["template"]["spec"]
        self.assertEqual(pod["nodeSelector"], {"node-group": "system"})
        self.assertEqual(pod["tolerations"][0]["key"], "CriticalAddonsOnly")
        policies = find(objects, "NetworkPolicy")
        self.assertEqual(sorted(p["metadata"]["namespace"] for p in policies), ["faas-system", "team-catalog", "team-payments"])
        for policy in policies:
            excepts = [b["ipBlock"]["except"] for b in policy["spec"]["egress"][0]["to"]]
            self.assertEqual(excepts, [["169.254.0.0/16"], ["fd00:ec2::/32"]])
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
            ("", "pods/log", "get"),
            ("", "serviceaccounts/token", "create"),
            ("keda.sh", "scaledobjects", "patch"),
            ("autoscaling", "horizontalpodautoscalers", "patch"),
            ("autoscaling", "horizontalpodautoscalers", "delete"),
            ("events.k8s.io", "events", "create"),
            ("networking.k8s.io", "networkpolicies", "patch"),
            ("networking.k8s.io", "networkpolicies", "delete"),
            ("batch", "jobs", "create"),
            ("batch", "jobs", "get"),
            ("batch", "jobs", "delete"),
        ]:
            self.assertTrue(allowed(group, resource, verb), (group, resource, verb))
        # Nothing it does not do: Secrets only to grant pool pods theirs (never listed or
        # watched), no writes to ConfigMaps, no cluster-wide Leases.
        self.assertFalse(allowed("", "secrets", "list"))
        self.assertFalse(allowed("", "secrets", "watch"))
        self.assertFalse(allowed("", "secrets", "patch"))
        self.assertFalse(allowed("", "configmaps", "patch"))
        self.assertFalse(allowed("coordination.k8s.io", "leases", "get"))
        # Logs to read, never a way into a pod.
        self.assertFalse(allowed("", "pods/exec", "create"))
        # Jobs it makes and follows; never a CronJob (schedules are the controller's).
        self.assertFalse(allowed("batch", "cronjobs", "create"))
        self.assertFalse(allowed("batch", "jobs", "patch"))
        self.assertFalse(allowed("", "pods", "get"))
        lease = find(objects, "Role", "faas-controller-lease")[0]
        self.assertEqual(lease["metadata"]["namespace"], "faas-system")
        self.assertEqual(lease["rules"][0]["resources"], ["leases"])
        # The pool pods' Role the controller renders grants a subset of what it holds.
        pool = (ROOT / "controller" / "src" / "render" / "pool.rs").read_text()
        self.assertIn('"functions/status"', pool)
        self.assertTrue(allowed("faas.dev", "functions", "list") and allowed("", "configmaps", "get"))
        # And each pool's token Role, which names its members' ServiceAccounts.
        access = (ROOT / "controller" / "src" / "render" / "pool_access.rs").read_text()
        self.assertIn('rule("serviceaccounts/token", "create", accounts)', access)
        self.assertIn('rule("secrets", "get", secrets)', access)
        self.assertTrue(allowed("", "serviceaccounts/token", "create") and allowed("", "secrets", "get"))

    def test_wrong_values_fail_at_install_naming_the_key(self):
        chart = helm.Chart.load(str(CHART))
        for values, key in [
            ({"controller": {"replicas": "two"}}, "replicas"),
            ({"controller": {"replica": 2}}, "replica"),
            ({"controller": {"serviceAccount": {"roleArn": "faas-controller"}}}, "roleArn"),
            ({"controller": {"region": "Paris"}}, "region"),
            ({"nodeGroups": {"system": {"capacityType": "spot"}}}, "capacityType"),
            ({"runtime": {"pools": {"memory": "a lot"}}}, "memory"),
            ({"runtime": {"pools": {"registrySecret": "Registry Creds"}}}, "registrySecret"),
            ({"runtime": {"pools": {"cpuTargetPercent": 150}}}, "cpuTargetPercent"),
            ({"runtime": {"pools": {"maxReplicas": 0}}}, "maxReplicas"),
        ]:
            with self.subTest(values=values):
                with self.assertRaises(helm.HelmError) as raised:
                    chart.validate_schema(values)
                self.assertIn(key, str(raised.exception))
        for path in VALUE_FILES:
            chart.validate_schema(values_of(path))

    def test_pool_bounds_that_cross_fail_at_install_naming_both(self):
        with self.assertRaises(Exception) as raised:
            render({"runtime": {"pools": {"replicas": 4, "maxReplicas": 3}}})
        self.assertIn("runtime.pools.maxReplicas (3) is below runtime.pools.replicas (4)", str(raised.exception))
        env = env_of(find(render({"runtime": {"pools": {"replicas": 3, "maxReplicas": 3}}}), "Deployment", "faas-controller")[0])
        self.assertEqual((env["FAAS_POOL_REPLICAS"], env["FAAS_POOL_MAX_REPLICAS"]), ("3", "3"))

    def test_wrong_gateway_values_fail_at_install_naming_the_key(self):
        chart = helm.Chart.load(str(CHART))
        arn = "arn:aws:elasticloadbalancing:eu-west-3:123456789012:targetgroup/faas-gateway/6d0ecf831eec9f09"
        for tgb, key in [
            # The target group comes from Terraform: enabling the binding without it is an error.
            ({"enabled": True}, "targetGroupARN"),
            ({"enabled": True, "targetGroupARN": ""}, "targetGroupARN"),
            # The load balancer's ARN, not its target group's.
            ({"enabled": True, "targetGroupARN": "arn:aws:elasticloadbalancing:eu-west-3:123456789012:"
              "loadbalancer/app/shared/50dc6c495c0c9188"}, "targetGroupARN"),
            ({"enabled": True, "targetGroupARN": "faas-gateway"}, "targetGroupARN"),
            ({"enabled": True, "targetGroupARN": arn, "albSecurityGroupIDs": ["shared-alb"]}, "albSecurityGroupIDs"),
            ({"enabled": True, "targetGroupARN": arn, "albSecurityGroupIDs": ["sg-XYZ12345"]}, "albSecurityGroupIDs"),
            ({"enabled": True, "targetGroupARN": arn, "albSecurityGroupIDs": "sg-0a1b2c3d"}, "albSecurityGroupIDs"),
            ({"enabled": True, "targetGroupARN": arn, "ipAddressType": "dualstack"}, "ipAddressType"),
            ({"enabled": True, "targetGroupARN": arn, "vpcID": "prod"}, "vpcID"),
            ({"enabled": True, "targetGroupArn": arn}, "targetGroupArn"),
            ({"enabled": True, "targetGroupARN": arn, "multiClusterTargetGroup": "true"}, "multiClusterTargetGroup"),
        ]:
            with self.subTest(targetGroupBinding=tgb):
                with self.assertRaises(helm.HelmError) as raised:
                    chart.validate_schema({"gateway": {"targetGroupBinding": tgb}})
                self.assertIn(key, str(raised.exception))
        for values, key in [
            ({"async": {"queueUrl": "faas-async"}}, "queueUrl"),
            ({"async": {"queueUrl": "arn:aws:sqs:eu-west-3:123456789012:faas-async"}}, "queueUrl"),
            ({"async": {"maxAttempts": 0}}, "maxAttempts"),
            ({"drainDelaySeconds": "30s"}, "drainDelaySeconds"),
            ({"scaleFromZeroTimeout": 30}, "scaleFromZeroTimeout"),
            ({"namespaces": "team-payments"}, "namespaces"),
            ({"ports": {"admin": 0}}, "admin"),
            ({"serviceAccount": {"roleArn": "faas-gateway"}}, "roleArn"),
            ({"autoscaling": {"targetCPUUtilizationPercentage": "70%"}}, "targetCPUUtilizationPercentage"),
            ({"replica": 2}, "replica"),
        ]:
            with self.subTest(values=values):
                with self.assertRaises(helm.HelmError) as raised:
                    chart.validate_schema({"gateway": values})
                self.assertIn(key, str(raised.exception))
        # Rendering (what install does) refuses too. The template's own `required` on the ARN is only
        # reached with --skip-schema-validation, which the SDK's render cannot do.
        with self.assertRaises(helm.HelmError) as raised:
            render({"gateway": {"targetGroupBinding": {"enabled": True}}})
        self.assertIn("targetGroupARN", str(raised.exception))
        with self.assertRaises(helm.HelmError) as raised:
            render({"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}})
        self.assertIn("minReplicas", str(raised.exception))

    def test_the_gateway_runs_as_its_flags_expect(self):
        for name, objects in every_values_file():
            with self.subTest(values=name):
                deployment = find(objects, "Deployment", "faas-gateway")[0]
                env = env_of(deployment)
                self.assertEqual(set(env) - GATEWAY_ENV, set())
                self.assertEqual(GATEWAY_ENV_ALWAYS - set(env), set())
                self.assertEqual(env["FAAS_CLUSTER"], "true")
                pod = deployment["spec"]["template"]["spec"]
                container = pod["containers"][0]
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                self.assertEqual(set(ports), {"http", "admin"})
                self.assertNotEqual(ports["http"], ports["admin"])
                self.assertTrue(env["FAAS_LISTEN"].endswith(f":{ports['http']}"))
                self.assertTrue(env["FAAS_ADMIN_LISTEN"].endswith(f":{ports['admin']}"))
                seconds(env["FAAS_SCALE_FROM_ZERO_TIMEOUT"])
                self.assertGreaterEqual(int(env["FAAS_ASYNC_MAX_ATTEMPTS"]), 1)
                # The gateway admits for WASM functions what the controller sizes pools for.
                controller = env_of(find(objects, "Deployment", "faas-controller")[0])
                self.assertEqual(env["FAAS_POOL_MEMORY"], controller["FAAS_POOL_MEMORY"])
                # The downward API, not values: the pod's own name and namespace.
                downward = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]
                            if "fieldRef" in e.get("valueFrom", {})}
                self.assertEqual(downward, {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
                                            "POD_SERVICE_ACCOUNT": "spec.serviceAccountName"})
                # Readiness on the public port, probed fast so a drain is seen within one period;
                # liveness on the admin port, which traffic does not saturate.
                readiness, liveness = container["readinessProbe"], container["livenessProbe"]
                self.assertEqual(readiness["httpGet"], {"path": "/readyz", "port": "http"})
                self.assertEqual((readiness["periodSeconds"], readiness["failureThreshold"]), (2, 1))
                self.assertEqual(liveness["httpGet"], {"path": "/healthz", "port": "admin"})
                security = container["securityContext"]
                self.assertTrue(security["runAsNonRoot"] and security["readOnlyRootFilesystem"])
                self.assertFalse(security["allowPrivilegeEscalation"])
                self.assertEqual(security["capabilities"]["drop"], ["ALL"])
                self.assertEqual(pod["serviceAccountName"], "faas-gateway")
                # On the system node group, placed exactly like the controller.
                controller = find(objects, "Deployment", "faas-controller")[0]["spec"]["template"]["spec"]
                for field in ("affinity", "nodeSelector", "tolerations", "securityContext"):
                    self.assertEqual(pod.get(field), controller.get(field), field)
                zones = [c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
                self.assertEqual(zones[0]["labelSelector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"])
                self.assertEqual(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)

        env = env_of(find(render(), "Deployment", "faas-gateway")[0])
        self.assertEqual(env["FAAS_LISTEN"], "0.0.0.0:8080")
        self.assertEqual(env["FAAS_ADMIN_LISTEN"], "0.0.0.0:9090")
        self.assertEqual((env["FAAS_DRAIN_DELAY"], env["FAAS_SHUTDOWN_GRACE"]), ("30s", "30s"))
        self.assertEqual(env["FAAS_SCALE_FROM_ZERO_TIMEOUT"], "30s")
        self.assertEqual(env["FAAS_ASYNC_MAX_ATTEMPTS"], "3")
        self.assertEqual(env["AWS_REGION"], "us-east-1")
        # Unset means every namespace and no async queue.
        self.assertNotIn("FAAS_NAMESPACES", env)
        self.assertNotIn("FAAS_ASYNC_QUEUE_URL", env)
        env = env_of(find(render(values_of(CHART / "ci" / "multi-cluster.yaml")), "Deployment", "faas-gateway")[0])
        self.assertEqual(env["FAAS_NAMESPACES"], "team-payments,team-catalog")
        self.assertEqual(env["FAAS_LISTEN"], "[::]:8080")
        self.assertEqual(env["FAAS_ASYNC_QUEUE_URL"], "https://sqs.us-west-2.amazonaws.com/123456789012/faas-async-green")

    def test_the_controller_and_the_gateway_share_one_platform_token(self):
        objects = render()
        secret = find(objects, "Secret", "faas-platform-token")[0]
        token = base64.b64decode(secret["data"]["token"]).decode()
        self.assertGreaterEqual(len(token), 32)
        self.assertTrue(token.isalnum())
        services = {s["metadata"]["name"]: s for s in find(objects, "Service")}
        admin_port = {p["name"]: p["port"] for p in services["faas-gateway"]["spec"]["ports"]}["admin"]
        for name in ("faas-gateway", "faas-controller"):
            container = find(objects, "Deployment", name)[0]["spec"]["template"]["spec"]["containers"][0]
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
                    if "secretKeyRef" in e.get("valueFrom", {})}
            self.assertEqual(refs, {"FAAS_PLATFORM_TOKEN": {"name": "faas-platform-token", "key": "token"}}, name)
        controller = env_of(find(objects, "Deployment", "faas-controller")[0])
        self.assertTrue(controller["FAAS_GATEWAY_URL"].endswith(f":{admin_port}"))
        # Generated, not a value anyone could read from the chart.
        self.assertNotEqual(token, base64.b64decode(find(render(), "Secret", "faas-platform-token")[0]["data"]["token"]).decode())

    def test_the_gateway_sources_read_every_faas_variable_the_chart_sets(self):
        # The same check as the controller's: every variable the chart sets is a flag the
        # gateway reads (gateway/src/main.rs).
        sources = [p for p in (ROOT / "gateway" / "src").rglob("*.rs") if "bin" not in p.relative_to(ROOT / "gateway" / "src").parts]
        declared = {name for p in sources for name in re.findall(r'env = "([A-Z_]+)"', p.read_text())}
        self.assertIn("FAAS_CLUSTER", declared)
        self.assertEqual({n for n in GATEWAY_ENV if n.startswith("FAAS_")} - declared, set())

    def test_the_gateway_outlives_its_drain(self):
        long_drain = render({"gateway": {"drainDelaySeconds": 90, "shutdownGraceSeconds": 45}})
        cases = every_values_file() + [
            ("long drain", long_drain),
            ("no drain", render({"gateway": {"drainDelaySeconds": 0, "shutdownGraceSeconds": 10}})),
        ]
        for name, objects in cases:
            with self.subTest(values=name):
                deployment = find(objects, "Deployment", "faas-gateway")[0]
                env = env_of(deployment)
                pod = deployment["spec"]["template"]["spec"]
                # SIGKILL only after the drain delay and the in-flight grace, with room to exit.
                needed = seconds(env["FAAS_DRAIN_DELAY"]) + seconds(env["FAAS_SHUTDOWN_GRACE"])
                self.assertGreaterEqual(pod["terminationGracePeriodSeconds"], needed + 5)
                # The drain is in-process: a preStop hook would delay SIGTERM and lengthen it.
                self.assertNotIn("lifecycle", pod["containers"][0])
        env = env_of(find(long_drain, "Deployment", "faas-gateway")[0])
        self.assertEqual((env["FAAS_DRAIN_DELAY"], env["FAAS_SHUTDOWN_GRACE"]), ("90s", "45s"))

    def test_gateway_rbac_is_exactly_what_it_does(self):
        objects = render()
        rules = find(objects, "ClusterRole", "faas-gateway")[0]["rules"]
        granted = set()
        for rule in rules:
            self.assertEqual(set(rule), {"apiGroups", "resources", "verbs"}, rule)
            for field in ("apiGroups", "resources", "verbs"):
                self.assertNotIn("*", rule[field], rule)
            granted |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
        self.assertEqual(granted, GATEWAY_RBAC)
        # Cluster-wide, bound to its own ServiceAccount only, and no namespaced extras.
        binding = find(objects, "ClusterRoleBinding", "faas-gateway")[0]
        self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "faas-gateway"})
        self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": "faas-gateway", "namespace": "faas-system"}])
        roles = [o for o in objects if o["kind"] == "Role" and "gateway" in o["metadata"]["name"]]
        self.assertEqual([r["metadata"]["name"] for r in roles], ["faas-gateway-activity"])
        self.assertEqual(roles[0]["metadata"]["namespace"], "faas-system")
        namespaced = {(g, r, v) for rule in roles[0]["rules"] for g in rule["apiGroups"]
                      for r in rule["resources"] for v in rule["verbs"]}
        self.assertEqual(namespaced, GATEWAY_NAMESPACED_RBAC)
        role_binding = find(objects, "RoleBinding", "faas-gateway-activity")[0]
        self.assertEqual(role_binding["roleRef"]["name"], "faas-gateway-activity")
        self.assertEqual(role_binding["subjects"], binding["subjects"])
        account = find(objects, "ServiceAccount", "faas-gateway")[0]
        self.assertNotIn("annotations", account["metadata"])
        # IRSA for the async queue.
        objects = render(values_of(CHART / "ci" / "eks-production.yaml"))
        annotations = find(objects, "ServiceAccount", "faas-gateway")[0]["metadata"]["annotations"]
        self.assertEqual(annotations["eks.amazonaws.com/role-arn"], "arn:aws:iam::123456789012:role/faas-gateway")
        self.assertEqual(annotations["eks.amazonaws.com/sts-regional-endpoints"], "true")

    def test_the_gateway_cannot_change_any_workload(self):
        # Patching or updating a Deployment (or any pod-owning object) would let whoever holds
        # the gateway's token run any image with any ServiceAccount in any namespace. Its only
        # write on workloads is the replica count, through the scale subresource.
        objects = render()
        rules = [rule for o in objects if o["kind"] in ("ClusterRole", "Role") and "gateway" in o["metadata"]["name"]
                 for rule in o["rules"]]
        workloads = {"deployments", "replicasets", "statefulsets", "daemonsets", "pods", "jobs", "cronjobs"}
        for rule in rules:
            for resource in rule["resources"]:
                if resource in workloads:
                    self.assertEqual(set(rule["verbs"]) & {"create", "update", "patch", "delete"}, set(), rule)
        writes = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
                  if set(rule["verbs"]) & {"create", "update", "patch", "delete"}}
        # A FunctionRun it creates (a webhook's run) runs a Function as its team deployed it,
        # image and identity included: no more than a call of that function.
        self.assertEqual(writes, {("apps", "deployments/scale"), ("coordination.k8s.io", "leases"),
                                  ("faas.dev", "functionruns")})

    def test_the_gateway_service_exposes_both_listeners_and_selects_only_gateway_pods(self):
        objects = render()
        service = find(objects, "Service", "faas-gateway")[0]
        self.assertEqual(service["spec"]["type"], "ClusterIP")
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        self.assertEqual(ports, {"http": (80, "http"), "admin": (9090, "admin")})
        selector = service["spec"]["selector"].items()
        gateway = find(objects, "Deployment", "faas-gateway")[0]["spec"]["template"]["metadata"]["labels"]
        controller = find(objects, "Deployment", "faas-controller")[0]["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(selector, gateway.items())
        self.assertFalse(selector <= controller.items())
        pdb = find(objects, "PodDisruptionBudget", "faas-gateway")[0]
        self.assertEqual(pdb["spec"]["minAvailable"], 1)
        self.assertLessEqual(pdb["spec"]["selector"]["matchLabels"].items(), gateway.items())
        # The gateway's metrics are scraped from the admin port.
        monitors = find(render(values_of(CHART / "ci" / "eks-production.yaml")), "ServiceMonitor", "faas-gateway")
        self.assertEqual(monitors[0]["spec"]["endpoints"][0]["port"], "admin")
        self.assertEqual(monitors[0]["spec"]["endpoints"][0]["path"], "/metrics")

    def test_the_hpa_owns_the_gateway_replicas(self):
        objects = render()
        deployment = find(objects, "Deployment", "faas-gateway")[0]
        # A rendered count would reset the HPA's on every upgrade.
        self.assertNotIn("replicas", deployment["spec"])
        hpa = find(objects, "HorizontalPodAutoscaler", "faas-gateway")[0]
        self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
        self.assertEqual(hpa["spec"]["scaleTargetRef"], {"apiVersion": "apps/v1", "kind": "Deployment", "name": "faas-gateway"})
        self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (2, 10))
        self.assertEqual(hpa["spec"]["metrics"], [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}])
        self.assertEqual(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 300)
        # CPU utilization is relative to the request: without one the HPA cannot compute it.
        self.assertIn("cpu", deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"])
        # Without the HPA, the count from values.
        objects = render(values_of(CHART / "ci" / "kind.yaml"))
        self.assertEqual(find(objects, "Deployment", "faas-gateway")[0]["spec"]["replicas"], 1)
        self.assertEqual([o for o in objects if o["kind"] in ("HorizontalPodAutoscaler", "PodDisruptionBudget")
                          and o["metadata"]["name"] == "faas-gateway"], [])

    def test_the_target_group_binding_binds_the_public_port_only(self):
        for path in VALUE_FILES:
            objects = render(values_of(path))
            bindings = [o for o in objects if o["kind"] == "TargetGroupBinding"]
            if not bindings:
                continue
            with self.subTest(values=path.name):
                self.assertEqual(len(bindings), 1)
                binding = bindings[0]
                spec = binding["spec"]
                self.assertEqual(shape_errors(spec, TGB_SPEC), [])
                self.assertEqual(binding["apiVersion"], "elbv2.k8s.aws/v1beta1")
                self.assertEqual(binding["metadata"]["namespace"], "faas-system")
                self.assertEqual(spec["targetType"], "ip")
                self.assertRegex(spec["targetGroupARN"], r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/")
                # serviceRef: the gateway Service's port that targets the public listener.
                service = find(objects, "Service", spec["serviceRef"]["name"])[0]
                self.assertEqual(service["metadata"]["name"], "faas-gateway")
                bound = [p for p in service["spec"]["ports"] if spec["serviceRef"]["port"] in (p["port"], p["name"])]
                self.assertEqual(len(bound), 1)
                self.assertEqual(bound[0]["targetPort"], "http")
                container = find(objects, "Deployment", "faas-gateway")[0]["spec"]["template"]["spec"]["containers"][0]
                ports = {p["name"]: p["containerPort"] for p in container["ports"]}
                # Security group rules, when the chart manages them, open the http port and nothing else.
                for rule in spec.get("networking", {}).get("ingress", []):
                    self.assertTrue(rule["from"])
                    self.assertEqual(rule["ports"], [{"protocol": "TCP", "port": ports["http"]}])
                    self.assertNotIn(ports["admin"], [p["port"] for p in rule["ports"]])
                    for peer in rule["from"]:
                        self.assertRegex(peer["securityGroup"]["groupID"], r"^sg-[0-9a-f]{8,17}$")

        production = find(render(values_of(CHART / "ci" / "eks-production.yaml")), "TargetGroupBinding")[0]["spec"]
        self.assertIs(production["multiClusterTargetGroup"], False)
        self.assertEqual(production["networking"]["ingress"][0]["from"], [{"securityGroup": {"groupID": "sg-0a1b2c3d4e5f60718"}}])
        shared = find(render(values_of(CHART / "ci" / "multi-cluster.yaml")), "TargetGroupBinding")[0]["spec"]
        self.assertIs(shared["multiClusterTargetGroup"], True)
        self.assertEqual((shared["ipAddressType"], shared["vpcID"]), ("ipv6", "vpc-0123456789abcdef0"))
        # No ALB security groups: Terraform owns the rule, so no networking section at all.
        self.assertNotIn("networking", shared)

    def test_the_target_group_binding_check_catches_mistakes(self):
        # The hand-written CRD tree must refuse what the API server would silently prune or reject.
        good = {"targetGroupARN": "arn", "targetType": "ip", "serviceRef": {"name": "faas-gateway", "port": 80}}
        self.assertEqual(shape_errors(good, TGB_SPEC), [])
        for bad in [
            {**good, "targetGroupArn": "arn"},
            {**good, "multiClusterTargetGroup": "true"},
            {**good, "targetType": "instances"},
            {**good, "serviceRef": {"name": "faas-gateway"}},
            {**good, "serviceRef": {"name": "faas-gateway", "port": True}},
            {**good, "networking": {"ingress": [{"from": [{"securityGroup": {"groupId": "sg-0a1b2c3d"}}], "ports": []}]}},
            {**good, "networking": {"ingress": [{"from": [{"securityGroup": {"groupID": "sg-0a1b2c3d"}}]}]}},
        ]:
            with self.subTest(spec=bad):
                self.assertNotEqual(shape_errors(bad, TGB_SPEC), [])

    def test_no_target_group_binding_unless_enabled(self):
        for values in [None, values_of(CHART / "ci" / "kind.yaml"),
                       {"gateway": {"targetGroupBinding": {"enabled": False, "albSecurityGroupIDs": ["sg-0a1b2c3d"]}}}]:
            with self.subTest(values=values):
                self.assertEqual([o for o in render(values) if o["kind"] == "TargetGroupBinding"], [])

    def test_each_platform_container_runs_its_image_as_its_dockerfile_says(self):
        # docker/<name>.Dockerfile is where the images' user, ports and entrypoint are written;
        # tests/tests/images.rs builds them and checks the runtime image against the
        # controller's rendering, this the controller's and the gateway's against the chart.
        for name, objects in every_values_file():
            for deployment in find(objects, "Deployment"):
                pod = deployment["spec"]["template"]["spec"]
                for container in pod["containers"] + pod.get("initContainers", []):
                    with self.subTest(values=name, container=container["name"]):
                        image = dockerfile(container["image"])
                        self.assertNotIn("command", container, f"{image['path']}'s ENTRYPOINT runs")
                        self.assertNotIn("args", container)
                        uid, gid = (int(i) for i in image["USER"].split(":"))
                        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
                        self.assertEqual(
                            (security.get("runAsUser"), security.get("runAsGroup"), security.get("runAsNonRoot")),
                            (uid, gid, True),
                            f"runs as {image['path']}'s USER {image['USER']}",
                        )
                        ports = container_ports(container)
                        if name is None:
                            # The defaults listen on exactly the ports the image exposes.
                            self.assertEqual(ports, image["EXPOSE"], image["path"])
                        named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
                        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                            handler = container.get(probe, {})
                            for action in ("httpGet", "tcpSocket", "grpc"):
                                if action in handler:
                                    port = handler[action]["port"]
                                    self.assertIn(f"{named.get(port, port)}/tcp", ports, f"{probe} port {port}")

    def test_the_controller_runs_pools_and_sidecars_from_the_runtime_image(self):
        for name, objects in every_values_file():
            with self.subTest(values=name):
                controller = find(objects, "Deployment", "faas-controller")[0]
                gateway = find(objects, "Deployment", "faas-gateway")[0]
                runtime = env_of(controller)["FAAS_RUNTIME_IMAGE"]
                self.assertEqual(dockerfile(runtime)["ENTRYPOINT"], ["/faas-runtime"])
                # The three images come from one registry with one tag.
                images = [runtime] + [d["spec"]["template"]["spec"]["containers"][0]["image"] for d in (controller, gateway)]
                self.assertEqual(len({(i.rsplit("/", 1)[0] if "/" in i else "", i.rsplit(":", 1)[1]) for i in images}), 1, images)

    def test_no_probe_or_hook_needs_a_shell(self):
        # The images are distroless: no shell, no tool but their binary. An `exec` probe or
        # lifecycle hook (`sh -c ...`) would fail in every pod; the controller's rendering is
        # checked the same way in tests/tests/images.rs.
        for name, objects in every_values_file():
            with self.subTest(values=name):
                found = [
                    f"{o['kind']}/{o['metadata']['name']}: {path} = {command}"
                    for o in objects
                    for path, command in exec_handlers(o, "")
                ]
                self.assertEqual(found, [], "exec probes or hooks the images cannot run")

    def test_every_platform_container_disables_instance_metadata(self):
        # The chart's pods (and, through the controller's rendering, function, sidecar and pool
        # containers: controller/src/render/network.rs tests) set AWS_EC2_METADATA_DISABLED, so
        # no AWS SDK in them falls back to the node's IAM role.
        for name, objects in every_values_file():
            pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]
            self.assertTrue(pods)
            for pod in pods:
                for container in pod["containers"] + pod.get("initContainers", []):
                    with self.subTest(values=name, container=container["name"]):
                        values = [e.get("value") for e in container.get("env", []) if e["name"] == "AWS_EC2_METADATA_DISABLED"]
                        self.assertEqual(values, ["true"])

    def test_network_policies_are_on_by_default(self):
        objects = render()
        controller = find(objects, "Deployment", "faas-controller")[0]
        gateway = find(objects, "Deployment", "faas-gateway")[0]
        # The controller renders each function's and pool's policy, letting in exactly the
        # gateway's and its own pods (their labels, in the release namespace).
        ingress_from = json.loads(env_of(controller)["FAAS_NETWORK_POLICY_INGRESS_FROM"])
        self.assertEqual(len(ingress_from), 2)
        for labels, deployment in zip(ingress_from, (gateway, controller)):
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(labels.items() <= pod_labels.items(), (labels, pod_labels))
        self.assertFalse(ingress_from[0].items() <= controller["spec"]["template"]["metadata"]["labels"].items())
        # The platform's own pods: egress never to the metadata ranges.
        policy = find(objects, "NetworkPolicy", "faas-platform-egress")[0]
        self.assertEqual(policy["metadata"]["namespace"], "faas-system")
        self.assertEqual(policy["spec"]["policyTypes"], ["Egress"])
        self.assertEqual(policy["spec"]["egress"], [{"to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
            {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::/32"]}},
        ]}])
        selected = {e["key"]: e["values"] for e in policy["spec"]["podSelector"]["matchExpressions"]}
        self.assertEqual(selected["app.kubernetes.io/name"], ["faas-gateway", "faas-controller"])
        # The namespace-wide fallback leaves out pods with an egress list of their own.
        objects = render(values_of(CHART / "ci" / "eks-production.yaml"))
        for policy in find(objects, "NetworkPolicy", "faas-deny-instance-metadata"):
            self.assertIn({"key": "faas.dev/egress", "operator": "DoesNotExist"},
                          policy["spec"]["podSelector"]["matchExpressions"])
        # Off: nothing rendered, nothing passed.
        objects = render({"networkPolicy": {"enabled": False}})
        self.assertEqual([o for o in objects if o["kind"] == "NetworkPolicy"], [])
        self.assertNotIn("FAAS_NETWORK_POLICY_INGRESS_FROM", env_of(find(objects, "Deployment", "faas-controller")[0]))

    def test_function_network_policies_leave_gateway_traffic_alone(self):
        # The gateway sends requests straight to function pods: the chart's policies on those pods
        # restrict egress only, so they never stand in the way of that ingress.
        for policy in find(render(values_of(CHART / "ci" / "eks-production.yaml")), "NetworkPolicy"):
            self.assertEqual(policy["spec"]["policyTypes"], ["Egress"])
            self.assertNotIn("ingress", policy["spec"])


if __name__ == "__main__":
    unittest.main()
