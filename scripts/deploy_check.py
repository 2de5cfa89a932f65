"""Checks the deployment files of deploy/ offline (run by kcl-cli/tests/deploy_files.rs).

    python3 scripts/deploy_check.py [DEPLOY_DIR]

- deploy/ecs/task-definition.json: valid input of ECS RegisterTaskDefinition (botocore's service
  model, as `aws ecs register-task-definition --cli-input-json file://...` checks it), and the
  choices docs/deploy.md explains: stopTimeout, initProcessEnabled, the kcl-worker-id
  entry point, awslogs, a task role;
- deploy/kubernetes/*.yaml: every document valid against the Kubernetes OpenAPI schemas
  (kubernetes-validate, strict: unknown fields are errors) of the releases in VERSIONS, and the
  StatefulSet's terminationGracePeriodSeconds, worker id from metadata.name, ServiceAccount and
  ConfigMap (whose app.properties must equal deploy/app.properties byte for byte);
- every stop timeout >= shutdownGraceMillis of deploy/app.properties + MARGIN_SECONDS.

    python3 scripts/deploy_check.py --iam POLICY.json...

- each IAM policy (as `kcl iam-policy` prints it) has no finding of parliament, the IAM policy
  linter with AWS's actions, resource types and condition keys bundled: unknown actions,
  resources that no action of the statement takes, malformed ARNs or conditions.

Prints one line per file checked; exits 1 with every problem listed otherwise.
The packages come from scripts/deploy_check/requirements.txt (pinned by hash).
"""

import json
import pathlib
import re
import sys

import botocore.session
import botocore.validate
import kubernetes_validate
import yaml

# The oldest Kubernetes release whose schema is checked, and the newest the package bundles.
VERSIONS = ["1.30", kubernetes_validate.utils.latest_version()]
# Time past shutdownGraceMillis for the JVM to exit and the leases to be released (DynamoDB
# calls); the same margin as kcl-cli/tests/deploy_files.rs.
MARGIN_SECONDS = 15
# Fargate's limit for a container's stopTimeout.
FARGATE_MAX_STOP_TIMEOUT = 120
WORKER_ID_SCRIPT = "/usr/local/lib/kcl/kcl-worker-id"

problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def shutdown_grace_seconds(properties):
    """shutdownGraceMillis in seconds (a simple key = value file: no continuation lines)."""
    for line in properties.splitlines():
        match = re.fullmatch(r"\s*shutdownGraceMillis\s*[=:\s]\s*(\d+)\s*", line)
        if match:
            return int(match.group(1)) / 1000
    raise SystemExit("deploy/app.properties sets no shutdownGraceMillis")


def check_stop_timeout(where, seconds, grace):
    if not isinstance(seconds, int) or seconds < grace + MARGIN_SECONDS:
        problem(
            where,
            f"stop timeout {seconds!r} s is under shutdownGraceMillis ({grace:g} s) + {MARGIN_SECONDS} s",
        )


def check_ecs(path, grace):
    task = json.loads(path.read_text())
    shape = (
        botocore.session.get_session()
        .get_service_model("ecs")
        .operation_model("RegisterTaskDefinition")
        .input_shape
    )
    try:
        botocore.validate.validate_parameters(task, shape)
    except botocore.exceptions.ParamValidationError as error:
        problem(path, f"not valid RegisterTaskDefinition input: {error}")
    containers = task.get("containerDefinitions", [])
    if len(containers) != 1:
        problem(path, "expected one container definition")
        return
    container = containers[0]
    timeout = container.get("stopTimeout")
    check_stop_timeout(f"{path} stopTimeout", timeout, grace)
    if isinstance(timeout, int) and timeout > FARGATE_MAX_STOP_TIMEOUT:
        problem(path, f"stopTimeout {timeout} is over Fargate's {FARGATE_MAX_STOP_TIMEOUT} s")
    if container.get("linuxParameters", {}).get("initProcessEnabled") is not True:
        problem(path, "linuxParameters.initProcessEnabled must be true (an init reaps orphans; kcl does not)")
    if container.get("entryPoint") != [WORKER_ID_SCRIPT]:
        problem(path, f"entryPoint must be [{WORKER_ID_SCRIPT!r}]")
    command = container.get("command", [])
    if command[2:5] != ["/usr/local/bin/kcl", "daemon", "--properties"] or command[5] != command[1]:
        problem(path, "command must run kcl daemon on the file kcl-worker-id writes")
    if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
        problem(path, "logConfiguration.logDriver must be awslogs")
    if not task.get("taskRoleArn"):
        problem(path, "no taskRoleArn: the KCL needs Kinesis, DynamoDB and CloudWatch rights")
    if not problems:
        print(f"ok: {path}: RegisterTaskDefinition input (botocore {botocore.__version__}); stopTimeout {timeout} s")


