"""Offline validation of the k8s/ manifests (issue 16, item 5).

Run by scripts/validate-manifests.sh inside a venv that has the pinned
kubernetes-validate (which bundles the Kubernetes JSON schemas), jsonschema
and PyYAML. Three layers:

1. Built-in kinds (Namespace, ConfigMap, Deployment) against the Kubernetes
   schemas of the oldest and newest versions we support, strictly (an
   unknown field is an error, not silently dropped by the API server).
2. What no bundled schema covers, against schemas of our own in
   k8s/schemas/: the NetworkAttachmentDefinitions, the SR-IOV CNI
   configuration inside them, and the device plugin's config.json.
3. Rules a schema cannot express: Guaranteed QoS, integer CPUs, exactly
   IPC_LOCK + NET_ADMIN, the resource names agreeing across the device
   plugin pools, the NADs, the networks annotation, the requests and the
   PCIDEVICE_ variable, and the volumes fastpath expects.

Each check prints `validate-manifests: PASS|FAIL <name>[: why]`.
`--self-test` breaks a copy of the manifests in a temporary directory in
one way per case and passes only if the validation fails on the expected
check.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

import jsonschema
import kubernetes_validate.utils as kv
import yaml

# CPU manager static policy exists (GA) since 1.26 (anchors.md 3.3): the
# oldest version whose schema we check against; the newest is what the
# pinned kubernetes-validate bundles.
K8S_VERSIONS = ["1.26.0", kv.latest_version()]
BUILTIN_KINDS = {"Namespace", "ConfigMap", "Deployment"}
# Exactly what vfio-pci and the exception path need (anchors.md 3.5).
CAPABILITIES = {"IPC_LOCK", "NET_ADMIN"}
# The VF device ids the pools may select (vendor 8086): 82599 VF 10ed
# (docs/facts/nic-facts.md A.1), XL710 VF 154c and adaptive VF 1889
# (nic-facts.md B.1), 82576 VF 10ca and I350 VF 1520
# (docs/facts/nic-facts-igbvf.md C.1).
VF_DEVICE_IDS = {"10ed", "154c", "1889", "10ca", "1520"}
NAD_RESOURCE = "k8s.v1.cni.cncf.io/resourceName"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
SOCKET_DIR = "/run/fastpath"
PODNETINFO = "/etc/podnetinfo"
ENV_FILE = "/etc/fast-path.env"

# Kubernetes quantity suffixes (apimachinery resource.Quantity).
SUFFIXES = {
    "": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9,
    "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20,
    "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


class Doc:
    """One YAML document and where it came from."""

    def __init__(self, path: Path, index: int, body: dict):
        self.path, self.index, self.body = path, index, body

    @property
    def kind(self) -> str:
        return self.body.get("kind", "?")

    @property
    def name(self) -> str:
        return (self.body.get("metadata") or {}).get("name", "?")

    def label(self) -> str:
        return f"{self.path.name}#{self.index} {self.kind}/{self.name}"


class Report:
    def __init__(self, quiet: bool = False):
        self.passed: list[str] = []
        self.failed: list[tuple[str, str]] = []
        self.quiet = quiet

    def check(self, name: str, problems: list[str]) -> None:
        if problems:
            self.failed.append((name, "; ".join(problems)))
            if not self.quiet:
                print(f"validate-manifests: FAIL {name}: {'; '.join(problems)}")
        else:
            self.passed.append(name)
            if not self.quiet:
                print(f"validate-manifests: PASS {name}")


def quantity(value: Any) -> Decimal | None:
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", str(value).strip())
    if not m or m.group(2) not in SUFFIXES:
        return None
    try:
        return Decimal(m.group(1)) * SUFFIXES[m.group(2)]
    except InvalidOperation:
        return None


def load(directory: Path) -> tuple[list[Doc], list[str]]:
    docs, errors = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            for i, body in enumerate(yaml.safe_load_all(path.read_text())):
                if body is None:
                    continue
                if not isinstance(body, dict):
                    errors.append(f"{path.name}#{i}: not a mapping")
                    continue
                docs.append(Doc(path, i, body))
        except yaml.YAMLError as e:
            errors.append(f"{path.name}: {e}")
    return docs, errors


def schema_errors(schema: dict, value: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
    ]


def pod_spec(doc: Doc) -> dict:
    return ((doc.body.get("spec") or {}).get("template") or {}).get("spec") or {}


def containers(doc: Doc) -> list[dict]:
    spec = pod_spec(doc)
    return (spec.get("initContainers") or []) + (spec.get("containers") or [])


def is_extended(resource: str) -> bool:
    # Extended resources have a domain prefix; hugepages-*, cpu, memory and
    # ephemeral-storage are native.
    return "/" in resource and not resource.startswith("kubernetes.io/")


def pcidevice_var(resource: str) -> str:
    # PCIDEVICE_ + the resource name upper-cased, '.' and '/' as '_'
    # (sriov-network-device-plugin README, "Pod device information").
    return "PCIDEVICE_" + re.sub(r"[./]", "_", resource).upper()


# ---- layer 1 and 2: schemas


def check_builtin(report: Report, doc: Doc) -> None:
    for version in K8S_VERSIONS:
        problems = []
        try:
            kv.validate(doc.body, version, strict=True)
        except kv.ValidationError as e:
            where = "/".join(str(p) for p in e.path) or "(top)"
            problems.append(f"{where}: {e.message}")
        except kv.SchemaNotFoundError as e:
            problems.append(str(e))
        report.check(f"k8s-schema {doc.label()} (Kubernetes {version}, strict)", problems)


def check_nad(report: Report, doc: Doc, schemas: Path) -> None:
    nad_schema = json.loads((schemas / "network-attachment-definition.json").read_text())
    cni_schema = json.loads((schemas / "sriov-cni-config.json").read_text())
    problems = schema_errors(nad_schema, doc.body)
    report.check(f"nad-schema {doc.label()}", problems)
    problems = []
    raw = (doc.body.get("spec") or {}).get("config")
    try:
        config = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as e:
        config = None
        problems.append(f"spec.config is not JSON: {e}")
    if config is None and not problems:
        problems.append("spec.config is missing or not a string")
    if config is not None:
        problems += schema_errors(cni_schema, config)
        if isinstance(config, dict) and config.get("name") != doc.name:
            problems.append(
                f"the CNI config's name {config.get('name')!r} is not the NAD's name {doc.name!r}"
            )
    report.check(f"sriov-cni-config {doc.label()}", problems)


def device_plugin_config(doc: Doc) -> tuple[Any, list[str]]:
    raw = (doc.body.get("data") or {}).get("config.json")
    if not isinstance(raw, str):
        return None, ["data.config.json is missing"]
    try:
        return json.loads(raw), []
    except json.JSONDecodeError as e:
        return None, [f"data.config.json is not JSON: {e}"]


def check_device_plugin(report: Report, doc: Doc, schemas: Path) -> None:
    config, problems = device_plugin_config(doc)
    if config is not None:
        problems = schema_errors(json.loads((schemas / "sriovdp-config.json").read_text()), config)
    report.check(f"sriovdp-config-schema {doc.label()}", problems)
    if problems:
        return
    # Every pool: VFs on vfio-pci with vhost-net shared, of the kinds the
    # drivers crate drives.
    problems = []
    for pool in config["resourceList"]:
        name = pool["resourceName"]
        for sel in pool["selectors"]:
            if sel.get("drivers") != ["vfio-pci"]:
                problems.append(f"{name}: drivers {sel.get('drivers')} is not ['vfio-pci']")
            if sel.get("needVhostNet") is not True:
                problems.append(f"{name}: needVhostNet is not true")
            if sel.get("vendors") != ["8086"]:
                problems.append(f"{name}: vendors {sel.get('vendors')} is not ['8086']")
            unknown = set(sel.get("devices") or []) - VF_DEVICE_IDS
            if not sel.get("devices") or unknown:
                problems.append(
                    f"{name}: devices {sel.get('devices')} must be VF ids among {sorted(VF_DEVICE_IDS)}"
                )
    report.check(f"device-plugin-pools {doc.label()}", problems)


# ---- layer 3: rules of our own


def check_qos(report: Report, doc: Doc) -> None:
    qos, cpu, huge = [], [], []
    for c in containers(doc):
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        name = c.get("name", "?")
        for key in ("cpu", "memory"):
            if key not in lim:
                qos.append(f"{name}: no {key} limit")
        for key in sorted(set(req) | set(lim)):
            a, b = req.get(key), lim.get(key)
            if a is None or b is None or quantity(a) is None or quantity(a) != quantity(b):
                qos.append(f"{name}: {key} request {a!r} != limit {b!r}")
        for key in ("cpu",):
            for where, v in (("request", req.get(key)), ("limit", lim.get(key))):
                q = quantity(v) if v is not None else None
                if q is None or q <= 0 or q != q.to_integral_value():
                    cpu.append(
                        f"{name}: cpu {where} {v!r} is not a whole number of CPUs (the CPU manager gives exclusive CPUs only to integer requests)"
                    )
        sizes = [k for k in lim if k.startswith("hugepages-")]
        if not sizes:
            huge.append(f"{name}: no hugepages-2Mi or hugepages-1Gi limit")
        mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts") or []}
        media = {
            v.get("name"): (v.get("emptyDir") or {}).get("medium")
            for v in pod_spec(doc).get("volumes") or []
            if "emptyDir" in v
        }
        huge_mounts = [n for n, medium in media.items() if medium and medium.startswith("HugePages") and n in mounts]
        if sizes and not huge_mounts:
            huge.append(f"{name}: no emptyDir of medium HugePages mounted")
        for n in huge_mounts:
            if media[n] == "HugePages" and len(sizes) > 1:
                huge.append(f"{name}: medium HugePages with several page sizes {sizes}: use HugePages-<size>")
    report.check(f"guaranteed-qos {doc.label()}", qos)
    report.check(f"integer-cpu {doc.label()}", cpu)
    report.check(f"hugepages {doc.label()}", huge)


def check_privileges(report: Report, doc: Doc) -> None:
    problems = []
    spec = pod_spec(doc)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{key} is true")
    for c in containers(doc):
        name = c.get("name", "?")
        sc = c.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        if sc.get("privileged") is not False:
            problems.append(f"{name}: privileged is {sc.get('privileged')!r}, not false")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        if caps.get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities.drop is {caps.get('drop')!r}, not ['ALL']")
        add = caps.get("add") or []
        if sorted(add) != sorted(CAPABILITIES) or len(add) != len(set(add)):
            problems.append(f"{name}: capabilities.add is {add!r}, not exactly {sorted(CAPABILITIES)}")
    report.check(f"least-privilege {doc.label()}", problems)


def check_volumes(report: Report, doc: Doc, docs: list[Doc]) -> None:
    problems = []
    volumes = {v.get("name"): v for v in pod_spec(doc).get("volumes") or []}
    main = (pod_spec(doc).get("containers") or [{}])[0]
    mounts = {m.get("mountPath"): m for m in main.get("volumeMounts") or []}

    def volume_at(path: str) -> dict:
        m = mounts.get(path)
        if m is None:
            problems.append(f"nothing mounted at {path}")
            return {}
        return volumes.get(m.get("name")) or {}

    if "emptyDir" not in volume_at(SOCKET_DIR) and SOCKET_DIR in mounts:
        problems.append(f"{SOCKET_DIR} (the control socket, on a read-only root) is not an emptyDir")
    items = (volume_at(PODNETINFO).get("downwardAPI") or {}).get("items") or []
    if PODNETINFO in mounts and not any(
        i.get("path") == "annotations"
        and (i.get("fieldRef") or {}).get("fieldPath") == "metadata.annotations"
        for i in items
    ):
        problems.append(f"{PODNETINFO}/annotations is not the Downward API's metadata.annotations")
    env = mounts.get(ENV_FILE)
    cm = volume_at(ENV_FILE).get("configMap") or {}
    if env is not None:
        if not env.get("subPath"):
            problems.append(f"{ENV_FILE} is mounted without subPath (it would hide /etc)")
        maps = {
            d.name: d.body.get("data") or {}
            for d in docs
            if d.kind == "ConfigMap"
            and (d.body.get("metadata") or {}).get("namespace")
            == (doc.body.get("metadata") or {}).get("namespace")
        }
        if cm.get("name") not in maps:
            problems.append(f"{ENV_FILE}: ConfigMap {cm.get('name')!r} is not among the manifests")
        elif env.get("subPath") not in maps[cm["name"]]:
            problems.append(f"{ENV_FILE}: ConfigMap {cm['name']} has no key {env.get('subPath')!r}")
    report.check(f"volumes {doc.label()}", problems)


def check_probes(report: Report, doc: Doc) -> None:
    problems = []
    main = (pod_spec(doc).get("containers") or [{}])[0]
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = ((main.get(probe) or {}).get("exec") or {}).get("command") or []
        if cmd[:1] != ["fastpath"] or len(cmd) < 2:
            problems.append(f"{probe} is not an exec of a fastpath subcommand ({cmd!r})")
    report.check(f"probes {doc.label()}", problems)


def fp_ports_all(docs: list[Doc], namespace: str | None) -> bool:
    # A line FP_PORTS=all (or its `: ${FP_PORTS:=all}` form) in the
    # fast-path.env the Deployment mounts (config/src/fast_path_env.rs).
    for d in docs:
        meta = d.body.get("metadata") or {}
        if d.kind == "ConfigMap" and d.name == "fastpath-env" and meta.get("namespace") == namespace:
            text = str((d.body.get("data") or {}).get("fast-path.env", ""))
            return re.search(r"^\s*(export\s+)?FP_PORTS=['\"]?all['\"]?\s*$|^\s*:\s*\$\{FP_PORTS:=all\}",
                             text, re.M) is not None
    return False


def check_resource_names(report: Report, doc: Doc, docs: list[Doc]) -> None:
    problems = []
    pools = set()
    for d in docs:
        if d.kind == "ConfigMap" and d.name == "sriovdp-config":
            config, _ = device_plugin_config(d)
            for pool in (config or {}).get("resourceList") or []:
                pools.add(f"{pool.get('resourcePrefix', 'intel.com')}/{pool.get('resourceName')}")
    namespace = (doc.body.get("metadata") or {}).get("namespace")
    nads = {
        d.name: (d.body.get("metadata") or {}).get("annotations", {}).get(NAD_RESOURCE)
        for d in docs
        if d.kind == "NetworkAttachmentDefinition"
        and (d.body.get("metadata") or {}).get("namespace") == namespace
    }
    for nad, resource in nads.items():
        if resource not in pools:
            problems.append(f"NAD {nad}: resourceName {resource!r} is no device plugin pool ({sorted(pools)})")
    main = (pod_spec(doc).get("containers") or [{}])[0]
    limits = (main.get("resources") or {}).get("limits") or {}
    wanted = {k: quantity(v) for k, v in limits.items() if is_extended(k)}
    for resource in wanted:
        if resource not in pools:
            problems.append(f"the container asks for {resource}, which no device plugin pool provides ({sorted(pools)})")
    raw = ((doc.body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations", {}).get(NETWORKS)
    networks: list[str] = []
    if raw is None:
        problems.append(f"no {NETWORKS} annotation on the pod template")
    else:
        try:
            parsed = json.loads(raw)
            networks = [n.get("name") if isinstance(n, dict) else n for n in parsed]
        except json.JSONDecodeError:
            networks = [n.strip() for n in raw.split(",") if n.strip()]
    per_resource: dict[str, int] = {}
    for net in networks:
        if net not in nads:
            problems.append(f"network {net!r} is no NetworkAttachmentDefinition in namespace {namespace}")
            continue
        per_resource[nads[net]] = per_resource.get(nads[net], 0) + 1
    for resource, count in per_resource.items():
        if wanted.get(resource) != count:
            problems.append(
                f"{count} network(s) use {resource} but the container asks for {wanted.get(resource)}"
            )
    for resource in wanted:
        if resource not in per_resource:
            problems.append(f"the container asks for {resource} but no network in {NETWORKS} uses it")
    # The ports are the device plugin's VFs: the command reads a requested
    # pool's variable, or fast-path.env says FP_PORTS=all (every
    # PCIDEVICE_* variable).
    text = " ".join(str(a) for a in (main.get("command") or []) + (main.get("args") or []))
    read = sorted(set(re.findall(r"PCIDEVICE_[A-Z0-9_]+", text)))
    for var in read:
        if var not in {pcidevice_var(r) for r in wanted}:
            problems.append(
                f"the command reads {var}, but the device plugin sets {sorted(pcidevice_var(r) for r in wanted)}"
            )
    if wanted and not read and not fp_ports_all(docs, namespace):
        problems.append(
            "the VFs reach fastpath neither through a PCIDEVICE_ variable in the command "
            "nor through FP_PORTS=all in the fastpath-env ConfigMap"
        )
    report.check(f"resource-names {doc.label()}", problems)


def env_var(docs: list[Doc], namespace: str | None, var: str) -> str | None:
    # The last plain assignment VAR=value (or `: ${VAR:=value}`) of the
    # fast-path.env in the fastpath-env ConfigMap.
    for d in docs:
        meta = d.body.get("metadata") or {}
        if d.kind == "ConfigMap" and d.name == "fastpath-env" and meta.get("namespace") == namespace:
            text = str((d.body.get("data") or {}).get("fast-path.env", ""))
            found = None
            for m in re.finditer(
                r"^\s*(?:export\s+)?" + var + r"=['\"]?([^'\"\s#]*)|^\s*:\s*\$\{" + var + r":=([^}]*)\}",
                text, re.M):
                found = m.group(1) if m.group(1) is not None else m.group(2)
            return found
    return None


def check_pod_prefix(report: Report, doc: Doc, docs: list[Doc]) -> None:
    # A router (--mode l3) puts each VF's IPAM address on its exception
    # interface with FP_POD_PREFIX (network-status carries no prefix,
    # docs/pod-addresses.md): it must be the prefix of every IPv4 subnet
    # the NetworkAttachmentDefinitions allocate from, or the kernel would
    # get the wrong connected route.
    main = (pod_spec(doc).get("containers") or [{}])[0]
    words = [str(a) for a in (main.get("command") or []) + (main.get("args") or [])]
    if "l3" not in [b for a, b in zip(words, words[1:]) if a == "--mode"]:
        return
    namespace = (doc.body.get("metadata") or {}).get("namespace")
    problems = []
    prefix = env_var(docs, namespace, "FP_POD_PREFIX")
    v4 = (prefix or "").split("/")[0]
    if not v4:
        problems.append("--mode l3 with VFs but no IPv4 FP_POD_PREFIX in fast-path.env: the VFs' addresses would not be applied")
    for d in docs:
        if d.kind != "NetworkAttachmentDefinition":
            continue
        try:
            config = json.loads((d.body.get("spec") or {}).get("config") or "{}")
        except json.JSONDecodeError:
            continue
        subnet = str(((config.get("ipam") or {}).get("subnet")) or "")
        if "." in subnet and "/" in subnet and v4 and subnet.split("/")[1] != v4:
            problems.append(f"NAD {d.name}: IPAM subnet {subnet}, but FP_POD_PREFIX gives /{v4}")
    report.check(f"pod-prefix {doc.label()}", problems)


def check_kustomization(report: Report, directory: Path) -> None:
    path = directory / "kustomization.yaml"
    if not path.exists():
        return
    body = yaml.safe_load(path.read_text()) or {}
    listed = set(body.get("resources") or [])
    present = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    problems = [f"{r} is listed but absent" for r in sorted(listed - present)]
    problems += [f"{r} is not listed" for r in sorted(present - listed)]
    report.check("kustomization-resources", problems)


def validate(directory: Path, report: Report) -> None:
    schemas = directory / "schemas"
    docs, errors = load(directory)
    report.check("yaml-parses", errors)
    kinds = {d.kind for d in docs}
    for kind in ("Deployment", "NetworkAttachmentDefinition", "ConfigMap"):
        report.check(f"has-{kind}", [] if kind in kinds else [f"no {kind} in {directory}"])
    for doc in docs:
        if doc.kind == "Kustomization":
            continue
        if doc.kind in BUILTIN_KINDS:
            check_builtin(report, doc)
        elif doc.kind == "NetworkAttachmentDefinition":
            check_nad(report, doc, schemas)
        else:
            report.check(f"known-kind {doc.label()}", [f"no schema for kind {doc.kind}"])
        if doc.kind == "ConfigMap" and doc.name == "sriovdp-config":
            check_device_plugin(report, doc, schemas)
        if doc.kind == "Deployment":
            check_qos(report, doc)
            check_privileges(report, doc)
            check_volumes(report, doc, docs)
            check_probes(report, doc)
            check_resource_names(report, doc, docs)
            check_pod_prefix(report, doc, docs)
    check_kustomization(report, directory)


# ---- self-test: one broken copy per case


def deployment(docs: list[dict]) -> dict:
    return next(d for d in docs if d.get("kind") == "Deployment")


def container(docs: list[dict]) -> dict:
    return deployment(docs)["spec"]["template"]["spec"]["containers"][0]


def env_configmap(docs: list[dict]) -> dict:
    return next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "fastpath-env")


def first_nad(docs: list[dict]) -> dict:
    return next(d for d in docs if d.get("kind") == "NetworkAttachmentDefinition")


def set_cni(docs: list[dict], key: str, value: Any) -> None:
    nad = first_nad(docs)
    config = json.loads(nad["spec"]["config"])
    config[key] = value
    nad["spec"]["config"] = json.dumps(config)


def sriovdp(docs: list[dict], edit: Callable[[dict], None]) -> None:
    cm = next(d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "sriovdp-config")
    config = json.loads(cm["data"]["config.json"])
    edit(config)
    cm["data"]["config.json"] = json.dumps(config)


def set_path(d: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


# (case, the check whose name must fail, the breakage)
CASES: list[tuple[str, str, Callable[[list[dict]], None]]] = [
    ("fractional CPU", "integer-cpu",
     lambda ds: [container(ds)["resources"][k].__setitem__("cpu", "1500m") for k in ("requests", "limits")]),
    ("memory request below limit", "guaranteed-qos",
     lambda ds: container(ds)["resources"]["requests"].__setitem__("memory", "256Mi")),
    ("no CPU limit", "guaranteed-qos",
     lambda ds: [container(ds)["resources"][k].pop("cpu") for k in ("requests", "limits")]),
    ("SYS_ADMIN added", "least-privilege",
     lambda ds: container(ds)["securityContext"]["capabilities"]["add"].append("SYS_ADMIN")),
    ("privileged", "least-privilege",
     lambda ds: container(ds)["securityContext"].__setitem__("privileged", True)),
    ("writable root", "least-privilege",
     lambda ds: container(ds)["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
    ("no hugepages volume", "hugepages",
     lambda ds: deployment(ds)["spec"]["template"]["spec"]["volumes"][0]["emptyDir"].pop("medium")),
    ("misspelt resource in the Deployment", "resource-names",
     lambda ds: [container(ds)["resources"][k].__setitem__(
         "intel.com/fastpath_ixgbvf", container(ds)["resources"][k].pop("intel.com/fastpath_ixgbevf"))
         for k in ("requests", "limits")]),
    ("one VF for two networks", "resource-names",
     lambda ds: [container(ds)["resources"][k].__setitem__("intel.com/fastpath_ixgbevf", "1")
                 for k in ("requests", "limits")]),
    ("NAD naming no pool", "resource-names",
     lambda ds: first_nad(ds)["metadata"]["annotations"].__setitem__(NAD_RESOURCE, "intel.com/fastpath_e1000")),
    ("PCIDEVICE variable of another pool", "resource-names",
     lambda ds: container(ds).__setitem__(
         "command", container(ds)["command"] + ["--ports", "${PCIDEVICE_INTEL_COM_FASTPATH_IAVF}"])),
    ("FP_POD_PREFIX not the NADs' subnet prefix", "pod-prefix",
     lambda ds: env_configmap(ds)["data"].__setitem__(
         "fast-path.env", env_configmap(ds)["data"]["fast-path.env"].replace("FP_POD_PREFIX=24/64", "FP_POD_PREFIX=16/64"))),
    ("VFs requested but not used as ports", "resource-names",
     lambda ds: env_configmap(ds)["data"].__setitem__(
         "fast-path.env", env_configmap(ds)["data"]["fast-path.env"].replace("FP_PORTS=all", "FP_PORTS='null null'"))),
    ("wrong type (replicas: 'one')", "k8s-schema",
     lambda ds: deployment(ds)["spec"].__setitem__("replicas", "one")),
    ("unknown field (strict)", "k8s-schema",
     lambda ds: container(ds).__setitem__("securityContxt", {"privileged": False})),
    ("NAD without spec.config", "nad-schema",
     lambda ds: first_nad(ds)["spec"].pop("config")),
    ("VLAN 5000", "sriov-cni-config", lambda ds: set_cni(ds, "vlan", 5000)),
    ("spoofchk as a boolean", "sriov-cni-config", lambda ds: set_cni(ds, "spoofchk", True)),
    ("pool on a kernel driver", "device-plugin-pools",
     lambda ds: sriovdp(ds, lambda c: c["resourceList"][0]["selectors"][0].__setitem__("drivers", ["ixgbevf"]))),
    ("misspelt needVhostNet", "sriovdp-config-schema",
     lambda ds: sriovdp(ds, lambda c: c["resourceList"][0]["selectors"][0].__setitem__("needVHostNet", True))),
    ("env file mounted without subPath", "volumes",
     lambda ds: [m.pop("subPath") for m in container(ds)["volumeMounts"] if m["mountPath"] == ENV_FILE]),
    ("probe not through fastpath", "probes",
     lambda ds: set_path(container(ds), "livenessProbe.exec.command", ["cat", "/proc/1/status"])),
]


def self_test(directory: Path, report: Report) -> None:
    by_file: dict[str, list[dict]] = {}
    for path in sorted(directory.glob("*.yaml")):
        by_file[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    clean = Report(quiet=True)
    validate(directory, clean)
    report.check("self-test: the unbroken copy passes",
                 [f"{n}: {why}" for n, why in clean.failed])
    for case, expected, breakage in CASES:
        problems = []
        with tempfile.TemporaryDirectory(prefix="fastpath-manifests.") as tmp:
            broken = copy.deepcopy(by_file)
            everything = [d for ds in broken.values() for d in ds]
            breakage(everything)
            for name, ds in broken.items():
                (Path(tmp) / name).write_text(yaml.safe_dump_all(ds, sort_keys=False))
            (Path(tmp) / "schemas").symlink_to((directory / "schemas").resolve())
            inner = Report(quiet=True)
            validate(Path(tmp), inner)
            hits = [f"{n}: {why}" for n, why in inner.failed if n.split(" ")[0] == expected]
            others = [n for n, _ in inner.failed if n.split(" ")[0] != expected]
            if not hits:
                problems.append(
                    f"not caught by {expected} (failed: {[n for n, _ in inner.failed] or 'nothing'})"
                )
        report.check(f"self-test: {case} -> {expected}", problems)
        if not problems:
            print(f"    | {hits[0]}"[:300])
            if others:
                print(f"    | (also failed: {', '.join(others)})"[:300])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--self-test", action="store_true",
                    help="break a copy of the manifests one way per case; each must be caught")
    args = ap.parse_args()
    report = Report()
    if args.self_test:
        self_test(args.directory, report)
    else:
        validate(args.directory, report)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