def check_kubernetes(folder, grace, properties):
    documents = {}
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            before = len(problems)
            for version in VERSIONS:
                try:
                    kubernetes_validate.validate(document, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    where = "/".join(str(p) for p in error.path)
                    problem(path, f"Kubernetes {version}: {where}: {error.message}")
                except kubernetes_validate.utils.SchemaNotFoundError as error:
                    problem(path, f"Kubernetes {version}: {error}")
            documents[document["kind"]] = (path, document)
            if len(problems) == before:
                print(f"ok: {path}: {document['kind']} {document['metadata']['name']} valid for Kubernetes {', '.join(VERSIONS)} (strict)")
    missing = [kind for kind in ("StatefulSet", "ConfigMap", "ServiceAccount") if kind not in documents]
    if missing:
        problem(folder, f"no {', '.join(missing)}")
        return
    path, statefulset = documents["StatefulSet"]
    pod = statefulset["spec"]["template"]["spec"]
    grace_period = pod.get("terminationGracePeriodSeconds")
    check_stop_timeout(f"{path} terminationGracePeriodSeconds", grace_period, grace)
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    field = env.get("KCL_WORKER_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if field != "metadata.name":
        problem(path, "KCL_WORKER_ID must come from the pod's metadata.name (its stable name)")
    if container.get("command", [None])[0] != WORKER_ID_SCRIPT:
        problem(path, f"the container must start with {WORKER_ID_SCRIPT}")
    if not pod.get("shareProcessNamespace"):
        problem(path, "shareProcessNamespace must be true (the pause container reaps orphans; kcl does not)")
    if container.get("livenessProbe") or container.get("readinessProbe"):
        problem(path, "a probe: kcl serves nothing to probe (docs/deploy.md, Health)")
    config_path, config_map = documents["ConfigMap"]
    account_path, account = documents["ServiceAccount"]
    if pod.get("serviceAccountName") != account["metadata"]["name"]:
        problem(path, "serviceAccountName is not the ServiceAccount of deploy/kubernetes")
    if "eks.amazonaws.com/role-arn" not in account["metadata"].get("annotations", {}):
        problem(account_path, "no eks.amazonaws.com/role-arn annotation (IRSA)")
    mounted = [v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v]
    if mounted != [config_map["metadata"]["name"]]:
        problem(path, "the pod does not mount the ConfigMap of deploy/kubernetes")
    if config_map["data"].get("app.properties") != properties:
        problem(config_path, "data.app.properties differs from deploy/app.properties")
    if not problems:
        print(f"ok: {path}: terminationGracePeriodSeconds {grace_period} s, KCL_WORKER_ID from metadata.name; {config_path}: app.properties = deploy/app.properties")


def check_iam(paths):
    # Imported here: only this mode needs it.
    from parliament import analyze_policy_string

    for path in paths:
        policy = analyze_policy_string(pathlib.Path(path).read_text())
        for finding in policy.findings:
            problem(path, f"parliament {finding.issue}: {finding.title} {finding.detail} at {finding.location}")
        if not policy.findings:
            statements = len(json.loads(pathlib.Path(path).read_text())["Statement"])
            print(f"ok: {path}: {statements} statements, no parliament finding")


def main():
    if sys.argv[1:2] == ["--iam"]:
        check_iam(sys.argv[2:])
        if problems:
            for line in problems:
                print(f"problem: {line}", file=sys.stderr)
            sys.exit(1)
        return
    deploy = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "deploy")
    properties = (deploy / "app.properties").read_text()
    grace = shutdown_grace_seconds(properties)
    print(f"ok: {deploy / 'app.properties'}: shutdownGraceMillis {grace:g} s; stop timeouts must be >= {grace + MARGIN_SECONDS:g} s")
    check_ecs(deploy / "ecs" / "task-definition.json", grace)
    check_kubernetes(deploy / "kubernetes", grace, properties)
    if problems:
        for line in problems:
            print(f"problem: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
